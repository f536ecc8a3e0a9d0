"""A corpus as token ids, read through a memory map, and the cache that keeps them between runs.

`open_corpus` encodes a corpus in one streaming pass (encode.py). A corpus of CACHE_MIN_BYTES or
more (its files together) is encoded once into a token file (token_file.py) in the cache
directory: `$CHARRNN_CACHE_DIR`, else `$XDG_CACHE_HOME/charrnn/tokens`, else
`~/.cache/charrnn/tokens`. The file is named after the corpus's files (their absolute paths)
and keyed by each file's size, modification and change times (nanoseconds) and a hash of
sampled blocks of its bytes, so a second run on the same corpus maps it at once and a changed
file is encoded again (the older token file of those paths is then removed). A smaller corpus,
and any corpus with stdin in it, is encoded on every run: in memory, or for stdin past
CACHE_MIN_BYTES into an unnamed temporary file in the cache directory.

Processes that open one corpus at once (the ranks of a torchrun job on one machine) take a lock
per corpus, so one encodes while the others wait and then map its file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .data import Corpus, CorpusFile, corpus_files, corpus_label, corpus_name
from .encode import Encoded, encode_parts, encode_text
from .errors import DataError, VocabError
from .token_file import BadTokenFile, map_ids, open_token_file, sampled_hash, write_trailer
from .vocab import Vocab, describe_chars

try:  # POSIX; elsewhere (Windows) concurrent encodes are not serialised
    import fcntl
except ImportError:  # pragma: no cover - platform dependent
    fcntl = None  # type: ignore[assignment]

CACHE_ENV = "CHARRNN_CACHE_DIR"
CACHE_MIN_BYTES = 16 * 2**20


@dataclass(frozen=True)
class TokenCorpus:
    """A corpus encoded to ids: what training reads (through a lookup table into a model's ids)."""

    ids: np.ndarray  # (N,) uint8, uint16 or uint32: a memory map of the token file, or an array
    chars: str  # the character of each id in `ids` (in the order they were met)
    sources: tuple[str, ...]
    sha256: str  # of the text as UTF-8 (a checkpoint's corpus_sha256)
    label: str = ""
    cache_path: Path | None = None  # the token file, where the corpus is cached
    cache_hit: bool = False  # mapped from an earlier run's token file, not encoded now

    @property
    def name(self) -> str:
        return corpus_name(self.label, self.sources)

    def __len__(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def vocab(self) -> Vocab:
        """Every character of the corpus, sorted: a new run's vocabulary."""
        return Vocab(self.chars)

    def lookup(self, vocab: Vocab) -> np.ndarray:
        """The table from this corpus's ids to `vocab`'s, which must hold all its characters."""
        missing = [char for char in self.chars if char not in vocab]
        if missing:
            raise VocabError(
                f"the corpus has characters the model never saw: {describe_chars(missing)}"
            )
        return np.array([vocab.index[char] for char in self.chars], dtype=np.int64)


def cache_dir() -> Path:
    """Where token files are kept (see the module's docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charrnn" / "tokens"


def open_corpus(
    paths: list[Path | str],
    stdin: BinaryIO | None = None,
    directory: Path | None = None,
    min_bytes: int | None = None,
) -> TokenCorpus:
    """The corpus at `paths` (files, directories of text files, "-" for stdin) as token ids.

    directory: the cache directory [default: cache_dir()]. min_bytes: the size from which a
    corpus of files is cached [default: CACHE_MIN_BYTES]. Checks and errors are read_corpus's.
    """
    min_bytes = CACHE_MIN_BYTES if min_bytes is None else min_bytes
    parts = corpus_files(paths)
    label = corpus_label(paths[0])
    directory = directory or cache_dir()
    if any(part.path is None for part in parts):
        return _uncached(parts, label, directory, stdin, min_bytes)
    stats = [_stat(part) for part in parts]
    if sum(size for size, _, _ in stats) < min_bytes:
        return _uncached(parts, label, directory, stdin, min_bytes)
    return _cached(parts, stats, label, directory)


def text_corpus_tokens(corpus: Corpus) -> TokenCorpus:
    """A corpus read whole into memory (`read_corpus`, or built by hand) as token ids."""
    buffer = io.BytesIO()
    encoded = encode_text(corpus.text, buffer)
    ids = np.frombuffer(buffer.getbuffer(), dtype=encoded.dtype, count=encoded.count)
    return TokenCorpus(ids, encoded.chars, corpus.sources, corpus.sha256, corpus.label)


Stat = tuple[int, int, int]  # a file's size, modification and change times (nanoseconds)


def _stat(part: CorpusFile) -> Stat:
    assert part.path is not None
    try:
        stat = part.path.stat()
    except OSError as error:
        raise DataError(f"cannot read {part.shown}: {error.strerror}") from None
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _uncached(
    parts: list[CorpusFile], label: str, directory: Path, stdin: BinaryIO | None, min_bytes: int
) -> TokenCorpus:
    """Encoded now: in memory, or (stdin, whose size is not known before) past `min_bytes` in
    an unnamed file in `directory`, mapped."""
    sources = tuple(part.source for part in parts)
    if all(part.path is not None for part in parts):  # files under min_bytes
        buffer = io.BytesIO()
        encoded = encode_parts(parts, buffer)
        ids = np.frombuffer(buffer.getbuffer(), dtype=encoded.dtype, count=encoded.count)
        return TokenCorpus(ids, encoded.chars, sources, encoded.sha256, label)
    spill = directory if _can_make(directory) else None  # else the system's temporary directory
    with tempfile.SpooledTemporaryFile(max_size=min_bytes, dir=spill) as handle:
        encoded = encode_parts(parts, handle, stdin)
        size = encoded.count * encoded.dtype.itemsize
        if size > min_bytes:  # spooled to disk: mapped, and gone once the map is
            ids = map_ids(handle, encoded.dtype, encoded.count)  # type: ignore[arg-type]
        else:
            handle.seek(0)
            ids = np.frombuffer(handle.read(size), dtype=encoded.dtype, count=encoded.count)
    return TokenCorpus(ids, encoded.chars, sources, encoded.sha256, label)


def _cached(parts: list[CorpusFile], stats: list[Stat], label: str, directory: Path) -> TokenCorpus:
    sources = tuple(part.source for part in parts)
    name = hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:16]
    key = _content_key(parts, stats)
    path = directory / f"{name}-{key}.tokens"
    _make_dir(directory)
    with _locked(directory / f"{name}.lock"):
        try:
            found = open_token_file(path, key)
            return TokenCorpus(found.ids, found.chars, sources, found.sha256, label, path, True)
        except BadTokenFile:
            pass  # absent, half-written or damaged: encoded again below, never used
        for stale in directory.glob(f".{name}-*.tmp"):  # left by a killed encode
            stale.unlink(missing_ok=True)
        encoded = _encode_to(path, parts, key)
        for older in directory.glob(f"{name}-*.tokens"):  # earlier versions of these files
            if older != path:
                older.unlink(missing_ok=True)
        if [_stat(part) for part in parts] != stats:
            path.unlink(missing_ok=True)
            raise DataError(
                "the corpus changed while it was being encoded; run again once it is written"
            )
        try:
            found = open_token_file(path, key)
        except BadTokenFile as problem:
            raise DataError(f"the token cache {path} cannot be read back: {problem}") from None
    return TokenCorpus(found.ids, encoded.chars, sources, encoded.sha256, label, path, False)


def _encode_to(path: Path, parts: list[CorpusFile], key: str) -> Encoded:
    """Encode into a temporary file beside `path`, renamed into place only when whole."""
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    try:
        with temporary.open("w+b") as handle:
            encoded = encode_parts(parts, handle)
            write_trailer(handle, encoded, key)
        os.replace(temporary, path)
    except OSError as problem:
        raise DataError(
            f"cannot write the token cache {path}: {problem.strerror or problem}; "
            f"set {CACHE_ENV} to a directory with room for it"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    return encoded


def _content_key(parts: list[CorpusFile], stats: list[Stat]) -> str:
    """What the token file was made from: per file its size, times and sampled content."""
    described = []
    for part, stat in zip(parts, stats, strict=True):
        assert part.path is not None
        try:
            with part.path.open("rb") as handle:
                sample = sampled_hash(handle, stat[0])
        except OSError as error:
            raise DataError(f"cannot read {part.shown}: {error.strerror}") from None
        described.append([*stat, sample])
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


def _can_make(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return True


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        raise DataError(
            f"cannot create the token cache directory {directory}: "
            f"{problem.strerror or problem}; set {CACHE_ENV} to a writable directory"
        ) from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (dropped by the kernel if this process dies)."""
    if fcntl is None:  # pragma: no cover - platform dependent
        yield
        return
    try:
        handle = path.open("a")
    except OSError as problem:
        raise DataError(
            f"cannot write to the token cache directory {path.parent}: "
            f"{problem.strerror}; set {CACHE_ENV} to a writable directory"
        ) from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
