"""Stopping a training run politely: a signal asks the loop to stop after the current step.

Torch-free. The message goes to stderr through the console, like every message for people.
"""

from __future__ import annotations

import signal
from typing import Any

from .console import err_console


class GracefulInterrupt:
    """Ctrl-C, SIGTERM (`timeout`, `docker stop`, systemd) and SIGHUP (a dropped ssh session) ask
    the loop to stop after the current step and save; a second signal aborts at once.

    Use as a context manager and pass it as the loop's `should_stop`.
    """

    SIGNALS = tuple(
        getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
    )

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce  # say so on stderr (under torchrun, rank 0 alone does)
        self.received: int | None = None  # the first signal's number
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulInterrupt:
        for signum in self.SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        name = "interrupt" if signum == signal.SIGINT else signal.Signals(signum).name
        if self.announce:
            err_console.print(
                f"\n[yellow]{name}: saving last.pt after this step (again to abort)[/]"
            )

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (130 for Ctrl-C)."""
        return 128 + (self.received or signal.SIGINT)

    def __call__(self) -> bool:
        return self.received is not None
