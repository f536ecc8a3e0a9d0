"""Generating text: the public API over `decoding` (`generate`, `stream_text`, `sample_text`,
`sample_texts`, the training preview), `Generation` (any number of samples, SAMPLE_BATCH at a
time) and the choice of the step's weight precision.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Checkpoint, load_model
from .config import AUTO_BF16_MIN_BATCH, AUTO_FP16_BYTES, SampleConfig
from .decoding import (  # noqa: F401 - Sample, Piece and the constants are part of this API
    CPU_EMIT_EVERY,
    CUDA_EMIT_EVERY,
    NOISE_BLOCK,
    Piece,
    Sample,
    SampleBatch,
    fast_step_mode,
    filter_logits,
)
from .device import cpu_has_bf16
from .errors import ConfigError, VocabError
from .memory import check_sampling_fits
from .model import CharRNN, State
from .stepper import Stepper, step_weight_bytes
from .text import plural
from .vocab import Vocab, describe_chars

# Samples generated together. More are made batch after batch, so memory stays bounded however
# many are asked for; a batch of 1,024 is within a few percent of the fastest batch on a CPU.
SAMPLE_BATCH = 1024


class Generation:
    """One run of generation for `config.num_samples` samples, made SAMPLE_BATCH at a time.

    Iterate it for `Piece`s as text is produced; each sample's last piece carries it finished
    (samples stopped by the stop text end before the others), and afterwards `samples` holds
    every `Sample` in order (unless keep_samples is False: then only the pieces carry them, and
    memory stays bounded for any number of samples). `prime` is the prime as the model read it;
    `skipped_chars` the prime's characters it dropped (unknown='skip'); `precision` the weights'
    precision for the steps.
    """

    def __init__(
        self, model: CharRNN, vocab: Vocab, config: SampleConfig, keep_samples: bool = True
    ):
        self.model, self.vocab, self.config = model, vocab, config
        self.device = model.head.weight.device
        self.skipped_chars = vocab.unknown_chars(config.prime)
        if self.skipped_chars and config.unknown == "error":
            raise VocabError(
                f"the prime has {plural(len(self.skipped_chars), 'character')} the model never saw: "
                f"{describe_chars(self.skipped_chars)}; remove them or pass --unknown skip"
            )
        self.batch_size = min(config.num_samples, SAMPLE_BATCH)
        check_sampling_fits(model.config, self.batch_size, self.device)
        self.precision = resolve_precision(config.precision, model, self.device, self.batch_size)
        self.prime_ids = vocab.encode(config.prime, unknown="skip")
        self.prime = vocab.decode(self.prime_ids)
        first_seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        self.seeds = range(first_seed, first_seed + config.num_samples)
        self.samples: list[Sample] = []
        self.keep_samples = keep_samples
        self._started = False
        self._batch: SampleBatch | None = None

    @property
    def skipped_note(self) -> str | None:
        """A sentence on the prime characters dropped (unknown='skip'), or None."""
        if not self.skipped_chars:
            return None
        count = plural(len(self.skipped_chars), "prime character")
        return f"skipped {count} the model never saw: {describe_chars(self.skipped_chars)}"

    def run(self) -> list[Sample]:
        """Generate everything and return the samples."""
        for _ in self:
            pass
        return self.samples

    def read_prime(self) -> tuple[State, torch.Tensor]:
        """State and logits (1, V) after the model reads the prime (or a newline if empty)."""
        start = self.vocab.index.get("\n", 0)
        ids = torch.tensor([self.prime_ids or [start]], device=self.device)
        with fast_step_mode(self.device):
            was_training = self.model.training
            self.model.eval()
            logits, state = self.model(ids)
            self.model.train(was_training)
        return state, logits[:, -1]

    @property
    def _stepper(self) -> Stepper | None:
        """The stepper of the batch running (or the last one run)."""
        return None if self._batch is None else self._batch.stepper

    def __iter__(self) -> Iterator[Piece]:
        if self._started:
            raise RuntimeError("a Generation runs once; call generate() again for more")
        self._started = True
        for first in range(0, len(self.seeds), self.batch_size):
            self._batch = SampleBatch(self, self.seeds[first : first + self.batch_size])
            for piece in self._batch:
                if first:
                    piece = replace(piece, sample=piece.sample + first)
                if piece.finished is not None and self.keep_samples:
                    self.samples.append(piece.finished)
                yield piece
        self.samples.sort(key=lambda sample: sample.seed)  # seeds rise with the sample's index


def resolve_precision(
    precision: str, model: CharRNN, device: torch.device, batch_size: int = 1
) -> str:
    """The weights' precision for the step: fp16 and int8 run on fbgemm, bf16 on oneDNN with a
    CPU's bf16 matrix units; all of them on CPU only. 'auto': bf16 for a batch of at least
    AUTO_BF16_MIN_BATCH on such a CPU, else fp16 for a model over AUTO_FP16_BYTES, else fp32."""
    fbgemm = "fbgemm" in torch.backends.quantized.supported_engines
    if precision in ("fp16", "int8") and (device.type != "cpu" or not fbgemm):
        raise ConfigError(
            f"--precision {precision} needs a CPU with PyTorch's fbgemm kernels (x86); use fp32"
        )
    if precision == "bf16" and (device.type != "cpu" or not cpu_has_bf16()):
        raise ConfigError(
            "--precision bf16 needs a CPU with bf16 matrix units (AVX512-BF16 or AMX on x86, "
            "BF16 on Arm); use fp32"
        )
    if precision != "auto":
        return precision
    if device.type != "cpu":
        return "fp32"
    if batch_size >= AUTO_BF16_MIN_BATCH and cpu_has_bf16():
        return "bf16"
    return "fp16" if fbgemm and step_weight_bytes(model) > AUTO_FP16_BYTES else "fp32"


def generate(
    checkpoint: Checkpoint | str | Path | None = None,
    config: SampleConfig | None = None,
    **options: Any,
) -> Generation:
    """Start generating: iterate the result for `Piece`s as text is produced.

    checkpoint: a loaded Checkpoint (moved to the device), a checkpoint file, a run directory
    (its best.pt) or None for the shipped model. options: SampleConfig fields, overriding
    `config`. The stop text is dropped from the samples.
    """
    config = replace(config or SampleConfig(), **options)
    loaded = load_model(checkpoint, config.device)
    return Generation(loaded.model, loaded.vocab, config)


def stream_text(
    checkpoint: Checkpoint | str | Path | None = None,
    config: SampleConfig | None = None,
    **options: Any,
) -> Iterator[str]:
    """Yield one sample's text as it is produced (the prime is not repeated)."""
    for piece in generate(checkpoint, config, **{**options, "num_samples": 1}):
        if piece.text:
            yield piece.text


def sample_text(
    checkpoint: Checkpoint | str | Path | None = None,
    config: SampleConfig | None = None,
    **options: Any,
) -> str:
    """One sample's whole text (the continuation, without the prime)."""
    return "".join(stream_text(checkpoint, config, **options))


def sample_texts(
    checkpoint: Checkpoint | str | Path | None = None,
    config: SampleConfig | None = None,
    **options: Any,
) -> list[str]:
    """The texts of `num_samples` samples, in order."""
    return [sample.text for sample in generate(checkpoint, config, **options).run()]


def preview(model: CharRNN, vocab: Vocab, length: int, seed: int, temperature: float = 0.8) -> str:
    """A short sample for the training log, from its own generator so training RNG is untouched."""
    config = SampleConfig(length=length, temperature=temperature, seed=seed)
    return "".join(piece.text for piece in Generation(model, vocab, config))
