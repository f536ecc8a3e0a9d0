"""The runs under a directory (`runs/` by default): what each one is, how far it got, and
whether it finished, was interrupted or is running now; and the hint that names them when a
path given for a run or checkpoint does not exist. Torch-free until a checkpoint is read.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import DataError
from .metrics import Evaluation, read_metrics
from .run_dir import RunDirectory

RUNS_DIR = Path("runs")  # where `charrnn train` puts a run by default (plan.py)
STATES = ("finished", "interrupted", "running")
HINT_NAMES = 8  # runs named in a hint at most


@dataclass(frozen=True)
class RunRecord:
    """One run as `charrnn runs` shows it (None where it is not known)."""

    path: Path
    corpus: str | None
    model: str | None
    parameters: int | None
    steps: int | None
    best_val_loss: float | None
    state: str  # one of STATES
    why: str  # what ended it, or the PID running it
    saved_at: datetime | None  # when its last.pt (or best.pt, or metrics) was last written

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)


def run_directories(parent: Path | str = RUNS_DIR) -> list[Path]:
    """`parent` itself if it holds a run, and each directory right under it that holds one."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    found = [parent] if RunDirectory(parent).holds_a_run() else []
    try:
        children = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return found
    return found + [child for child in children if RunDirectory(child).holds_a_run()]


def list_runs(parent: Path | str = RUNS_DIR) -> list[RunRecord]:
    """Every run under `parent`, the most recently saved first. DataError if `parent` is not a
    directory."""
    parent = Path(parent)
    if not parent.is_dir():
        what = "a file, not a directory" if parent.exists() else "not there"
        raise DataError(f"{parent} is {what}; give the directory that holds your runs")
    records = [describe_run(path) for path in run_directories(parent)]
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(records, key=lambda r: r.saved_at or oldest, reverse=True)


def describe_run(path: Path) -> RunRecord:
    """What a run directory holds, read from its last.pt (else best.pt) and metrics.jsonl."""
    run_dir = RunDirectory(path)
    checkpoint = next((p for p in (run_dir.last, run_dir.best) if p.is_file()), None)
    saved = _read_saved(checkpoint) if checkpoint else {}
    info, model, train = saved.get("info", {}), saved.get("model_config"), saved.get("train_config")
    evaluations = _evaluations(path)
    steps = info.get("step", evaluations[-1].step if evaluations else None)
    best = info.get("best_val_loss")
    if best is None and evaluations:
        best = min((e.val_loss for e in evaluations if e.val_loss is not None), default=None)
    holder = run_dir.holder()
    if holder is not None:
        state, why = "running", f"PID {holder}"
    else:
        state, why = _ended(info, train, steps, evaluations, saved.get("training"))
    return RunRecord(
        path=path,
        corpus=_corpus_names(info.get("corpus")),
        model=_shape(model),
        parameters=info.get("num_parameters"),
        steps=steps,
        best_val_loss=best if isinstance(best, float) and math.isfinite(best) else None,
        state=state,
        why=why,
        saved_at=_saved_at(info.get("saved_at"), checkpoint or run_dir.metrics),
    )


def _ended(
    info: dict[str, Any],
    train: dict[str, Any] | None,
    steps: int | None,
    evaluations: list[Evaluation],
    training: dict[str, Any] | None,
) -> tuple[str, str]:
    """finished (by its own limits) or interrupted (it can go on: --resume), and why. Runs saved
    before last.pt recorded a stop reason are judged by their step, patience and history."""
    reason = info.get("stop_reason")
    if reason is not None:
        ended = {"max_steps": "--max-steps", "max_time": "--max-time", "patience": "--patience"}
        return (
            ("interrupted", "stopped") if reason == "interrupted" else ("finished", ended[reason])
        )
    train = train or {}
    if steps is not None and steps >= train.get("max_steps", math.inf):
        return "finished", "--max-steps"
    patience = train.get("patience")
    if patience and training and training.get("evals_since_best", 0) >= patience:
        return "finished", "--patience"
    if train.get("max_time") and evaluations and evaluations[-1].step == steps:
        return "finished", "--max-time"
    return "interrupted", "no final save" if steps else "before its first save"


def _read_saved(path: Path) -> dict[str, Any]:
    """A checkpoint's configs and info, mapped rather than read whole; {} if unreadable."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a damaged file: the table shows what the metrics say
        return {}
    if not isinstance(payload, dict):
        return {}
    wanted = ("info", "model_config", "train_config", "training")
    return {key: payload[key] for key in wanted if isinstance(payload.get(key), dict)}


def _evaluations(path: Path) -> list[Evaluation]:
    try:
        return list(read_metrics(path).evaluations)
    except DataError:
        return []


def _corpus_names(sources: Any) -> str | None:
    if not isinstance(sources, list) or not sources:
        return None
    names = [Path(str(source)).name for source in sources]
    return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"


def _shape(model: dict[str, Any] | None) -> str | None:
    if not model:
        return None
    try:
        return f"{model['cell'].upper()} {model['num_layers']}x{model['hidden_size']}"
    except (KeyError, AttributeError):
        return None


def _saved_at(stamp: Any, fallback: Path) -> datetime | None:
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp)
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(os.stat(fallback).st_mtime, timezone.utc)
    except OSError:
        return None


def runs_hint(missing: Path | str) -> str:
    """For an error about a run or checkpoint path that does not exist: the runs beside it (or
    under runs/), the nearest first, as '; did you mean runs/a? runs here: runs/a, runs/b'."""
    missing = Path(missing)
    parent = missing.parent if missing.parent.is_dir() and missing.parent != Path(".") else None
    runs = run_directories(parent) if parent else []
    if not runs:
        runs = run_directories(RUNS_DIR)
    runs = [run for run in runs if run != missing]
    if not runs:
        return "; no runs found under runs/ (charrnn train makes one)"
    names = [str(run) for run in runs]
    closest = difflib.get_close_matches(str(missing), names, n=1, cutoff=0.6)
    named = ", ".join(names[:HINT_NAMES]) + (", ..." if len(names) > HINT_NAMES else "")
    guess = f"; did you mean {closest[0]}?" if closest else ""
    return f"{guess}; runs here: {named} (charrnn runs lists them)"
