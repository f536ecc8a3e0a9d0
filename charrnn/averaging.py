"""An exponential moving average of the weights, for `charrnn train --ema DECAY`.

The weights an optimizer leaves at any one step carry that step's noise; their running average
over the last few hundred steps sits nearer the bottom of the valley and scores better on text
the model has not seen (Polyak averaging, as in AWD-LSTM's averaged SGD and most modern LM
training). Training steps the live weights as usual; the average follows them, and evaluations,
best.pt and the previews use the average. last.pt keeps both, so a resumed run continues both.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from .model import CharRNN


class WeightAverage:
    """The average of a model's weights: `model` is a CharRNN holding it, to evaluate and save."""

    def __init__(self, live: CharRNN, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(live)
        self.model.requires_grad_(False)
        self.model.eval()
        self.updates = 0  # steps averaged since the average began (it warms up over them)

    def step_decay(self) -> float:
        """This update's decay: a young average would otherwise be mostly the weights it began
        from (random ones in a new run), so it warms up as (1 + n) / (10 + n) until `decay`."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, live: CharRNN) -> None:
        """Move the average towards the live weights, after an optimizer step."""
        weight = 1.0 - self.step_decay()
        for average, current in zip(self.model.parameters(), live.parameters(), strict=True):
            average.lerp_(current.detach(), weight)
        self.updates += 1

    def state(self) -> dict[str, Any]:
        """What last.pt keeps to continue the average (on the CPU, like the rest of it)."""
        weights = {name: value.detach().cpu() for name, value in self.model.state_dict().items()}
        return {"weights": weights, "updates": self.updates}

    def load_state(self, saved: dict[str, Any]) -> None:
        """Continue the average `state` saved (last.pt's, checked by resume_schema)."""
        self.model.load_state_dict(saved["weights"])
        self.updates = int(saved["updates"])


def weight_average(live: CharRNN, decay: float) -> WeightAverage | None:
    """The run's average of its weights when --ema is on; it starts from `live` (a run that
    turns --ema on at --resume starts it from its current weights)."""
    return WeightAverage(live, decay) if decay > 0 else None
