"""What a run trains and validates on: its vocabulary, and the corpus's ids cut into batches and
validation streams.

The ids stay where the corpus keeps them (a memory map of the token cache for a large corpus):
each batch reads its windows from there and maps them to the model's ids, so host memory does
not grow with the corpus. Validation reads the first VAL_MAX_CHARS characters of the held-out
tail once. Under torchrun each rank reads its own rows of every batch and of the validation
streams.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .batches import (
    RandomWindows,
    StatefulWindows,
    streams_for,
    validation_ids,
    validation_streams,
)
from .checkpoint import Checkpoint
from .config import ModelConfig, TrainConfig
from .data import check_split, split_ids
from .distributed import Group, rows_of, uneven_rows_of
from .errors import CheckpointError, ConfigError
from .finetune import InitialWeights
from .token_cache import TokenCorpus
from .vocab import Vocab

# Validation streams read side by side (fewer on a short tail: each is a few windows long).
VAL_STREAMS = 64


@dataclass
class TrainingData:
    windows: RandomWindows | StatefulWindows
    generator: torch.Generator  # draws random windows' offsets; saved in last.pt
    val_inputs: torch.Tensor  # (S, L): this rank's validation streams, on the device
    val_targets: torch.Tensor
    train_chars: int
    val_chars: int  # characters validated (at most VAL_MAX_CHARS of the held-out tail)

    @property
    def chars_per_step(self) -> int:
        """Characters one step trains on, over all ranks: what the windows really make (a short
        text holds fewer streams than asked for)."""
        return self.windows.batch_size * self.windows.seq_len


def load_training_data(
    corpus: TokenCorpus,
    vocab: Vocab,
    config: TrainConfig,
    device: torch.device,
    group: Group | None = None,
) -> TrainingData:
    """Windows over the training text and validation streams, in `vocab`'s ids."""
    lookup = corpus.lookup(vocab)
    train_ids, val_ids = split_ids(corpus.ids, config.val_fraction)
    check_split(train_ids, val_ids, config.seq_len)
    generator = torch.Generator().manual_seed(config.seed)
    batch = streams_for(config.windows, len(train_ids), config.batch_size, config.seq_len)
    rows = rows_of(batch, group, "--batch-size")
    if config.windows == "stateful":
        windows: RandomWindows | StatefulWindows = StatefulWindows(
            train_ids, config.batch_size, config.seq_len, lookup, rows, device
        )
    else:
        windows = RandomWindows(
            train_ids, config.batch_size, config.seq_len, generator, lookup, rows, device
        )
    validated = validation_ids(val_ids, lookup)
    val_inputs, val_targets = validation_streams(validated, VAL_STREAMS, config.seq_len)
    share = uneven_rows_of(val_inputs.size(0), group)
    return TrainingData(
        windows,
        generator,
        val_inputs[share].to(device),
        val_targets[share].to(device),
        len(train_ids),
        len(validated),
    )


def run_vocab(
    corpus: TokenCorpus,
    model_config: ModelConfig | None,
    resume: Checkpoint | None,
    init_from: InitialWeights | None,
) -> tuple[Vocab, ModelConfig]:
    """A new run takes its vocabulary from the corpus, a fine-tuning run the grown one of its
    source; a resumed one keeps the checkpoint's (and must be given the same text)."""
    if init_from is not None:
        if resume is not None:
            raise ConfigError("a run either resumes or starts from init_from weights, not both")
        shape = model_config or ModelConfig(vocab_size=len(init_from.vocab))
        return init_from.vocab, replace(shape, vocab_size=len(init_from.vocab))
    if resume is None:
        vocab = corpus.vocab
        shape = model_config or ModelConfig(vocab_size=len(vocab))
        return vocab, replace(shape, vocab_size=len(vocab))
    if not resume.training_state:
        raise CheckpointError(
            f"{resume.path} has no training state to resume from; resume from a run's last.pt"
        )
    if resume.info.get("corpus_sha256") not in (None, corpus.sha256):
        raise CheckpointError(
            f"the corpus differs from the one {resume.path} was trained on "
            f"({', '.join(resume.info.get('corpus', []))}); resume with the same text"
        )
    return resume.vocab, resume.model_config
