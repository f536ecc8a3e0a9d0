"""Reading and checking corpora, the train/validation split, and training batches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DataError


@dataclass(frozen=True)
class Corpus:
    text: str
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        """A short name for the run directory: the first source's stem."""
        return Path(self.sources[0]).stem or "corpus"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text from bytes, refusing binary data and naming the first bad byte."""
    nul = data.find(b"\0")
    if nul != -1:
        raise DataError(f"{source} looks binary (NUL byte at offset {nul}); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{source} is not UTF-8 (bad byte at offset {error.start}); "
            f"convert it with: iconv -t UTF-8 {source}"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _is_text_file(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" not in handle.read(8192)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files for the given paths: a directory stands for its text files, in sorted order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and _is_text_file(p)
            )
            if not found:
                raise DataError(f"directory {path} has no text files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise DataError(f"{path} is not a regular file")
        else:
            raise DataError(f"file not found: {path}")
    return files


def read_corpus(paths: list[Path | str]) -> Corpus:
    """Read one or more UTF-8 files (or directories of them) into a single text."""
    if not paths:
        raise DataError("no corpus given")
    files = expand_paths([Path(p) for p in paths])
    parts = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as error:
            raise DataError(f"cannot read {file}: {error.strerror}") from None
        text = decode_text(data, str(file))
        if text and not text.endswith("\n") and len(files) > 1:
            text += "\n"
        parts.append(text)
    text = "".join(parts)
    if not text:
        raise DataError(f"the corpus is empty: {', '.join(map(str, files))}")
    # Absolute paths, so a run can be resumed from any directory without naming its corpus.
    return Corpus(text=text, sources=tuple(str(f.resolve()) for f in files))


def split_ids(ids: torch.Tensor, val_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The last `val_fraction` of the text validates, the rest trains (nanoGPT's convention)."""
    n_train = int(len(ids) * (1.0 - val_fraction))
    return ids[:n_train], ids[n_train:]


def check_split(train_ids: torch.Tensor, val_ids: torch.Tensor, seq_len: int) -> None:
    if len(train_ids) < seq_len + 1 or len(val_ids) < 2:
        total = len(train_ids) + len(val_ids)
        raise DataError(
            f"the corpus is too short: {total} characters give {len(train_ids)} for training and "
            f"{len(val_ids)} for validation, but one training window needs {seq_len + 1} and "
            f"validation needs 2; use a longer text or a smaller --seq-len"
        )


class RandomWindows:
    """Each batch is `batch_size` windows at independent random offsets; no state carried."""

    stateful = False

    def __init__(
        self, ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
    ):
        self.ids, self.batch_size, self.seq_len, self.generator = (
            ids,
            batch_size,
            seq_len,
            generator,
        )
        self.offsets = torch.arange(seq_len + 1, device=ids.device)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs, targets, reset_state), inputs and targets (B, T)."""
        high = len(self.ids) - self.seq_len
        starts = torch.randint(0, high, (self.batch_size,), generator=self.generator)
        window = self.ids[starts.to(self.ids.device, non_blocking=True)[:, None] + self.offsets]
        return window[:, :-1], window[:, 1:], True


class StatefulWindows:
    """The text cut into `batch_size` contiguous streams read window after window.

    The hidden state is carried from one window to the next, so the model sees context longer
    than `seq_len`; it is reset at the start of each pass. The window depends only on the step,
    so a resumed run reads exactly what an uninterrupted one would.
    """

    stateful = True

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int):
        batch_size = max(1, min(batch_size, (len(ids) - 1) // seq_len))
        self.stream_len = (len(ids) - 1) // batch_size
        usable = self.stream_len * batch_size
        self.inputs = ids[:usable].view(batch_size, self.stream_len)
        self.targets = ids[1 : usable + 1].view(batch_size, self.stream_len)
        self.seq_len = seq_len
        self.windows_per_pass = self.stream_len // seq_len

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        index = step % self.windows_per_pass
        start = index * self.seq_len
        end = start + self.seq_len
        return self.inputs[:, start:end], self.targets[:, start:end], index == 0


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
