"""A run's history, read back from its metrics.jsonl: one JSON object per evaluation (`step`,
`elapsed_s`, `train_loss`, `val_loss`, `best_val_loss`, `chars_per_s`, `lr`), as training
writes it. Used by `charrnn plot`, `charrnn runs` and the end-of-training summary. Torch-free.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

METRICS_NAME = "metrics.jsonl"


@dataclass(frozen=True)
class Evaluation:
    """One line of metrics.jsonl: what an evaluation measured (None where the line lacks it)."""

    step: int
    elapsed_s: float | None
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None


@dataclass(frozen=True)
class RunMetrics:
    """A run's evaluations, in the order they were written."""

    name: str  # the run directory's name
    path: Path  # its metrics.jsonl
    evaluations: tuple[Evaluation, ...]

    def val_losses(self) -> list[float]:
        return [e.val_loss for e in self.evaluations if _finite(e.val_loss)]


def metrics_file(target: Path | str) -> Path:
    """The metrics.jsonl of a run directory, or the file itself."""
    target = Path(target)
    return target / METRICS_NAME if target.is_dir() else target


def read_metrics(target: Path | str) -> RunMetrics:
    """The evaluations of a run (a run directory or its metrics.jsonl). A line that is not a
    JSON object with a step (one cut short by a kill) is skipped. DataError if there is no file."""
    path = metrics_file(target)
    if not path.is_file():
        raise DataError(_missing(Path(target), path))
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as problem:
        raise DataError(f"cannot read {path}: {problem.strerror}") from None
    evaluations = [e for e in map(_evaluation, lines) if e is not None]
    name = path.parent.name if path.name == METRICS_NAME else path.stem
    return RunMetrics(name or str(path), path, tuple(evaluations))


def val_losses(run_dir: Path | str) -> list[float]:
    """The val losses of a run in order; none where it has no metrics yet."""
    try:
        return read_metrics(run_dir).val_losses()
    except DataError:
        return []


def _missing(target: Path, path: Path) -> str:
    if target.is_dir():
        return f"{target} has no {METRICS_NAME} yet (a run writes it at its first evaluation)"
    from .runs import runs_hint  # only for the message

    return f"no run or metrics file at {target}{runs_hint(target)}"


def _evaluation(line: str) -> Evaluation | None:
    try:
        record = json.loads(line)
        step = int(record["step"])
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(record, dict):
        return None
    return Evaluation(
        step=step,
        elapsed_s=_number(record.get("elapsed_s")),
        train_loss=_number(record.get("train_loss")),
        val_loss=_number(record.get("val_loss")),
        best_val_loss=_number(record.get("best_val_loss")),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
