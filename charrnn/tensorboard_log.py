"""The training metrics also as TensorBoard event files (`charrnn train --tensorboard [DIR]`),
written by PyTorch's SummaryWriter; the tensorboard package is an optional extra.

It listens to the same events as the live display: loss/train, lr and chars_per_second at every
step report, loss/val and loss/best_val at every evaluation (with the preview as text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import MissingExtra
from .events import EvalReport, Event, StepReport, TrainResult, TrainStart

HINT = (
    "--tensorboard needs the tensorboard package, an optional extra: "
    "pip install 'charrnn[tensorboard]'"
)
LOG_DIR_NAME = "tensorboard"


def default_log_dir(out_dir: Path | str) -> Path:
    """Where `--tensorboard` alone writes: inside the run directory."""
    return Path(out_dir) / LOG_DIR_NAME


class TensorBoardLog:
    """Writes events to `log_dir` from the start of training to its end; pass it as on_event.

    A resumed run (or one started again with --force) first hides what an earlier session
    logged after the step it starts from (SummaryWriter's purge_step), so the curves never
    double back over steps that are trained again.
    """

    def __init__(self, log_dir: Path | str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingExtra(HINT) from None
        self.log_dir = Path(log_dir)
        self._make_writer = SummaryWriter
        self.writer: Any = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainStart):
            self.writer = self._make_writer(
                str(self.log_dir), purge_step=event.start_step + 1, flush_secs=10
            )
        elif self.writer is None:
            return
        elif isinstance(event, StepReport):
            self.writer.add_scalar("loss/train", event.train_loss, event.step)
            self.writer.add_scalar("lr", event.lr, event.step)
            self.writer.add_scalar("chars_per_second", event.chars_per_second, event.step)
        elif isinstance(event, EvalReport):
            self.writer.add_scalar("loss/val", event.val_loss, event.step)
            self.writer.add_scalar("loss/best_val", event.best_val_loss, event.step)
            if event.sample:
                self.writer.add_text("sample", event.sample, event.step)
        elif isinstance(event, TrainResult):
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
