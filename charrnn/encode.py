"""Encoding a corpus to ids as it is read: one pass, in pieces, in bounded memory.

Each file (and stdin) is read READ_BYTES at a time and decoded by `decode_pieces`, which makes
the checks and gives the messages of reading it whole (a UTF-16/32 byte order mark, NUL bytes,
the first byte that is not UTF-8, each with the file and byte offset; a UTF-8 byte order mark
dropped and "\\r\\n" read as "\\n", also where a read cuts a character or a "\\r\\n" in two). Files
are joined as `read_corpus` joins them, so the text, its SHA-256 and its vocabulary are the same.

The vocabulary is every character of every file, the validation tail's included, found in the
same pass: ids are given to characters in the order they are met and written at once, in the
narrowest type the vocabulary so far allows (uint8 up to 256 characters, uint16 up to 65,536,
else uint32; the ids already written are widened in place when it outgrows one). A model's ids
(the characters sorted) are then one lookup table away, applied as batches are read.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .data import CorpusFile
from .errors import DataError
from .score_input import decode_pieces

READ_BYTES = 1 << 20  # per read: the text in memory at once is a few MB whatever the corpus
_CODE_POINTS = 0x110000
# Test-only: seconds to pause after each piece, so a test can kill an encoding half-way.
_TEST_SLOW_ENCODE_S = float(os.environ.get("CHARRNN_TEST_SLOW_ENCODE_S", "0") or 0)


def ids_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds ids for `vocab_size` characters."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


@dataclass(frozen=True)
class Encoded:
    """What encoding wrote: `count` ids of type `dtype`, id i standing for chars[i]."""

    chars: str  # in the order they were met, not sorted
    count: int
    sha256: str  # of the text as UTF-8, as Corpus.sha256 (a checkpoint's corpus_sha256)
    dtype: np.dtype


class TokenWriter:
    """Ids written to `handle` (from its start) in the narrowest type the vocabulary allows."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.dtype = np.dtype(np.uint8)
        self.count = 0

    def write(self, ids: np.ndarray, vocab_size: int) -> None:
        needed = ids_dtype(vocab_size)
        if needed.itemsize > self.dtype.itemsize:
            self._widen(needed)
        self.handle.write(memoryview(ids.astype(self.dtype, copy=False)))
        self.count += len(ids)

    def _widen(self, dtype: np.dtype) -> None:
        """Rewrite the ids written so far in `dtype`, last block first: a block's new place
        never starts before its old one ends among the blocks not yet moved."""
        old, new, block = self.dtype.itemsize, dtype.itemsize, READ_BYTES
        end = self.count
        while end > 0:
            start = max(0, end - block)
            self.handle.seek(start * old)
            ids = np.frombuffer(self.handle.read((end - start) * old), self.dtype)
            self.handle.seek(start * new)
            self.handle.write(memoryview(ids.astype(dtype)))
            end = start
        self.handle.seek(self.count * new)
        self.dtype = dtype


class _Encoder:
    """Text pieces in, ids out: the lookup table from code points, the characters met, the hash."""

    def __init__(self, writer: TokenWriter) -> None:
        self.writer = writer
        # Code point -> id, its largest value meaning "not met yet". uint16 (a lookup twice as
        # fast as uint32) until the vocabulary reaches 65,535 characters.
        self.table = np.full(_CODE_POINTS, np.iinfo(np.uint16).max, dtype=np.uint16)
        self.chars: list[str] = []
        self.sha256 = hashlib.sha256()

    def feed(self, piece: str) -> None:
        # A str's code points, copied out in C (NUL is refused before, so numpy's habit of
        # dropping trailing NULs from strings cannot drop a character).
        codes = np.array(piece).reshape(1).view(np.uint32)
        ids = self.table[codes]
        if int(ids.max()) >= len(self.chars):
            self._add(codes[ids == np.iinfo(self.table.dtype).max])
            ids = self.table[codes]
        self.writer.write(ids, len(self.chars))
        self.sha256.update(piece.encode("utf-8"))
        if _TEST_SLOW_ENCODE_S:
            time.sleep(_TEST_SLOW_ENCODE_S)

    def _add(self, unseen: np.ndarray) -> None:
        """Give ids to the characters of `unseen` (code points), in code point order."""
        new = np.unique(unseen)
        count = len(self.chars) + len(new)
        unseen_id = np.iinfo(self.table.dtype).max
        if count >= unseen_id:  # the table's "not met yet" value is about to become an id
            wider = self.table.astype(np.uint32)
            wider[self.table == unseen_id] = np.iinfo(np.uint32).max
            self.table = wider
        self.table[new] = np.arange(len(self.chars), count)
        self.chars.extend(map(chr, new.tolist()))

    def finish(self) -> Encoded:
        return Encoded(
            "".join(self.chars), self.writer.count, self.sha256.hexdigest(), self.writer.dtype
        )


def encode_parts(
    parts: list[CorpusFile], handle: BinaryIO, stdin: BinaryIO | None = None
) -> Encoded:
    """Encode the corpus's parts, in order, into `handle`: its ids and nothing else.

    stdin: where a part without a path reads from [default: sys.stdin.buffer].
    """
    encoder = _Encoder(TokenWriter(handle))
    joined = len(parts) > 1
    for part in parts:
        last = ""
        for piece in decode_pieces(_chunks(part, stdin), part.shown):
            encoder.feed(piece)
            last = piece[-1]
        if joined and last and last != "\n":
            encoder.feed("\n")  # files never run into each other (as read_corpus joins them)
    if encoder.writer.count == 0:
        raise DataError(f"the corpus is empty: {', '.join(part.shown for part in parts)}")
    return encoder.finish()


def encode_text(text: str, handle: BinaryIO) -> Encoded:
    """Encode a text already in memory (a `Corpus`) into `handle`, as `encode_parts` would."""
    encoder = _Encoder(TokenWriter(handle))
    for start in range(0, len(text), READ_BYTES):
        encoder.feed(text[start : start + READ_BYTES])
    return encoder.finish()


def _chunks(part: CorpusFile, stdin: BinaryIO | None) -> Iterator[bytes]:
    if part.path is None:
        stream = stdin or sys.stdin.buffer
        while chunk := stream.read(READ_BYTES):
            yield chunk
        return
    try:
        with part.path.open("rb") as handle:
            while chunk := handle.read(READ_BYTES):
                yield chunk
    except OSError as error:
        raise DataError(f"cannot read {part.shown}: {error.strerror}") from None
