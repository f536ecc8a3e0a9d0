"""What scoring returns: the figures of a text (bits per character, perplexity, ...), one scored
text or line with or without its per-character log-probabilities, and sums over many."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from .text import LN2

LN10 = math.log(10)


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """The figures for a text (or a set of them): sums over the scored characters."""

    chars: int  # characters scored; unknown ones are not counted
    unknown: int  # characters outside the vocabulary, skipped
    logprob: float  # natural-log probability of the scored characters together
    # The distinct unknown characters, sorted: what a warning names, without the text again.
    unknown_chars: tuple[str, ...] = field(default=(), kw_only=True)

    @property
    def log10prob(self) -> float:
        return self.logprob / LN10

    @property
    def bits_per_char(self) -> float:
        """-logprob / (chars * ln 2); NaN when nothing was scored."""
        return -self.logprob / (self.chars * LN2) if self.chars else math.nan

    @property
    def perplexity(self) -> float:
        """exp(-logprob / chars), per character; NaN when nothing was scored (or NaN weights)."""
        if not self.chars:
            return math.nan
        nats = -self.logprob / self.chars
        return math.inf if nats >= 700 else math.exp(nats)  # beyond 700: overflow; NaN stays NaN

    def figures(self) -> dict[str, float | int]:
        return {
            "chars": self.chars,
            "unknown": self.unknown,
            "logprob": self.logprob,
            "log10prob": self.log10prob,
            "bits_per_char": self.bits_per_char,
            "perplexity": self.perplexity,
        }


@dataclass(frozen=True, eq=False, slots=True)
class ScoredText(ScoreSummary):
    """One scored text (a line, or the whole input) and its figures, without per-character
    values: what a row of output needs, and all that --sort keeps of each line."""

    text: str


@dataclass(frozen=True, eq=False, slots=True)
class TextScore(ScoredText):
    """One scored text: its figures and the log-probability of each of its characters."""

    logprobs: torch.Tensor  # (len(text),) float64 on the CPU, NaN where the character is unknown

    @property
    def surprisal_bits(self) -> torch.Tensor:
        """-log2 p of each character (NaN where unknown)."""
        return -self.logprobs / LN2


@dataclass(frozen=True)
class LinesScore:
    """Lines scored one by one, in input order, and the sums over all of them."""

    lines: tuple[TextScore, ...]
    total: ScoreSummary


def summarize(scores: Iterable[ScoreSummary]) -> ScoreSummary:
    """The figures of texts (or lines, or earlier summaries) taken together."""
    scores = list(scores)
    logprobs = torch.tensor([scored.logprob for scored in scores], dtype=torch.float64)
    unknown_chars = set().union(*(scored.unknown_chars for scored in scores))
    return ScoreSummary(
        chars=sum(scored.chars for scored in scores),
        unknown=sum(scored.unknown for scored in scores),
        logprob=float(logprobs.sum()),
        unknown_chars=tuple(sorted(unknown_chars)),
    )


def rank_by_bits(
    rows: Iterable[tuple[int | None, ScoredText]],
) -> list[tuple[int | None, ScoredText]]:
    """(line number, score) rows, most probable (fewest bits per character) first; lines with
    nothing scored (NaN) last. The sort is stable: equal lines keep their input order."""
    return sorted(rows, key=lambda row: (math.isnan(row[1].bits_per_char), row[1].bits_per_char))
