"""How well a run is doing: the loss over the whole validation text, and when a loss says the
weights have diverged."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import flag
from .device import autocast
from .errors import TrainingDiverged
from .model import CharRNN, State

# Divergence: a training or validation loss above this many times ln(vocabulary size), the loss
# of guessing uniformly, which is where every run starts. A run that is learning stays far
# below it; one whose weights blew up (too high a --lr) goes far above, often to 1e15 or NaN.
DIVERGED_FACTOR = 3.0


def diverged_above(vocab_size: int) -> float:
    """The loss (nats per character) above which a run with this vocabulary has diverged."""
    return max(DIVERGED_FACTOR * math.log(vocab_size), 5.0)


def evaluate(
    model: CharRNN, inputs: torch.Tensor, targets: torch.Tensor, chunk: int, bf16: bool
) -> float:
    """Mean loss (nats per character) over the whole validation streams, state carried."""
    total, count = loss_sum(model, inputs, targets, chunk, bf16)
    return total / count


@torch.no_grad()
def loss_sum(
    model: CharRNN, inputs: torch.Tensor, targets: torch.Tensor, chunk: int, bf16: bool
) -> tuple[float, int]:
    """The summed loss (nats) over validation streams (S, L), and how many characters it
    covers: what ranks that each validate some of the streams add up (none: (0.0, 0))."""
    if inputs.numel() == 0:
        return 0.0, 0
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=inputs.device, dtype=torch.float64)
    state: State | None = None
    for start in range(0, inputs.size(1), chunk):
        x, y = inputs[:, start : start + chunk], targets[:, start : start + chunk]
        with autocast(inputs.device, bf16):
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
    model.train(was_training)
    return float(total), targets.numel()


def diverged_error(what: str, value: float, step: int, last_path: Path) -> TrainingDiverged:
    kept = (
        f"the last good checkpoint is {last_path}"
        if last_path.exists()
        else "no checkpoint was written"
    )
    return TrainingDiverged(
        f"training diverged: the {what} loss became {value:.4g} nats per char at step {step}; "
        f"stopped, {kept}. Try a lower {flag('lr')} or {flag('grad_clip')}"
    )
