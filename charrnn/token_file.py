"""A token file: the ids of an encoded corpus, then a trailer that says what they are.

Layout: the ids (uint8, uint16 or uint32, from byte 0, so a memory map reads them in place),
then a JSON trailer (the type, the count, the characters in id order, the text's SHA-256, the
cache key it was made for, a hash of sampled blocks of the ids), the trailer's SHA-256, its
length (8 bytes, little-endian) and MAGIC. A file is written under a temporary name and renamed
into place only when whole, and it is checked when opened: a file that is cut short, too long,
foreign, written for another key or whose sampled blocks do not match is refused, never used.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .encode import Encoded

MAGIC = b"CHARRNN-TOKENS/1"
FORMAT_VERSION = 1
_LENGTH_BYTES = 8
_HASH_BYTES = 32
_TAIL_BYTES = _HASH_BYTES + _LENGTH_BYTES + len(MAGIC)
# Sampled hashing: files up to SAMPLE_WHOLE_BYTES are hashed whole, larger ones by SAMPLE_BLOCKS
# blocks of SAMPLE_BLOCK_BYTES spread evenly from the first byte to the last (64 KB in all), so a
# check reads little whatever the size: a corpus of many files is checked without reading it.
SAMPLE_BLOCK_BYTES = 4096
SAMPLE_BLOCKS = 16
SAMPLE_WHOLE_BYTES = SAMPLE_BLOCK_BYTES * SAMPLE_BLOCKS


class BadTokenFile(Exception):
    """A token file that must not be used; the message says why (for a note, not an error)."""


@dataclass(frozen=True)
class TokenFile:
    """An opened token file: its ids, mapped read-only, and what its trailer says."""

    ids: np.ndarray
    chars: str
    sha256: str
    key: str


def sampled_hash(handle: BinaryIO, length: int) -> str:
    """A BLAKE2b hash of the first `length` bytes of `handle`: all of them, or sampled blocks."""
    digest = hashlib.blake2b(str(length).encode(), digest_size=16)
    if length <= SAMPLE_WHOLE_BYTES:
        handle.seek(0)
        digest.update(handle.read(length))
        return digest.hexdigest()
    last = length - SAMPLE_BLOCK_BYTES
    for index in range(SAMPLE_BLOCKS):
        handle.seek(last * index // (SAMPLE_BLOCKS - 1))
        digest.update(handle.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def write_trailer(handle: BinaryIO, encoded: Encoded, key: str) -> None:
    """Finish a token file whose ids `handle` holds: the trailer after them, then fsync."""
    data_bytes = encoded.count * encoded.dtype.itemsize
    handle.flush()
    trailer = {
        "format": FORMAT_VERSION,
        "key": key,
        "dtype": encoded.dtype.name,
        "count": encoded.count,
        "chars": encoded.chars,
        "sha256": encoded.sha256,
        "ids_sample": sampled_hash(handle, data_bytes),
    }
    body = json.dumps(trailer).encode("ascii")
    handle.seek(data_bytes)
    handle.truncate()
    handle.write(body)
    handle.write(hashlib.sha256(body).digest())
    handle.write(len(body).to_bytes(_LENGTH_BYTES, "little"))
    handle.write(MAGIC)
    handle.flush()
    os.fsync(handle.fileno())


def open_token_file(path: Path, key: str) -> TokenFile:
    """The token file at `path`, checked, its ids mapped; BadTokenFile when it cannot be used."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            trailer, data_bytes = _read_trailer(handle, size)
            if trailer["key"] != key:
                raise BadTokenFile("written for another version of the corpus")
            if sampled_hash(handle, data_bytes) != trailer["ids_sample"]:
                raise BadTokenFile("its ids do not match their recorded hash")
            ids = _map(handle, trailer["dtype"], trailer["count"])
    except OSError as problem:
        raise BadTokenFile(f"unreadable: {problem.strerror or problem}") from None
    return TokenFile(ids, trailer["chars"], trailer["sha256"], key)


def map_ids(handle: BinaryIO, dtype: np.dtype, count: int) -> np.ndarray:
    """The first `count` ids of type `dtype` in the file `handle`, mapped read-only."""
    handle.flush()  # what is still in the file object's buffer is not in the file yet
    return _map(handle, dtype.name, count)


def release_pages(ids: np.ndarray) -> None:
    """Drop a mapped token file's pages from this process's resident set. They stay in the
    kernel's page cache, so reading them again is cheap; without this, a pass over a corpus
    would leave all of it counted in the process's memory."""
    base: object = ids
    while isinstance(base, np.ndarray):
        base = base.base
    mapped = getattr(base, "obj", base)  # np.frombuffer keeps a memoryview of the map
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def _map(handle: BinaryIO, dtype: str, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=dtype)
    length = count * np.dtype(dtype).itemsize
    # The map outlives the file object: it holds its own reference to the file.
    mapped = mmap.mmap(handle.fileno(), length, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        # Windows read a few pages here and there: without this the kernel maps hundreds of KB
        # around each one (64 streams: 44 MB resident after the first batch).
        mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=dtype, count=count)


def _read_trailer(handle: BinaryIO, size: int) -> tuple[dict[str, Any], int]:
    """The trailer, checked against itself and the file's size, and the bytes of ids before it."""
    if size < _TAIL_BYTES:
        raise BadTokenFile("cut short")
    handle.seek(size - _TAIL_BYTES)
    tail = handle.read(_TAIL_BYTES)
    stored_hash, length = tail[:_HASH_BYTES], tail[_HASH_BYTES : _HASH_BYTES + _LENGTH_BYTES]
    if tail[-len(MAGIC) :] != MAGIC:
        raise BadTokenFile("not a whole charrnn token file")
    body_bytes = int.from_bytes(length, "little")
    if body_bytes > size - _TAIL_BYTES:
        raise BadTokenFile("its trailer is damaged")
    handle.seek(size - _TAIL_BYTES - body_bytes)
    body = handle.read(body_bytes)
    if hashlib.sha256(body).digest() != stored_hash:
        raise BadTokenFile("its trailer is damaged")
    try:
        trailer = json.loads(body)
        dtype = np.dtype(trailer["dtype"])
        count, chars = int(trailer["count"]), trailer["chars"]
        fields_ok = (
            trailer["format"] == FORMAT_VERSION
            and dtype.name in ("uint8", "uint16", "uint32")
            and isinstance(chars, str)
            and len(set(chars)) == len(chars) > 0
            and isinstance(trailer["sha256"], str)
            and isinstance(trailer["key"], str)
        )
    except (ValueError, KeyError, TypeError):
        raise BadTokenFile("its trailer is damaged") from None
    data_bytes = size - _TAIL_BYTES - body_bytes
    if not fields_ok or data_bytes != count * dtype.itemsize:
        raise BadTokenFile("its length does not match its trailer")
    return trailer, data_bytes
