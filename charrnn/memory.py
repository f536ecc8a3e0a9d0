"""Will it fit? Memory estimates made before anything is allocated.

A model or batch too big for the machine must be refused in one line with the estimate and what
the machine has, not end in an allocator traceback after minutes, or in swap. The estimates are
deliberately simple: they count the big tensors (weights, optimizer state, what a step keeps for
backward), not the allocator's slack, so they err on the side of letting a run start.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import ModelConfig, flag
from .errors import ResourceError

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
FLOAT_BYTES = 4
# Refuse when the estimate is above this share of the free memory: the estimate leaves out the
# allocator's slack, the interpreter and torch itself.
USABLE_SHARE = 0.9


def parameter_count(config: ModelConfig) -> int:
    """CharRNN's parameters, counted from its config without building it."""
    gates, hidden = _GATES[config.cell], config.hidden_size
    core = 0
    for layer in range(config.num_layers):
        inputs = config.embedding_size if layer == 0 else hidden
        core += gates * hidden * (inputs + hidden) + 2 * gates * hidden  # weights, two biases
    embedding = config.vocab_size * config.embedding_size
    head = hidden * config.vocab_size + config.vocab_size
    return embedding + core + head


def training_bytes(config: ModelConfig, batch_size: int, seq_len: int) -> int:
    """Weights, gradients and AdamW's two moments, plus what one step keeps for backward."""
    static = 4 * parameter_count(config) * FLOAT_BYTES
    gates = _GATES[config.cell]
    # Per character: each layer's gates and outputs, the embedding, the logits and their grads.
    per_char = (
        config.num_layers * config.hidden_size * (gates + 2)
        + config.embedding_size
        + 3 * config.vocab_size
    )
    return static + batch_size * seq_len * per_char * FLOAT_BYTES


def sampling_bytes(config: ModelConfig, num_samples: int) -> int:
    """Weights plus the batch of samples: states, logits and the noise drawn per block."""
    state = 2 * config.num_layers * config.hidden_size  # h and c (GRU/RNN: h only, over-counted)
    per_sample = state * 3 + config.vocab_size * 130  # logits, and 128 steps of noise at a time
    return parameter_count(config) * FLOAT_BYTES + num_samples * per_sample * FLOAT_BYTES


def free_bytes(device: torch.device) -> int | None:
    """Memory free for tensors on `device`, or None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        return _linux_available()
    return None


def _linux_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(what: str, needed: int, device: torch.device, advice: str) -> None:
    """Raise ResourceError when `needed` bytes will not fit in the device's free memory."""
    free = free_bytes(device)
    if free is not None and needed > USABLE_SHARE * free:
        raise ResourceError(
            f"{what} needs about {_size(needed)} but {device.type} has {_size(free)} free; {advice}"
        )


def check_training_fits(
    config: ModelConfig, batch_size: int, seq_len: int, device: torch.device
) -> None:
    check_fits(
        f"this model ({parameter_count(config):,} parameters) with {batch_size:,} windows of "
        f"{seq_len:,} characters",
        training_bytes(config, batch_size, seq_len),
        device,
        f"try a smaller {flag('hidden_size')}, {flag('num_layers')}, {flag('batch_size')} "
        f"or {flag('seq_len')}",
    )


def check_sampling_fits(config: ModelConfig, num_samples: int, device: torch.device) -> None:
    check_fits(
        f"{num_samples:,} samples at once",
        sampling_bytes(config, num_samples),
        device,
        f"ask for fewer {flag('num_samples')}",
    )


def _size(count: int) -> str:
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count / 2**10:,.1f} KB"
