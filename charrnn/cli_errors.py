"""How the CLI fails: every error one line on stderr and an exit code, never a traceback.

Click's usage errors, the library's errors, OS errors (a full disk, a closed or full stdout) and
bugs all end the same way: `error: ...` and exit 2 (usage) or 1 (anything else); a closed pipe
stays silent. Torch-free, like everything the CLI imports at start-up.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from .console import error
from .errors import CharRNNError, DataError
from .output import silence_stdout

try:  # Typer 0.2x carries its own copy of click; older Typer uses click itself
    from typer._click import exceptions as click_errors
    from typer.exceptions import Abort
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_errors
    from click.exceptions import Abort


class OneLineErrors(TyperGroup):
    """Click's usage errors as one line (`error: ...`, exit 2) like every other charrnn error,
    instead of a usage block; asking for help with no arguments still shows the help."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.UsageError as problem:
            if type(problem).__name__ == "NoArgsIsHelpError" or problem.ctx is None:
                problem.show()
                sys.exit(problem.exit_code)
            command = problem.ctx.command_path
            error(f"{problem.format_message()} ({command} -h for help)")
            sys.exit(2)
        except click_errors.ClickException as problem:
            error(problem.format_message())
            sys.exit(problem.exit_code)
        except Abort:
            error("interrupted")
            sys.exit(130)
        sys.exit(code or 0)


def friendly_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Every error becomes one line on stderr and an exit code: usage 2, runtime 1. Library
    errors say what to do; an OSError (a full disk, a closed or full stdout) names the file and
    the reason; anything else is a bug, reported as one (CHARRNN_DEBUG=1 shows the traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (typer.Exit, click_errors.ClickException, Abort, KeyboardInterrupt):
            raise
        except CharRNNError as problem:
            _fail(str(problem), problem.exit_code)
        except BrokenPipeError:
            silence_stdout()  # a reader such as `head` has all it wants: not an error
        except OSError as problem:
            _fail(_describe_os_error(problem), 1)
        except Exception as problem:
            if os.environ.get("CHARRNN_DEBUG"):
                raise
            _fail(
                f"internal error: {type(problem).__name__}: {problem} (a charrnn bug: please "
                "report it; CHARRNN_DEBUG=1 shows where)",
                1,
            )

    return wrapper


def _fail(message: str, code: int) -> None:
    try:  # what was written to stdout stays written; what cannot be written is let go
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        silence_stdout()
    error(_rank_prefix() + message)
    raise typer.Exit(code) from None


def _describe_os_error(problem: OSError) -> str:
    where = problem.filename or "stdout"
    reason = problem.strerror or str(problem)
    return (
        f"cannot write {where}: {reason}"
        if problem.errno in _WRITE_ERRNOS
        else f"{where}: {reason}"
    )


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EBADF, errno.EFBIG}


def _rank_prefix() -> str:
    """Under torchrun, which process an error comes from (rank 0's lines stay as they are)."""
    rank = os.environ.get("RANK", "0")
    return f"rank {rank}: " if rank != "0" and os.environ.get("WORLD_SIZE", "1") != "1" else ""


def stdout_or_error() -> Any:
    """sys.stdout, or a clear error when the shell closed it (`>&-`) and nothing could be read."""
    if sys.stdout is None:
        raise DataError("stdout is closed (>&-): nothing could be written; redirect it instead")
    return sys.stdout


def hold_closed_standard_fds() -> None:
    """A shell can start us with stdout or stderr closed (`>&-`, `2>&-`). Park /dev/null on
    those descriptors, so the next file opened (a checkpoint being written) cannot become
    descriptor 1 or 2 and receive our output. Python already set sys.stdout to None there."""
    for fd in (1, 2):
        try:
            os.fstat(fd)
        except OSError:
            parked = os.open(os.devnull, os.O_WRONLY)
            if parked != fd:
                os.dup2(parked, fd)
                os.close(parked)
