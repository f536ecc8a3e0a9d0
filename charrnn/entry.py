"""The console script's entry point, kept tiny: Ctrl-C while the CLI is still being imported
exits quietly (130) instead of printing a KeyboardInterrupt traceback, and is never lost."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType


def _inside_an_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class HeldInterrupt:
    """A SIGINT handler that holds a Ctrl-C landing inside an import until the import is over.

    A KeyboardInterrupt raised inside an import can be swallowed by a library's own
    `try: import x / except ...` (torch does so around numpy), and the Ctrl-C is lost: the
    command runs on as if it never came. So inside an import the signal is only noted, and a
    watcher thread sends it again once the main thread has left every import; elsewhere it
    raises KeyboardInterrupt at once, as Python's own handler does.

    A KeyboardInterrupt can also be dropped by the interpreter itself: raised while it runs a
    finalizer or a type's hook, it is "unraisable" (printed as "Exception ignored in ...", with
    a traceback, and lost). `unraisable_hook` catches that case: it prints nothing and sends
    the signal again, like an interrupt held in an import.
    """

    def __init__(self) -> None:
        self.watcher: threading.Thread | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not _inside_an_import(frame):
            raise KeyboardInterrupt
        self._send_again_soon()

    def unraisable_hook(self, unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._send_again_soon()
            return
        sys.__unraisablehook__(unraisable)

    def _send_again_soon(self) -> None:
        if self.watcher is None or not self.watcher.is_alive():
            self.watcher = threading.Thread(target=self._send_again, daemon=True)
            self.watcher.start()

    @staticmethod
    def _send_again() -> None:
        main = threading.main_thread()
        while main.is_alive():
            time.sleep(0.01)
            if not _inside_an_import(sys._current_frames().get(main.ident or 0)):
                signal.pthread_kill(main.ident or 0, signal.SIGINT)
                return


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        held = HeldInterrupt()
        signal.signal(signal.SIGINT, held)
        sys.unraisablehook = held.unraisable_hook
    try:
        from .cli import main as run_cli
    except KeyboardInterrupt:
        sys.exit(130)
    run_cli()
