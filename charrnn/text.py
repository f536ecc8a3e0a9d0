"""Small helpers for the words of user-facing messages."""

from __future__ import annotations

import math

LN2 = math.log(2)  # nats per bit: losses are in nats, people also read bits


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and the noun agreeing with it: plural(1, "character") -> "1 character".

    plural_noun: the plural where it is not noun + "s", e.g. plural(n, "occurrence") is fine
    but plural(n, "entry", "entries") needs it.
    """
    word = noun if count == 1 else (plural_noun or noun + "s")
    return f"{count:,} {word}"


def nats_and_bits(loss: float, digits: int = 4) -> str:
    """A loss per character in both units: '1.3976 nats (2.0163 bits) per char'."""
    return f"{loss:.{digits}f} nats ({loss / LN2:.{digits}f} bits) per char"


def format_duration(seconds: float | None) -> str:
    """'m:ss' or 'h:mm:ss'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
