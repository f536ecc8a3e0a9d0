"""What a training run's `last.pt` holds to continue exactly, and its saving and restoring.

`RunState` is the half of training's `_Run` that saves and restores: saving and restoring are the
two halves of one list (`_training_state` and `_restore`), so they live side by side here.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .averaging import WeightAverage
from .checkpoint import save_checkpoint
from .checkpoint_schema import damaged
from .config import TrainConfig
from .model import State, state_from_saved, state_to_cpu
from .ranks import RankState


class RunState:
    """Saving and restoring a training run (see training._Run for the attributes; `elapsed`,
    `schedule_progress` and `precision` come from the run and its RunProgress)."""

    config: TrainConfig
    ranks: RankState
    device: torch.device
    model: Any
    vocab: Any
    optimizer: torch.optim.Optimizer
    data_generator: torch.Generator
    windows: Any
    corpus: Any
    carried: State | None
    step: int
    best_val_loss: float | None
    last_val_loss: float | None
    evals_since_best: int
    prior_elapsed: float
    start_progress: float
    last_saved: float
    save_agreed: bool
    last_path: Path
    lineage: dict[str, Any] | None
    average: WeightAverage | None
    stop_reason: str | None

    def _training_state(self) -> dict[str, Any]:
        """What last.pt holds to resume; under torchrun gathered from every rank (a collective)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            "rng_data": self.data_generator.get_state(),
            "carried_state": self.ranks.gather_carried(state_to_cpu(self.carried)),
            **self.ranks.rng_states(),
            "step": self.step,
            "best_val_loss": self.best_val_loss,
            "last_val_loss": self.last_val_loss,
            "evals_since_best": self.evals_since_best,
            "elapsed_s": self.elapsed(),
            "schedule_progress": self.schedule_progress(),
            **({"average": self.average.state()} if self.average is not None else {}),
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng_cpu"])
        if self.device.type == "cuda" and saved.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(saved["rng_cuda"])
        self.data_generator.set_state(saved["rng_data"])
        carried = self.ranks.my_rows(saved.get("carried_state"), self.windows.rows)
        self.carried = state_from_saved(carried, self.device)
        self.step = int(saved["step"])
        self.best_val_loss = saved.get("best_val_loss")
        self.last_val_loss = saved.get("last_val_loss")
        self.evals_since_best = int(saved.get("evals_since_best", 0))
        self.prior_elapsed = float(saved.get("elapsed_s", 0.0))
        self.start_progress = float(saved.get("schedule_progress", 0.0))
        if self.average is not None and "average" in saved:  # --ema may come on at --resume
            self.average.load_state(saved["average"])

    def _check_carried_state(self, saved: list[torch.Tensor] | None, path: Path | None) -> None:
        # The checkpoint schema checked its shape but the number of streams, which depends on the
        # corpus: a stream for each row of the (whole) batch.
        if self.windows.stateful and saved:
            streams = saved[0].shape[1]
            if streams != self.windows.batch_size:
                raise damaged(
                    path,
                    f"training.carried_state holds {streams} streams, "
                    f"the corpus makes {self.windows.batch_size}",
                )

    def _info(self, val_loss: float | None) -> dict[str, Any]:
        return {
            "step": self.step,
            "val_loss": val_loss,
            "best_val_loss": self.best_val_loss,
            "elapsed_s": self.elapsed(),
            "corpus": list(self.corpus.sources),
            "corpus_sha256": self.corpus.sha256,
            "corpus_chars": len(self.corpus),
            "device": str(self.device),
            "precision": self.precision,
            "num_parameters": self.model.num_parameters(),
            "charrnn_version": __version__,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"init_from": self.lineage} if self.lineage else {}),
            # Why the run ended, in the last.pt saved as it ends (`charrnn runs` reads it).
            **({"stop_reason": self.stop_reason} if self.stop_reason else {}),
        }

    def save_last(self) -> None:
        self.last_saved = time.perf_counter()
        self.save_agreed = False
        state = self._training_state()  # a collective under torchrun: every rank gathers
        if not self.ranks.main:
            return
        save_checkpoint(
            self.last_path,
            self.model,
            self.vocab,
            self.config,
            self._info(self.last_val_loss),
            training_state=state,
        )
