"""How the weights are updated: AdamW, and its learning-rate schedule (linear warmup, then a
cosine to a floor by steps or by time)."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig
from .model import CharRNN, decays


def schedule_progress(
    config: TrainConfig, step: int, session_s: float, start_progress: float = 0.0
) -> float:
    """How far along its cosine the schedule is, in [0, 1]: by steps towards max_steps, or by
    time, whichever is further. With max_time, the time share runs from `start_progress` (where a
    resumed run's schedule stood) to 1 over this invocation's budget.

    session_s: seconds this invocation has trained (a resumed run's earlier sessions excluded).
    """
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    if config.max_time:
        by_time = start_progress + (1.0 - start_progress) * session_s / config.max_time
        progress = max(progress, by_time)
    return min(1.0, max(0.0, progress))


def learning_rate(
    config: TrainConfig, step: int, session_s: float, start_progress: float = 0.0
) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr at max_steps or at the end of this
    invocation's max_time (see schedule_progress)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = schedule_progress(config, step, session_s, start_progress)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: CharRNN, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # The checkpoint schema expects these two groups, in this order, on --resume.
    decay = [p for p in model.parameters() if decays(p.shape)]
    no_decay = [p for p in model.parameters() if not decays(p.shape)]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99), fused=device.type == "cuda")
