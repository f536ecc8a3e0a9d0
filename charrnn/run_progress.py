"""A run's clock and what it reports: elapsed time, speed, time left, and its events.

`RunProgress` is the half of training's `_Run` that measures; it reads the run's counters
(step, session start, earlier sessions' seconds, the losses) and writes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .events import StepReport, TrainResult, TrainStart


class RunProgress:
    """The clock and the reports of a training run (see training._Run for the attributes)."""

    config: TrainConfig
    step: int
    session_start: float  # perf_counter when this session's training began
    session_start_step: int
    prior_elapsed: float  # seconds trained by earlier sessions (a resumed run)
    chars_per_step: int
    last_train_loss: float
    last_val_loss: float | None
    best_val_loss: float | None
    out_dir: Path
    best_path: Path
    last_path: Path
    device: Any
    model: Any
    vocab: Any
    train_chars: int
    val_chars: int

    @property
    def precision(self) -> str:  # pragma: no cover - defined by the run
        raise NotImplementedError

    def elapsed(self) -> float:
        """Seconds the whole run has trained, earlier sessions of a resumed run included."""
        return self.prior_elapsed + self.session_elapsed()

    def session_elapsed(self) -> float:
        """Seconds this session has trained: what --max-time limits."""
        return time.perf_counter() - self.session_start

    def out_of_time(self) -> bool:
        return self.config.max_time is not None and self.session_elapsed() >= self.config.max_time

    def chars_per_second(self) -> float:
        """Training speed over this session (a resumed run's earlier sessions do not count)."""
        session_chars = (self.step - self.session_start_step) * self.chars_per_step
        return session_chars / max(self.session_elapsed(), 1e-9)

    def start_event(self) -> TrainStart:
        return TrainStart(
            device=str(self.device),
            precision=self.precision,
            num_parameters=self.model.num_parameters(),
            train_chars=self.train_chars,
            val_chars=self.val_chars,
            vocab_size=len(self.vocab),
            start_step=self.step,
            max_steps=self.config.max_steps,
            out_dir=self.out_dir,
            ema_decay=self.config.ema_decay,
        )

    def step_report(self, lr: float) -> StepReport:
        now, speed = self.elapsed(), self.chars_per_second()
        remaining = self.config.max_steps - self.step
        eta = remaining * self.chars_per_step / speed if speed > 0 else None
        limit, fraction_done = "max_steps", self.step / self.config.max_steps
        if self.config.max_time is not None:
            session = self.session_elapsed()
            time_left = max(0.0, self.config.max_time - session)
            if eta is None or time_left < eta:
                eta, limit = time_left, "max_time"
                fraction_done = min(1.0, session / self.config.max_time)
        return StepReport(
            self.step,
            self.config.max_steps,
            self.last_train_loss,
            lr,
            speed,
            now,
            eta,
            self.last_val_loss,
            self.best_val_loss,
            limit,
            fraction_done,
        )

    def result(self, stop_reason: str) -> TrainResult:
        return TrainResult(
            stop_reason=stop_reason,
            step=self.step,
            best_val_loss=self.best_val_loss,
            elapsed_s=self.elapsed(),
            chars_per_second=self.chars_per_second(),
            out_dir=self.out_dir,
            best_path=self.best_path if self.best_path.exists() else None,
            last_path=self.last_path if self.last_path.exists() else None,
        )
