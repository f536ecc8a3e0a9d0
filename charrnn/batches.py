"""Training batches and validation streams, read from ids wherever they are kept.

Ids come as a memory map of a token file, an array, or a CPU tensor, and leave as int64 tensors
in a model's ids (through a lookup table from the ids as stored). Windows depend only on the step
(stateful) or on a generator saved in last.pt (random), so a resumed run reads what an
uninterrupted one would; under torchrun each rank reads its own rows of every batch.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import train_length
from .errors import DataError
from .token_file import release_pages

# Validation reads at most this many characters: the first of the held-out tail, the same at
# every evaluation. An evaluation then costs the same whatever the corpus's size; corpora up to
# 10M characters (at --val-fraction 0.1: the shipped 5M-character one included) validate on
# their whole tail as before. The rest of a longer tail is neither trained on nor validated.
VAL_MAX_CHARS = 1_000_000
# Batches between releases of the token file's pages from the resident set (the kernel reads
# ahead of each window: 64 streams left about 50 MB resident after 20 steps).
RELEASE_EVERY = 256


def as_array(ids: np.ndarray | torch.Tensor) -> np.ndarray:
    """Ids as a numpy array: a memory map or array as is, a CPU tensor without a copy."""
    return ids.numpy() if isinstance(ids, torch.Tensor) else ids


class _Windows:
    """Windows read from `ids` (a memory map, an array or a CPU tensor) as int64 tensors.

    lookup: maps the ids as stored to the model's ids (None: the same). rows: the rows of the
    batch this process trains on, when several processes share it (None: all of them).
    device: where the batches go (the model's device).
    """

    def __init__(
        self,
        ids: np.ndarray | torch.Tensor,
        batch_size: int,
        seq_len: int,
        lookup: np.ndarray | None,
        rows: slice | None,
        device: torch.device | str,
    ):
        self.ids, self.batch_size, self.seq_len = as_array(ids), batch_size, seq_len
        self.lookup, self.rows = lookup, rows or slice(0, batch_size)
        self.device = torch.device(device)
        self.offsets = np.arange(seq_len + 1)
        self.reads = 0

    def _read(self, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (rows, T): the windows that begin at `starts`."""
        self.reads += 1
        if self.reads % RELEASE_EVERY == 0:
            release_pages(self.ids)
        window = np.asarray(self.ids[starts[self.rows, None] + self.offsets])
        tensor = torch.from_numpy(_looked_up(window, self.lookup).astype(np.int64))
        tensor = tensor.to(self.device)  # (rows, T + 1): a few KB per step
        return tensor[:, :-1], tensor[:, 1:]


class RandomWindows(_Windows):
    """Each batch is `batch_size` windows at independent random offsets; no state carried."""

    stateful = False

    def __init__(
        self,
        ids: np.ndarray | torch.Tensor,
        batch_size: int,
        seq_len: int,
        generator: torch.Generator,
        lookup: np.ndarray | None = None,
        rows: slice | None = None,
        device: torch.device | str = "cpu",
    ):
        super().__init__(ids, batch_size, seq_len, lookup, rows, device)
        self.generator = generator

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs, targets, reset_state), inputs and targets (B, T)."""
        # Every process draws the whole batch, so the generator's state is the same in each.
        high = len(self.ids) - self.seq_len
        starts = torch.randint(0, high, (self.batch_size,), generator=self.generator)
        return (*self._read(starts.numpy()), True)


class StatefulWindows(_Windows):
    """The text cut into `batch_size` contiguous streams read window after window.

    The hidden state is carried from one window to the next, so the model sees context longer
    than `seq_len`; it is reset at the start of each pass. The window depends only on the step,
    so a resumed run reads exactly what an uninterrupted one would.
    """

    stateful = True

    def __init__(
        self,
        ids: np.ndarray | torch.Tensor,
        batch_size: int,
        seq_len: int,
        lookup: np.ndarray | None = None,
        rows: slice | None = None,
        device: torch.device | str = "cpu",
    ):
        # A text too short for `batch_size` streams of at least one window gets fewer.
        batch_size = max(1, min(batch_size, (len(ids) - 1) // seq_len))
        super().__init__(ids, batch_size, seq_len, lookup, rows, device)
        self.stream_len = (len(ids) - 1) // batch_size
        self.stream_starts = np.arange(batch_size) * self.stream_len
        self.windows_per_pass = self.stream_len // seq_len

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        index = step % self.windows_per_pass
        return (*self._read(self.stream_starts + index * self.seq_len), index == 0)


def streams_for(windows: str, length: int, batch_size: int, seq_len: int) -> int:
    """How many rows a batch of `windows` really has over `length` characters of training text."""
    if windows == "stateful":
        return max(1, min(batch_size, (length - 1) // seq_len))
    return batch_size


def validation_note(total: int, val_fraction: float) -> list[str]:
    """A note for people when validation reads only the first VAL_MAX_CHARS of the tail."""
    held_out = total - train_length(total, val_fraction)
    if held_out <= VAL_MAX_CHARS:
        return []
    return [
        f"validation reads the first {VAL_MAX_CHARS:,} of the {held_out:,} held-out "
        "characters (the same ones at every evaluation)"
    ]


def validation_ids(val_ids: np.ndarray | torch.Tensor, lookup: np.ndarray | None) -> torch.Tensor:
    """The validation text as an int64 tensor: its first VAL_MAX_CHARS characters."""
    head = np.array(as_array(val_ids)[:VAL_MAX_CHARS])  # a copy: the map's pages can go
    release_pages(as_array(val_ids))
    return torch.from_numpy(_looked_up(head, lookup).astype(np.int64))


def _looked_up(ids: np.ndarray, lookup: np.ndarray | None) -> np.ndarray:
    """Stored ids as the model's; an id beyond the table means a damaged token file."""
    if lookup is None:
        return ids
    try:
        return lookup[ids]
    except IndexError:
        raise DataError(
            "the encoded corpus holds an id outside its vocabulary: its token file is damaged; "
            "delete it from the token cache (see CHARRNN_CACHE_DIR) to encode the corpus again"
        ) from None


def validation_streams(
    ids: torch.Tensor, max_streams: int, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole validation text as (inputs, targets) of shape (S, L), S streams read in order.

    Streams are at least a few windows long so that most predictions see context.
    """
    n = len(ids) - 1
    streams = max(1, min(max_streams, n // max(4 * seq_len, 1)))
    length = n // streams
    usable = length * streams
    inputs = ids[:usable].view(streams, length)
    targets = ids[1 : usable + 1].view(streams, length)
    return inputs, targets
