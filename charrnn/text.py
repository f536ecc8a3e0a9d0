"""Small helpers for the words of user-facing messages."""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and the noun agreeing with it: plural(1, "character") -> "1 character".

    plural_noun: the plural where it is not noun + "s", e.g. plural(n, "occurrence") is fine
    but plural(n, "entry", "entries") needs it.
    """
    word = noun if count == 1 else (plural_noun or noun + "s")
    return f"{count:,} {word}"
