"""A run directory: best.pt, last.pt and metrics.jsonl of one training run, and its lock.

Two runs must never write one directory, and a run must never be mixed with another's files:
`RunDirectory.claim` takes an exclusive lock (released by the kernel when the process dies, so
kill -9 never leaves a lock that blocks) and refuses a directory that holds another run.
Torch-free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import IO

from .config import flag
from .errors import ConfigError, DataError

try:  # POSIX; elsewhere (Windows) runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - platform dependent
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
# What marks a directory as holding a run: any of these, even alone (a stale metrics.jsonl
# would otherwise get a new run's lines appended to an old run's).
RUN_FILES = ("best.pt", "last.pt", "metrics.jsonl")


class RunDirectory:
    """The files of one run. Use `claim()` before writing anything, `release()` when done."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.best = self.path / "best.pt"
        self.last = self.path / "last.pt"
        self.metrics = self.path / "metrics.jsonl"
        self._lock: IO[str] | None = None

    def holds_a_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_FILES)

    def check(self, resume_from: Path | None = None, overwrite: bool = False) -> None:
        """What `claim` would refuse, found without creating or changing anything, so a run
        is refused before it spends time reading its corpus."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file, not a directory; choose another --out")
        if (self.path / LOCK_NAME).exists():
            self._take_lock()
            self.release()
        if not overwrite:
            self._check_contents(resume_from, overwrite=False)

    def claim(self, resume_from: Path | None = None, overwrite: bool = False) -> None:
        """Create and lock the directory for a run, new or resumed from `resume_from` (a
        checkpoint). Refuses, in one line: a directory another process holds, a directory that
        holds another run (unless `overwrite`), a path that cannot be a directory."""
        self._create()
        self._take_lock()
        try:
            self._check_contents(resume_from, overwrite)
            self.remove_stale_temp_files()
        except BaseException:
            self.release()
            raise

    def holder(self) -> str | None:
        """The PID of the live process that holds the directory's lock (a running charrnn
        train), or None. It asks with a shared lock, taken and dropped at once: a train starting
        in those microseconds would be refused as if this process held the run."""
        if fcntl is None:  # pragma: no cover - platform dependent
            return None
        try:
            handle = open(self.path / LOCK_NAME, encoding="utf-8")  # noqa: SIM115
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or "unknown"
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the lock
            self._lock = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # --- claiming ----------------------------------------------------------------------------

    def _create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file, not a directory; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(
                f"cannot create run directory {self.path}: a part of that path is a file"
            ) from None
        except OSError as problem:
            raise DataError(
                f"cannot create run directory {self.path}: {problem.strerror}"
            ) from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DataError(f"cannot write to run directory {self.path}: permission denied")

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover - platform dependent
            return
        lock_path = self.path / LOCK_NAME
        try:
            handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held while training
        except OSError as problem:
            raise DataError(
                f"cannot write to run directory {self.path}: {problem.strerror}"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as problem:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            if problem.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DataError(f"cannot lock {lock_path}: {problem.strerror}") from None
            raise ConfigError(
                f"{self.path} is in use by another charrnn train (PID {holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _check_contents(self, resume_from: Path | None, overwrite: bool) -> None:
        resuming_here = resume_from is not None and _same_dir(resume_from.parent, self.path)
        if resuming_here or not self.holds_a_run():
            return
        if overwrite:
            # Nothing of the old run may survive to be mistaken for this one's (e.g. its best.pt
            # when this run is stopped before its first evaluation).
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            return
        if resume_from is not None:
            raise ConfigError(
                f"--out {self.path} already holds another run; resume {resume_from} into its own "
                f"directory (drop --out), choose an empty --out, or pass {flag('force')} to "
                "overwrite it"
            )
        if not self.last.exists():  # only a best.pt or a stale metrics.jsonl: nothing to resume
            held = ", ".join(name for name in RUN_FILES if (self.path / name).exists())
            raise ConfigError(
                f"{self.path} already holds an earlier run's {held}; choose another --out, or "
                f"pass {flag('force')} to overwrite it"
            )
        raise ConfigError(
            f"{self.path} already holds a run; continue it with --resume {self.last}, "
            f"choose another --out, or pass {flag('force')} to overwrite it"
        )

    def remove_stale_temp_files(self) -> None:
        """Temporary files a killed run left behind (`.last.pt.*.tmp`, `.metrics.jsonl.*.tmp`):
        ours only, and only while we hold the lock, so no live run is writing them."""
        for stale in [*self.path.glob(".*.pt.*.tmp"), *self.path.glob(".metrics.jsonl.*.tmp")]:
            with contextlib.suppress(OSError):
                stale.unlink()

    # --- metrics -----------------------------------------------------------------------------

    def continue_metrics(self, resume_from: Path, up_to_step: int) -> None:
        """On resume, the metrics up to the checkpoint's step: this directory's own (later lines
        dropped: they belong to steps that will be trained again), or a copy of the source run's
        when resuming into a new directory."""
        source = resume_from.parent / "metrics.jsonl"
        if not _same_dir(resume_from.parent, self.path) and source.exists():
            copy = self.path / f".{self.metrics.name}.{os.getpid()}.tmp"
            shutil.copyfile(source, copy)
            os.replace(copy, self.metrics)
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if line.strip() and json.loads(line).get("step", 0) <= up_to_step:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue  # a line cut short by a crash, or not ours: dropped
        # Replaced whole, never rewritten in place: a kill -9 here must not lose the history.
        fresh = self.path / f".{self.metrics.name}.{os.getpid()}.tmp"
        fresh.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(fresh, self.metrics)

    def log_metrics(self, metrics: dict[str, object]) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
