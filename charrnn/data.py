"""Reading and checking corpora, and the train/validation split (batches.py cuts the batches)."""

from __future__ import annotations

import functools
import hashlib
import math
import shlex
import sys
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import torch

from .errors import DataError
from .text import plural
from .vocab import Vocab

# How a corpus read from stdin is recorded among its sources (and so in a checkpoint).
STDIN_SOURCE = "<stdin>"
MIN_VAL_CHARS = 2

# Byte order marks of the encodings people mistake for UTF-8; UTF-32 LE before UTF-16 LE,
# whose mark is its prefix.
IdsT = TypeVar("IdsT", np.ndarray, torch.Tensor)

_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32", "little-endian"),
    (b"\x00\x00\xfe\xff", "UTF-32", "big-endian"),
    (b"\xff\xfe", "UTF-16", "little-endian"),
    (b"\xfe\xff", "UTF-16", "big-endian"),
)


@dataclass(frozen=True)
class Corpus:
    text: str
    sources: tuple[str, ...]
    label: str = ""

    @property
    def name(self) -> str:
        """A short name for the run directory: what was named first (see read_corpus)."""
        return corpus_name(self.label, self.sources)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @functools.cached_property
    def vocab(self) -> Vocab:
        """The characters of the text: a new run's vocabulary (worked out once per corpus)."""
        return Vocab.from_text(self.text)


def corpus_name(label: str, sources: tuple[str, ...]) -> str:
    """A corpus's name for its run directory: its label, else its first source's stem."""
    if label:
        return label
    if sources[0] == STDIN_SOURCE:
        return "stdin"
    return Path(sources[0]).stem or "corpus"


def _utf_bom(data: bytes) -> tuple[str, str] | None:
    """(encoding, byte order) when `data` starts with a UTF-16 or UTF-32 byte order mark."""
    for bom, encoding, order in _BOMS:
        if data.startswith(bom):
            return encoding, order
    return None


def _iconv_hint(source: str, encoding: str) -> str:
    """A command that converts `source` to UTF-8 as printed (or a pipe, for stdin)."""
    if source == "stdin":
        return f"pipe it through: iconv -f {encoding} -t UTF-8"
    path = Path(source)
    target = path.with_name(f"{path.stem}.utf8{path.suffix or '.txt'}")
    return (
        f"convert it with: iconv -f {encoding} -t UTF-8 {shlex.quote(source)} "
        f"> {shlex.quote(str(target))}"
    )


def bom_error(head: bytes, source: str) -> DataError | None:
    """The error for text that starts with a UTF-16 or UTF-32 byte order mark, else None."""
    bom = _utf_bom(head)
    if bom is None:
        return None
    encoding, order = bom
    return DataError(
        f"{source} is {encoding} ({order}, with a byte order mark), not UTF-8; "
        f"{_iconv_hint(source, encoding)}"
    )


def binary_error(source: str, offset: int) -> DataError:
    return DataError(f"{source} looks binary (NUL byte at offset {offset}); give a UTF-8 text file")


def not_utf8_error(source: str, offset: int, byte: int) -> DataError:
    """The error for the first byte that is not UTF-8: where it is, and how to convert the text."""
    # Bytes 0x80-0x9F are control codes in Latin-1 but quotes, dashes and the euro sign in
    # Windows-1252, so a bad byte there means Windows text.
    encoding = "CP1252" if 0x80 <= byte <= 0x9F else "LATIN1"
    return DataError(
        f"{source} is not UTF-8 (bad byte at offset {offset}); "
        f"if it is {'Windows-1252' if encoding == 'CP1252' else 'Latin-1'}, "
        f"{_iconv_hint(source, encoding)}"
    )


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text from bytes, refusing binary data and naming the first bad byte.

    source: the file name for messages; "stdin" for text read from standard input.
    score_input.decode_pieces does the same for text read piece by piece.
    """
    problem = bom_error(data, source)
    if problem is not None:
        raise problem
    nul = data.find(b"\0")
    if nul != -1:
        raise binary_error(source, nul)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8_error(source, error.start, data[error.start]) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _is_text_file(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(8192)
    # UTF-16 text is full of NUL bytes but is text: keep it, so decode_text can say how to convert it.
    return b"\0" not in head or _utf_bom(head) is not None


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


@dataclass(frozen=True)
class CorpusFile:
    """One part of a corpus: a file, or stdin (path None)."""

    source: str  # recorded in checkpoints: a file's absolute path, or STDIN_SOURCE
    shown: str  # named in messages: the path as given, or "stdin"
    path: Path | None


def corpus_files(paths: list[Path | str]) -> list[CorpusFile]:
    """The parts a corpus is read from, in order: files, directories' text files, "-" (stdin)."""
    if not paths:
        raise DataError("no corpus given")
    if sum(str(p) == "-" for p in paths) > 1:
        raise DataError("'-' (stdin) can be given only once")
    files = []
    for given in paths:
        if str(given) == "-":
            files.append(CorpusFile(STDIN_SOURCE, "stdin", None))
            continue
        for file in expand_paths([Path(given)]):
            # Absolute paths, so a run can be resumed from any directory without naming its corpus.
            files.append(CorpusFile(str(file.resolve()), str(file), file))
    return files


def corpus_label(path: Path | str) -> str:
    """The run name a corpus path gives: stdin, a directory's name, or a file's stem."""
    if str(path) == "-":
        return "stdin"
    path = Path(path)
    if path.is_dir():
        return path.resolve().name or "corpus"
    return path.stem or "corpus"


def read_corpus(paths: list[Path | str], stdin: BinaryIO | None = None) -> Corpus:
    """Read one or more UTF-8 files (or directories of them, or "-" for stdin) into one text.

    The corpus is named after the first path: a file's stem, a directory's own name, or
    "stdin". stdin: where "-" reads from [default: sys.stdin.buffer].
    """
    pieces: list[tuple[str, str, bytes]] = []  # (source, name for messages, data)
    for part in corpus_files(paths):
        if part.path is None:
            data = (stdin or sys.stdin.buffer).read()
        else:
            try:
                data = part.path.read_bytes()
            except OSError as error:
                raise DataError(f"cannot read {part.shown}: {error.strerror}") from None
        pieces.append((part.source, part.shown, data))
    parts = []
    for _, shown, data in pieces:
        text = decode_text(data, shown)
        if text and not text.endswith("\n") and len(pieces) > 1:
            text += "\n"
        parts.append(text)
    text = "".join(parts)
    if not text:
        raise DataError(f"the corpus is empty: {', '.join(shown for _, shown, _ in pieces)}")
    return Corpus(
        text=text,
        sources=tuple(source for source, _, _ in pieces),
        label=corpus_label(paths[0]),
    )


def stored_corpus_paths(stored: list[str], checkpoint_path: Path) -> list[Path]:
    """The corpus a checkpoint names, to read again on --resume; stdin cannot be read again."""
    if STDIN_SOURCE in stored:
        again = ["-" if source == STDIN_SOURCE else source for source in stored]
        command = shlex.join(["charrnn", "train", *again, "--resume", str(checkpoint_path)])
        raise DataError(
            f"{checkpoint_path} was trained on text from stdin, which cannot be read again; "
            f"give the corpus again, e.g. pipe the same text in: ... | {command}"
        )
    return [Path(source) for source in stored]


def train_length(total: int, val_fraction: float) -> int:
    return int(total * (1.0 - val_fraction))


def split_ids(ids: IdsT, val_fraction: float) -> tuple[IdsT, IdsT]:
    """The last `val_fraction` of the text validates, the rest trains (nanoGPT's convention)."""
    n_train = train_length(len(ids), val_fraction)
    return ids[:n_train], ids[n_train:]


def val_fraction_range(total: int, window: int) -> tuple[str, str] | None:
    """The least and greatest --val-fraction, as short decimals, that leave `window` characters
    for training and MIN_VAL_CHARS for validation out of `total`; None when none does."""

    def works(fraction: float) -> bool:
        n_train = train_length(total, fraction)
        return 0 < fraction < 1 and window <= n_train <= total - MIN_VAL_CHARS

    if total < window + MIN_VAL_CHARS:
        return None
    # Two significant figures of the smallest fraction, more where the range is narrow.
    first = max(2, 1 - math.floor(math.log10(1 / total)))
    for decimals in range(first, 16):
        scale = 10**decimals
        low, high = math.floor(scale / total), math.ceil((1 - window / total) * scale)
        while low <= high and not works(low / scale):
            low += 1
        while high > low and not works(high / scale):
            high -= 1
        if low <= high and works(low / scale) and works(high / scale):
            return _short_decimal(low, decimals), _short_decimal(high, decimals)
    return None


def _short_decimal(units: int, decimals: int) -> str:
    return f"{units / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")


def check_split(train_ids: Sized, val_ids: Sized, seq_len: int) -> None:
    """Refuse a split too short for one training window or for validation, blaming the cause."""
    n_train, n_val = len(train_ids), len(val_ids)
    window = seq_len + 1
    if n_train >= window and n_val >= MIN_VAL_CHARS:
        return
    total = n_train + n_val
    split = (
        f"{plural(total, 'character')} give {n_train:,} for training and {n_val:,} for validation"
    )
    fractions = val_fraction_range(total, window)
    if fractions is None:  # too short whatever the split
        raise DataError(
            f"the corpus is too short: {split}, but one training window needs {window:,} "
            f"(--seq-len {seq_len} + 1) and validation needs {MIN_VAL_CHARS}; use a longer text "
            f"(at least {plural(window + MIN_VAL_CHARS, 'character')}) or a smaller --seq-len"
        )
    least, most = fractions
    if n_val < MIN_VAL_CHARS:  # the text is long enough: --val-fraction holds out too little
        wider = (
            f"--val-fraction {least} or more"
            if float(most) >= 0.5
            else (f"a --val-fraction from {least} to {most}")
        )
        raise DataError(
            f"--val-fraction is too small for this corpus: {split}, but validation needs "
            f"{MIN_VAL_CHARS}; use {wider}"
        )
    fixes = f"--seq-len {n_train - 1} or less" if n_train > 1 else "a smaller --seq-len"
    raise DataError(
        f"the corpus is too short for --seq-len {seq_len}: {split}, but one training window "
        f"needs {window:,}; use a longer text, {fixes}, or a --val-fraction of at most {most}"
    )
