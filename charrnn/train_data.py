"""What a run trains and validates on: the corpus's ids cut into batches and validation streams.

The ids stay where the corpus keeps them (a memory map of the token cache for a large corpus):
each batch reads its windows from there and maps them to the model's ids, so host memory does
not grow with the corpus. Validation reads the first VAL_MAX_CHARS characters of the held-out
tail once. Under torchrun each rank reads its own rows of every batch and of the validation
streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .batches import (
    RandomWindows,
    StatefulWindows,
    streams_for,
    validation_ids,
    validation_streams,
)
from .config import TrainConfig
from .data import check_split, split_ids
from .distributed import Group, rows_of, uneven_rows_of
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
            train_ids, config.batch_size, config.seq_len, lookup, rows
        )
    else:
        windows = RandomWindows(
            train_ids, config.batch_size, config.seq_len, generator, lookup, rows
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
