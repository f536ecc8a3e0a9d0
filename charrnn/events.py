"""What a training run reports as it goes: the contract between `train` and whoever watches.

`train` never prints; it calls `on_event` with these, and the console (or a benchmark) renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainStart:
    device: str
    precision: str
    num_parameters: int
    train_chars: int
    val_chars: int
    vocab_size: int
    start_step: int
    max_steps: int
    out_dir: Path
    ema_decay: float = 0.0  # --ema: evaluations score a moving average of the weights


@dataclass(frozen=True)
class StepReport:
    step: int
    max_steps: int
    train_loss: float
    lr: float
    chars_per_second: float
    elapsed_s: float
    eta_s: float | None
    last_val_loss: float | None
    best_val_loss: float | None
    # Which limit will end the run ("max_steps" or "max_time", whichever comes first at this
    # speed) and how far towards it the run is, in [0, 1]; None means step / max_steps.
    limit: str = "max_steps"
    fraction_done: float | None = None


@dataclass(frozen=True)
class EvalReport:
    step: int
    val_loss: float
    best_val_loss: float
    improved: bool
    sample: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class TrainResult:
    stop_reason: str  # "max_steps", "max_time", "patience" or "interrupted"
    step: int
    best_val_loss: float | None
    elapsed_s: float
    chars_per_second: float
    out_dir: Path
    best_path: Path | None  # None where no best.pt exists (no evaluation yet)
    last_path: Path | None  # None where no last.pt exists (nothing saved yet)


# TrainResult is also the last event of a run: `train` reports it just before returning it.
Event = TrainStart | StepReport | EvalReport | TrainResult
