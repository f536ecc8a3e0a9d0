"""Scoring text: the log-probability a model gives each character, and the figures people read
(bits per character, perplexity).

Exact by default: padding lines into batches and cutting long texts into chunks change nothing
beyond float rounding (see score_runner). Text can be scored from memory (score, score_lines,
iter_score_lines, score_line_blocks) or as it is read (score_stream), with the same results.

Characters outside the model's vocabulary cannot get a probability. They are dropped from the
text before the model reads it, as if they were not there: the character after one is predicted
from the state after the last known character. They are counted in `unknown` and left out of
every sum (as KenLM reports perplexity without OOVs); their per-character log-probability is NaN.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_model
from .config import ScoreConfig
from .errors import VocabError
from .model import CharRNN
from .score_blocks import (
    BLOCK_BATCHES,
    BLOCK_ROW_CHARS,
    CharsCallback,
    line_blocks,
    line_parts,
    long_line_chars,
    whole_blocks,
)
from .score_results import LinesScore, ScoredText, ScoreSummary, TextScore, rank_by_bits, summarize
from .score_runner import ModelRunner, ProgressCallback, encode, unknown_error
from .vocab import Vocab

__all__ = [
    "BLOCK_BATCHES",
    "BLOCK_ROW_CHARS",
    "CharsCallback",
    "LinesScore",
    "ProgressCallback",
    "ScoreConfig",
    "ScoreSummary",
    "ScoredText",
    "TextScore",
    "iter_score_lines",
    "rank_by_bits",
    "score",
    "score_line_blocks",
    "score_lines",
    "score_stream",
    "split_lines",
    "summarize",
]

Source = Checkpoint | CharRNN | Path | str


def split_lines(text: str) -> list[str]:
    """Lines of `text`, each keeping its final newline; a last line without one stays without.

    Only "\\n" ends a line. A blank line is just its newline; an empty text has no lines.
    """
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def score(
    source: Source,
    text: str,
    config: ScoreConfig | None = None,
    *,
    vocab: Vocab | None = None,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    **options: object,
) -> TextScore:
    """Score `text` as one piece: the model reads the context, then predicts every character.

    source: a Checkpoint, a checkpoint path (or run directory), or a CharRNN with its `vocab`.
    device: where to load a checkpoint path (default: the best available); a loaded model stays
    where it is. options: any ScoreConfig field (context, strict, chunk_len, streams, ...).
    streams > 1 is approximate: each segment after the first starts from the context and reads
    `warmup` characters of the true preceding text before its own, instead of the exact state.
    """
    config = dataclasses.replace(config or ScoreConfig(), **options)
    model, vocab = _model_and_vocab(source, vocab, device)
    encoded = encode(vocab, text, config.strict)
    runner = ModelRunner(model, vocab, config)
    known = len(encoded.flat)
    segment = max(1, math.ceil(known / config.streams))
    spans = []
    for start in range(0, known, segment):
        begin = max(0, start - config.warmup)
        spans.append((begin, min(known, start + segment) - begin, start - begin))
    logprobs = runner.run_spans(encoded.flat, spans, on_progress)
    return TextScore(
        chars=known,
        unknown=len(text) - known,
        logprob=float(logprobs.sum()),
        text=text,
        logprobs=encoded.spread(logprobs),
        unknown_chars=tuple(vocab.unknown_chars(text)) if known < len(text) else (),
    )


def score_lines(
    source: Source,
    lines: str | Sequence[str],
    config: ScoreConfig | None = None,
    *,
    vocab: Vocab | None = None,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    **options: object,
) -> LinesScore:
    """Score each line on its own: from the state after the context, predict all its characters.

    lines: a text, cut with split_lines (each line keeps its newline, which is scored too), or a
    sequence of strings scored exactly as given. Other arguments as for score().
    """
    scored = tuple(
        iter_score_lines(
            source, lines, config, vocab=vocab, device=device, on_progress=on_progress, **options
        )
    )
    return LinesScore(lines=scored, total=summarize(scored))


def iter_score_lines(
    source: Source,
    lines: str | Sequence[str],
    config: ScoreConfig | None = None,
    *,
    vocab: Vocab | None = None,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    **options: object,
) -> Iterator[TextScore]:
    """score_lines() one line at a time, in input order, each as soon as its block is scored.

    Bad input (--strict, a context with unknown characters) raises here, before any line.
    """
    blocks = score_line_blocks(
        source, lines, config, vocab=vocab, device=device, on_progress=on_progress, **options
    )
    return itertools.chain.from_iterable(blocks)


def score_line_blocks(
    source: Source,
    lines: str | Sequence[str],
    config: ScoreConfig | None = None,
    *,
    vocab: Vocab | None = None,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    **options: object,
) -> Iterator[list[TextScore]]:
    """The lines of score_lines() in blocks of consecutive lines, in input order, each block
    yielded as soon as it is scored: the first after one batch, so a reader sees rows at once.

    Inside a block, lines are batched longest first; blocks grow to BLOCK_BATCHES batches, which
    keeps that batching about as efficient as sorting the whole input (see score_blocks). Bad
    input (--strict, a context with unknown characters) raises here, before any block.
    """
    config = dataclasses.replace(config or ScoreConfig(), **options)
    model, vocab = _model_and_vocab(source, vocab, device)
    pieces = split_lines(lines) if isinstance(lines, str) else list(lines)
    total = _known_chars(vocab, "".join(pieces), config.strict)
    runner = ModelRunner(model, vocab, config)
    parts = ((piece, True) for piece in pieces)
    return line_blocks(runner, parts, per_char=True, total=total, on_progress=on_progress)


def score_stream(
    source: Source,
    text: Iterable[str],
    config: ScoreConfig | None = None,
    *,
    whole: bool = False,
    per_char: bool = False,
    vocab: Vocab | None = None,
    device: torch.device | str | None = None,
    on_progress: ProgressCallback | None = None,
    on_chars: CharsCallback | None = None,
    **options: object,
) -> Iterator[list[ScoredText]]:
    """Score text while it is read, holding a bounded part of it: rows in blocks as from
    score_line_blocks(), with the same figures, or with whole=True one block of one row (as
    score()) at the end; nothing for an empty text.

    text: the text in pieces cut anywhere (chunks of a file, an open text file's lines, ...).
    per_char: rows are TextScores with each character's log-probability (a long line's or the
    whole text's are then held whole); by default ScoredTexts, figures and text only.
    on_chars(text, logprobs): each stretch of the input as it is scored, with the log-probability
    of its characters, in input order, without keeping them (a heatmap, say). on_progress gets
    None for the total. Memory is bounded by batch_size and chunk_len whatever the input, but a
    row keeps its text (with whole=True, all of it). --strict raises when the block holding an
    unknown character is reached, after the rows before it; a bad context at once. whole with
    streams > 1 reads the whole text first: its segments need its length.
    """
    config = dataclasses.replace(config or ScoreConfig(), **options)
    model, vocab = _model_and_vocab(source, vocab, device)
    runner = ModelRunner(model, vocab, config)
    if whole and config.streams > 1:
        return _whole_in_memory(model, vocab, text, config, on_progress, on_chars)
    if whole:
        return whole_blocks(
            runner, text, per_char=per_char, on_progress=on_progress, on_chars=on_chars
        )
    parts = line_parts(text, long_line_chars(runner.batch_size))
    return line_blocks(runner, parts, per_char=per_char, on_progress=on_progress, on_chars=on_chars)


def _whole_in_memory(
    model: CharRNN,
    vocab: Vocab,
    text: Iterable[str],
    config: ScoreConfig,
    on_progress: ProgressCallback | None,
    on_chars: CharsCallback | None,
) -> Iterator[list[ScoredText]]:
    joined = "".join(text)
    if joined:
        scored = score(model, joined, config, vocab=vocab, on_progress=on_progress)
        if on_chars is not None:
            on_chars(scored.text, scored.logprobs)
        yield [scored]


def _known_chars(vocab: Vocab, text: str, strict: bool) -> int:
    """How many characters of `text` the model knows; with strict, an unknown one raises."""
    missing = vocab.unknown_chars(text)
    if missing and strict:
        raise unknown_error(vocab, text, min(text.find(char) for char in missing))
    return len(text) - sum(text.count(char) for char in missing)


def _model_and_vocab(
    source: Source,
    vocab: Vocab | None,
    device: torch.device | str | None,
) -> tuple[CharRNN, Vocab]:
    if isinstance(source, CharRNN):
        if vocab is None:
            raise TypeError("scoring a bare CharRNN needs its vocab=")
        model = source
    else:
        if not isinstance(source, Checkpoint):
            source = load_model(source, device or "auto")
        model, vocab = source.model, source.vocab
    if len(vocab) != model.config.vocab_size:
        raise VocabError(
            f"the vocabulary has {len(vocab)} characters but the model expects "
            f"{model.config.vocab_size}"
        )
    return model, vocab
