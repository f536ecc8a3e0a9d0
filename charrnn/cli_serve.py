"""`charrnn serve`: a model kept loaded behind a local HTTP API and a web page. Thin, like cli.py:
parse, call the library (serving, serve_api), render. Neither the web framework nor torch is
imported until the command runs; registered on the app by cli.py through add_serve_command."""

from __future__ import annotations

import typer

from .cli_errors import friendly_errors
from .cli_options import (
    CheckpointOption,
    DeviceOption,
    Host,
    MaxLength,
    MaxRequestBytes,
    MaxSamples,
    Port,
    ServeQuiet,
    given,
)
from .config import ServeConfig
from .console import info, serve_status, warn


def serve_command(
    checkpoint: CheckpointOption = None,
    host: Host = None,
    port: Port = None,
    device: DeviceOption = None,
    max_length: MaxLength = None,
    max_samples: MaxSamples = None,
    max_request_bytes: MaxRequestBytes = None,
    quiet: ServeQuiet = False,
) -> None:
    """Keep a model loaded behind a local HTTP API and a web page, until Ctrl-C or SIGTERM.

    POST /v1/sample and /v1/score take the options of `charrnn sample` and `charrnn score` as
    JSON; GET /v1/model is `charrnn info`; GET /healthz. The page at / streams samples and
    colours text by surprisal; /docs describes the API. Needs: pip install 'charrnn[serve]'.

    \b
    Examples:
      charrnn serve
      charrnn serve -c runs/my_text --port 8000
    """
    config = ServeConfig(**given(locals(), ServeConfig))
    from .serving import check_serve_extra, exposure_warning, listen, run_until_stopped, url_of

    check_serve_extra()
    with listen(config.host, config.port) as sock:  # before loading: a taken port fails at once
        if warning := exposure_warning(config.host):
            warn(warning)
        from .checkpoint import load_model
        from .serve_api import create_app

        loaded = load_model(checkpoint, device or "auto", on_note=None if quiet else info)
        app = create_app(loaded, config)
        served = app.state.served
        if not quiet:
            info(serve_status(loaded.path, loaded.model_config.shape, served.device, url_of(sock)))
        stopped_by = run_until_stopped(app, sock, on_shutdown=served.stop)
    if not quiet:
        info(f"stopped ({stopped_by})")


def add_serve_command(app: typer.Typer) -> None:
    """Register serve on the `charrnn` app."""
    app.command("serve")(friendly_errors(serve_command))
