"""Characters <-> integer ids. The vocabulary is every distinct character of the training text."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .errors import VocabError
from .text import plural


class Vocab:
    """A sorted set of characters; id i is the i-th character."""

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = sorted(set(chars))
        if not self.chars:
            raise VocabError("the vocabulary is empty")
        self.index = {char: i for i, char in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, sorted."""
        return sorted(set(text) - self.index.keys())

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        """Ids of `text`. unknown='error' raises on unseen characters, 'skip' drops them."""
        if unknown == "skip":
            return [self.index[c] for c in text if c in self.index]
        missing = self.unknown_chars(text)
        if missing:
            raise VocabError(
                f"the text has {plural(len(missing), 'character')} the model never saw: "
                f"{describe_chars(missing)}"
            )
        return [self.index[c] for c in text]

    def encode_tensor(self, text: str) -> torch.Tensor:
        """Ids of `text` as an int64 tensor (raises on unseen characters)."""
        ids = self.encode(text)
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_string(self) -> str:
        return "".join(self.chars)


def describe_chars(chars: Iterable[str], limit: int = 20) -> str:
    """A readable list of characters, with control characters shown by their escape."""
    chars = list(chars)
    shown = [repr(c) for c in chars[:limit]]
    rest = len(chars) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def describe_skipped(occurrences: int, chars: Iterable[str]) -> str:
    """What skipping unseen characters cost: how often they occurred, and which they were.

    "skipped 7 occurrences of 2 characters the model never saw: 'é', '€'"
    """
    chars = list(chars)
    return (
        f"skipped {plural(occurrences, 'occurrence')} of {plural(len(chars), 'character')} "
        f"the model never saw: {describe_chars(chars)}"
    )
