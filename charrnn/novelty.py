"""Is a sample new writing or recited training text? After each sample, the longest stretch of
it found verbatim in the corpus, and the share of its 20-character windows found there.

Both come from one suffix array of the corpus (every suffix's start, sorted), built once with
numpy by prefix doubling (about 3 s for 5 MB) and cached on disk under the corpus's sha256, in
$CHARRNN_CACHE_DIR, else $XDG_CACHE_HOME/charrnn, else ~/.cache/charrnn (novelty/<sha256>.npy,
4 bytes per character). For each position of the sample, a binary search over the array finds
the longest prefix of the rest of the sample that occurs in the corpus (its "matching
statistic"): the largest is the longest copied span, and a window is found exactly when the
statistic at its start reaches its length. Exact, with no scan of the corpus per window.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WINDOW = 20  # characters of the windows looked for
FIRST_PROBE = 64  # characters compared at first; more only where a match is that long
SHOWN_SPAN = 60  # characters of the span a summary shows
# Newlines and other control characters as visible marks in a one-line summary.
_PICTURES = {code: 0x2400 + code for code in range(32)} | {ord("\n"): 0x21B5}


@dataclass(frozen=True)
class Novelty:
    """How much of a sample the corpus holds verbatim."""

    longest_span: str  # the longest stretch of the sample found in the corpus
    span_start: int  # where it starts in the sample
    corpus_offset: int | None  # where a copy of it starts in the corpus (None: nothing found)
    corpus_line: int | None  # the corpus's line (1-based) that copy starts on
    windows: int  # the sample's WINDOW-character windows
    windows_found: int  # of those, how many the corpus holds

    @property
    def share_found(self) -> float | None:
        """windows_found / windows; None for a sample shorter than one window."""
        return self.windows_found / self.windows if self.windows else None

    def summary(self, corpus: str) -> str:
        """One plain sentence for people: 'novelty: longest span found in X: 57 chars ...'."""
        if self.windows:
            share = f"{self.windows_found:,} of {self.windows:,} {WINDOW}-character windows "
            share += f"({self.windows_found / self.windows:.0%}) found there"
        else:
            share = f"shorter than one {WINDOW}-character window"
        if not self.longest_span:
            return f"novelty: no character of the sample is in {corpus}; {share}"
        shown = self.longest_span.translate(_PICTURES)
        if len(shown) > SHOWN_SPAN:
            shown = shown[: SHOWN_SPAN - 1] + "\u2026"
        return (
            f"novelty: longest span found in {corpus}: {len(self.longest_span):,} chars, "
            f'"{shown}" (at its line {self.corpus_line}); {share}'
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "longest_span": self.longest_span,
            "longest_span_chars": len(self.longest_span),
            "span_start": self.span_start,
            "corpus_line": self.corpus_line,
            "window": WINDOW,
            "windows": self.windows,
            "windows_found": self.windows_found,
            "share_found": self.share_found,
        }


def cache_dir() -> Path:
    """Where suffix arrays are cached (see the module's docstring)."""
    if os.environ.get("CHARRNN_CACHE_DIR"):
        return Path(os.environ["CHARRNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charrnn"


def cache_path(text: str, cache: Path | None = None) -> Path:
    """The file that holds (or will hold) the suffix array of `text`."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return (cache_dir() if cache is None else cache) / "novelty" / f"{digest}.npy"


def training_corpus(given: str, info: dict[str, object]) -> tuple[str, str]:
    """The text to compare samples with, and its name for messages: the corpus `given` (a file
    or directory) or, for "", the one the model was trained on (info: the checkpoint's), found
    at its recorded paths or, by its sha256, as the shipped corpus. DataError when that is not
    at hand."""
    from .data import read_corpus
    from .errors import DataError
    from .resources import default_corpus_path

    if given:
        return read_corpus([given]).text, given
    sources = [str(source) for source in info.get("corpus") or []]  # type: ignore[attr-defined]
    sha256 = info.get("corpus_sha256")
    if sources and all(Path(source).is_file() for source in sources):
        corpus = read_corpus(sources)
        if sha256 in (None, corpus.sha256):
            return corpus.text, ", ".join(sources)
    with contextlib.suppress(DataError):
        shipped = default_corpus_path()
        corpus = read_corpus([shipped])
        if corpus.sha256 == sha256:
            return corpus.text, str(shipped)
    named = ", ".join(sources) or "not recorded"
    raise DataError(
        f"the text this model was trained on is not at hand ({named}, or changed since); "
        "give it: --novelty CORPUS"
    )


def suffix_array(text: str) -> np.ndarray:
    """The start of every suffix of `text`, in sorted order (int32 below 2**31 characters).

    Prefix doubling that refines only what is still tied: suffixes are first sorted by as
    many leading characters as pack into an int64 (10 for a vocabulary under 80); then, round
    after round, the suffixes that still share a group are sorted by (their group, the group of
    the suffix `span` characters on), which orders them by twice as many characters. A group is
    named by the slot of the array where it starts, so sorting a group never moves another.
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    n = len(codes)
    index_type = np.int32 if n < 2**31 else np.int64
    if n == 0:
        return np.zeros(0, dtype=index_type)
    _, rank = np.unique(codes, return_inverse=True)
    base = int(rank.max()) + 2  # 0 stands for past the end, which sorts first
    span = max(1, int(62 / math.log2(base)))
    padded = np.concatenate([rank.astype(np.int64) + 1, np.zeros(span, dtype=np.int64)])
    key = np.zeros(n, dtype=np.int64)
    for offset in range(span):
        key = key * base + padded[offset : offset + n]
    order = np.argsort(key)  # slot -> suffix
    starts = _run_starts(key[order])  # slot -> does a group start there
    group = np.empty(n, dtype=np.int64)  # suffix -> the slot its group starts at
    group[order] = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    while True:
        ends = np.append(starts[1:], True)
        tied = np.flatnonzero(~(starts & ends))  # slots of groups of two or more
        if len(tied) == 0:
            return order.astype(index_type)
        members = order[tied]
        following = np.full(len(members), -1, dtype=np.int64)
        inside = members + span < n
        following[inside] = group[members[inside] + span]
        sub_key = group[members] * (n + 1) + following + 1
        sub_order = np.argsort(sub_key)
        members, sub_key = members[sub_order], sub_key[sub_order]
        order[tied] = members
        starts[tied] = sub_starts = _run_starts(sub_key)
        group[members] = np.maximum.accumulate(np.where(sub_starts, tied, 0))
        span *= 2


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Whether each element of a sorted array differs from the one before it (the first does)."""
    starts = np.empty(len(ordered), dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return starts


class NoveltyIndex:
    """A corpus and its suffix array, ready to measure samples against."""

    def __init__(self, text: str, suffixes: np.ndarray):
        if len(suffixes) != len(text):
            raise ValueError("the suffix array does not fit the text")
        self.text, self.suffixes = text, suffixes

    @classmethod
    def for_text(cls, text: str, cache: Path | None = None) -> NoveltyIndex:
        """The index of `text`, from the cache when it is there, else built and cached."""
        path = cache_path(text, cache)
        with contextlib.suppress(OSError, ValueError):
            suffixes = np.load(path, mmap_mode="r")
            if len(suffixes) == len(text):
                return cls(text, suffixes)
        suffixes = suffix_array(text)
        with contextlib.suppress(OSError):  # an unwritable cache only costs the next build
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(partial, "wb") as handle:
                np.save(handle, suffixes)
            os.replace(partial, path)
        return cls(text, suffixes)

    def longest_match(self, sample: str, start: int) -> tuple[int, int | None]:
        """The length of the longest prefix of sample[start:] found in the corpus, and where
        one copy of it starts there (None when not even its first character is)."""
        width = FIRST_PROBE
        while True:
            probe = sample[start : start + width]
            length, where = self._longest_prefix(probe)
            if length < len(probe) or start + width >= len(sample):
                return length, where
            width *= 4  # the match may go on past what was compared

    def _longest_prefix(self, probe: str) -> tuple[int, int | None]:
        text, suffixes, width = self.text, self.suffixes, len(probe)

        def suffix(rank: int) -> str:
            begin = int(suffixes[rank])
            return text[begin : begin + width]

        rank = bisect.bisect_left(range(len(suffixes)), probe, key=suffix)
        best, where = 0, None
        for neighbour in (rank - 1, rank):  # the nearest suffixes in order share the most
            if 0 <= neighbour < len(suffixes):
                shared = _common_prefix(probe, suffix(neighbour))
                if shared > best:
                    best, where = shared, int(suffixes[neighbour])
        return best, where

    def measure(self, sample: str) -> Novelty:
        """The longest span of `sample` found in the corpus and the share of its windows."""
        best, best_start, best_where, found = 0, 0, None, 0
        windows = max(0, len(sample) - WINDOW + 1)
        for start in range(len(sample)):
            length, where = self.longest_match(sample, start)
            if length > best:
                best, best_start, best_where = length, start, where
            if start < windows and length >= WINDOW:
                found += 1
        line = None if best_where is None else self.text.count("\n", 0, best_where) + 1
        span = sample[best_start : best_start + best]
        return Novelty(span, best_start, best_where, line, windows, found)


def _common_prefix(a: str, b: str) -> int:
    """How many characters a and b share at their start (slices compared in C, halving)."""
    size = min(len(a), len(b))
    if a[:size] == b[:size]:
        return size
    low, high = 0, size - 1  # a[:low] == b[:low], a[:high + 1] != b[:high + 1]
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
