"""`charrnn sample --interactive`: a prompt loop on a terminal, the model loaded once.

The line is read with Python's readline (line editing and history: the arrows recall earlier
lines). A prime's continuation streams to stdout, its prime dimmed first, as `sample` writes it;
the notes go to stderr. Ctrl-C during a continuation stops it and returns to the prompt (at the
prompt it clears the line), Ctrl-D at the prompt quits with exit 0.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from .config import SampleConfig
from .console import err_console, error, info
from .errors import CharRNNError
from .interactive import Session
from .output import SampleWriter, styled_output

PROMPT = "> "


def run_interactive(loaded: Any, config: SampleConfig, report: Any = None) -> None:
    """Read lines until Ctrl-D (or :q): continue each prime, apply each command."""
    with contextlib.suppress(ImportError):  # not on every platform; input() works without it
        import readline  # noqa: F401  (imported for its effect on input(): editing, history)
    session = Session(config)
    where = loaded.path or "the shipped model"
    info(f"{where} ({loaded.model_config.shape}): type a prime and Enter; :help for commands")
    info(f"now: {session.describe()}")
    if config.prime:  # a prime given with -i is the first continuation
        _continue(loaded, session.sample_config(config.prime), report)
    while True:
        try:
            line = input(PROMPT)
        except KeyboardInterrupt:  # at the prompt: a fresh line, as a shell does
            sys.stdout.write("\n")
            continue
        except EOFError:  # Ctrl-D
            sys.stdout.write("\n")
            sys.stdout.flush()
            return
        action = session.handle(line)
        if action.message:
            (error if action.failed else info)(action.message)
        if action.quit:
            return
        if action.prime is not None:
            _continue(loaded, session.sample_config(action.prime), report)


def _continue(loaded: Any, config: SampleConfig, report: Any) -> None:
    """Stream one continuation; Ctrl-C stops it. A bad prime is reported, not fatal."""
    from .sampling import Generation

    try:
        generation = Generation(loaded.model, loaded.vocab, config)
    except CharRNNError as problem:
        error(str(problem))
        return
    writer = SampleWriter(sys.stdout, generation.prime)
    writer.start()
    try:
        for piece in generation:
            writer.piece(piece)
    except KeyboardInterrupt:
        if styled_output(sys.stdout):
            sys.stdout.write("\x1b[0m")  # no style left open by a write cut short
        sys.stdout.write("\n")
        sys.stdout.flush()
        info(f"stopped (seed {generation.seeds[0]})")
        return
    writer.finish(generation.samples)
    if writer.last_char not in ("", "\n"):
        sys.stdout.write("\n")
        sys.stdout.flush()
    sample = generation.samples[0]
    err_console.print(f"[dim]{sample.chars:,} chars, seed {sample.seed}[/]", soft_wrap=True)
    if report is not None:
        info(report.measure(sample.text).summary(report.corpus))
