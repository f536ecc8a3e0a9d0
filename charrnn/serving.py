"""Running `charrnn serve`: the socket, the ASGI server (uvicorn) and a clean stop on a signal.

The app itself is built in `serve_api`. Nothing here imports FastAPI or uvicorn at import time,
so the CLI can say which extra is missing before anything fails to import.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
import socket
from collections.abc import Callable
from typing import Any

from .errors import ServeError

SERVE_EXTRA = "pip install 'charrnn[serve]'"
# Seconds open streams get to finish after a stop is asked for; then they are cancelled, which
# stops their generation like a client leaving.
SHUTDOWN_GRACE_S = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def check_serve_extra() -> None:
    """ServeError naming the pip command when the `serve` extra (FastAPI, uvicorn) is missing."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ServeError(
            f"charrnn serve needs {' and '.join(missing)}, which {verb} not installed: "
            f"{SERVE_EXTRA}"
        )


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """A sentence for stderr when the server is reachable from other machines, else None."""
    if is_loopback(host):
        return None
    return (
        f"listening on {host}: other machines can reach this server, which has no "
        "authentication; keep the default --host 127.0.0.1 unless that is meant"
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one). Bound before the model is
    loaded, so a taken port is reported at once; connections wait in its backlog until the
    server starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as problem:
        raise ServeError(f"cannot listen on {host}: {problem.strerror}; check --host") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as problem:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {problem.strerror or problem}; "
            "choose another --port (0: any free one) or --host"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port of a listening socket, with the port it actually got."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Any, on_shutdown: Callable[[], None] | None = None, log: bool = True) -> Any:
    """A uvicorn.Server for `app`. on_shutdown: called as the server starts to stop, before it
    waits for open requests (so they can end instead of being cancelled). log: uvicorn's own
    warnings and errors on stderr (no access log); False leaves the process's logging alone
    (tests running a server in a thread)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            if on_shutdown is not None:
                on_shutdown()
            await super().shutdown(sockets=sockets)

    options: dict[str, Any] = {"log_level": "warning"} if log else {"log_config": None}
    config = uvicorn.Config(
        app,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        **options,
    )
    return Server(config)


class _Stopped(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def run_until_stopped(
    app: Any, sock: socket.socket, on_shutdown: Callable[[], None] | None = None
) -> str:
    """Serve `app` on `sock` until SIGINT or SIGTERM; returns the signal's name.

    uvicorn catches the signal, calls on_shutdown (which should end open requests), waits for
    them (at most SHUTDOWN_GRACE_S), then raises the signal again with the previous handlers
    back: ours turn it into a plain return.
    """

    def stop(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        make_server(app, on_shutdown).run(sockets=[sock])
    except _Stopped as stopped:
        return signal.Signals(stopped.signum).name
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
    return "the server ended"
