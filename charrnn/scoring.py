"""Scoring text: the log-probability a model gives each character, and the figures people read
(bits per character, perplexity).

Exact by default: padding lines into batches and cutting long texts into chunks change nothing
beyond float rounding, because the recurrent core is causal (a position never sees the padding
after it) and the state is carried from chunk to chunk.

Characters outside the model's vocabulary cannot get a probability. They are dropped from the
text before the model reads it, as if they were not there: the character after one is predicted
from the state after the last known character. They are counted in `unknown` and left out of
every sum (as KenLM reports perplexity without OOVs); their per-character log-probability is NaN.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_model
from .config import ScoreConfig
from .device import autocast, use_bf16
from .errors import VocabError
from .model import CharRNN, State
from .text import LN2, plural
from .vocab import Vocab, describe_chars

LN10 = math.log(10)

# on_progress(characters scored so far, characters to score)
ProgressCallback = Callable[[int, int], None]
# A sequence to read: (start in the known characters, length, leading characters not scored)
Span = tuple[int, int, int]

# Lines are scored in blocks of consecutive lines so that results stream out in input order: the
# first block is one batch, each next one twice as big, up to BLOCK_BATCHES batches (sorting
# within 32 batches pads about as little as sorting the whole input), and at most
# BLOCK_ROW_CHARS characters per line of the block on average, so long lines make short blocks.
BLOCK_BATCHES = 32
BLOCK_ROW_CHARS = 256


@dataclass(frozen=True)
class ScoreSummary:
    """The figures for a text (or a set of them): sums over the scored characters."""

    chars: int  # characters scored; unknown ones are not counted
    unknown: int  # characters outside the vocabulary, skipped
    logprob: float  # natural-log probability of the scored characters together

    @property
    def log10prob(self) -> float:
        return self.logprob / LN10

    @property
    def bits_per_char(self) -> float:
        """-logprob / (chars * ln 2); NaN when nothing was scored."""
        return -self.logprob / (self.chars * LN2) if self.chars else math.nan

    @property
    def perplexity(self) -> float:
        """exp(-logprob / chars), per character; NaN when nothing was scored."""
        if not self.chars:
            return math.nan
        nats = -self.logprob / self.chars
        return math.exp(nats) if nats < 700 else math.inf  # beyond: float overflow

    def figures(self) -> dict[str, float | int]:
        return {
            "chars": self.chars,
            "unknown": self.unknown,
            "logprob": self.logprob,
            "log10prob": self.log10prob,
            "bits_per_char": self.bits_per_char,
            "perplexity": self.perplexity,
        }


@dataclass(frozen=True, eq=False)
class TextScore(ScoreSummary):
    """One scored text: its figures and the log-probability of each of its characters."""

    text: str
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


def split_lines(text: str) -> list[str]:
    """Lines of `text`, each keeping its final newline; a last line without one stays without.

    Only "\\n" ends a line. A blank line is just its newline; an empty text has no lines.
    """
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def score(
    source: Checkpoint | CharRNN | Path | str,
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
    encoded = _encode(vocab, text, config.strict)
    known = len(encoded.flat)
    segment = max(1, math.ceil(known / config.streams))
    spans = []
    for start in range(0, known, segment):
        begin = max(0, start - config.warmup)
        spans.append((begin, min(known, start + segment) - begin, start - begin))
    logprobs = _run(model, vocab, encoded.flat, spans, config, on_progress)
    return TextScore(
        chars=known,
        unknown=len(text) - known,
        logprob=float(logprobs.sum()),
        text=text,
        logprobs=encoded.spread(logprobs),
    )


def score_lines(
    source: Checkpoint | CharRNN | Path | str,
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
    source: Checkpoint | CharRNN | Path | str,
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
    source: Checkpoint | CharRNN | Path | str,
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

    Inside a block, lines are batched longest first as before; blocks grow to BLOCK_BATCHES
    batches, which keeps that batching about as efficient as sorting the whole input. Bad input
    (--strict, a context with unknown characters) raises here, before any block.
    """
    config = dataclasses.replace(config or ScoreConfig(), **options)
    model, vocab = _model_and_vocab(source, vocab, device)
    pieces = split_lines(lines) if isinstance(lines, str) else list(lines)
    encoded = _encode(vocab, "".join(pieces), config.strict)
    _context_ids(vocab, config.context)
    return _line_blocks(model, vocab, pieces, encoded, config, on_progress)


def summarize(scores: Iterable[ScoreSummary]) -> ScoreSummary:
    """The figures of texts (or lines) taken together."""
    scores = list(scores)
    logprobs = torch.tensor([scored.logprob for scored in scores], dtype=torch.float64)
    return ScoreSummary(
        chars=sum(scored.chars for scored in scores),
        unknown=sum(scored.unknown for scored in scores),
        logprob=float(logprobs.sum()),
    )


def _line_blocks(
    model: CharRNN,
    vocab: Vocab,
    pieces: list[str],
    encoded: _Encoded,
    config: ScoreConfig,
    on_progress: ProgressCallback | None,
) -> Iterator[list[TextScore]]:
    sizes = torch.tensor([len(piece) for piece in pieces], dtype=torch.long)
    ends = sizes.cumsum(0)
    flat_starts = encoded.known_before[ends - sizes].tolist()
    flat_lengths = (encoded.known_before[ends] - encoded.known_before[ends - sizes]).tolist()
    text_ends = ends.tolist()
    total, done = len(encoded.flat), 0
    batch_size = config.batch_size_on(model.head.weight.device)
    first, block_lines = 0, batch_size
    while first < len(pieces):
        text_start = text_ends[first] - len(pieces[first])
        # Up to block_lines lines and block_lines * BLOCK_ROW_CHARS characters; at least a line.
        char_end = bisect.bisect_right(text_ends, text_start + block_lines * BLOCK_ROW_CHARS)
        stop = max(first + 1, min(first + block_lines, char_end))
        flat_start = flat_starts[first]
        lengths = flat_lengths[first:stop]
        spans = [
            (start - flat_start, length, 0)
            for start, length in zip(flat_starts[first:stop], lengths, strict=True)
        ]
        flat = encoded.flat[flat_start : flat_start + sum(lengths)]

        def progress(block_done: int, _: int, before: int = done) -> None:
            if on_progress is not None:
                on_progress(before + block_done, total)

        logprobs = _run(model, vocab, flat, spans, config, progress)
        done += len(flat)
        line_of_char = torch.repeat_interleave(
            torch.arange(len(lengths)), torch.tensor(lengths, dtype=torch.long)
        )
        sums = torch.zeros(len(lengths), dtype=torch.float64).index_add_(0, line_of_char, logprobs)
        per_char = torch.full((text_ends[stop - 1] - text_start,), math.nan, dtype=torch.float64)
        per_char[encoded.known[text_start : text_ends[stop - 1]]] = logprobs
        block, end = [], 0
        for piece, length, line_sum in zip(pieces[first:stop], lengths, sums.tolist(), strict=True):
            start, end = end, end + len(piece)
            block.append(
                TextScore(
                    chars=length,
                    unknown=len(piece) - length,
                    logprob=line_sum,
                    text=piece,
                    logprobs=per_char[start:end],
                )
            )
        yield block
        first, block_lines = stop, min(2 * block_lines, BLOCK_BATCHES * batch_size)


# --- preparing the input ----------------------------------------------------------------------


def _model_and_vocab(
    source: Checkpoint | CharRNN | Path | str,
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


@dataclass(frozen=True)
class _Encoded:
    """A text as ids with its unknown characters dropped, and the way back to text positions."""

    flat: torch.Tensor  # (K,) ids of the known characters, in order
    known: torch.Tensor  # (N,) bool: which characters of the text are known
    known_before: torch.Tensor  # (N + 1,) how many known characters precede each text position

    def spread(self, flat_values: torch.Tensor) -> torch.Tensor:
        """Per-known-character values laid out over the whole text, NaN at unknown characters."""
        out = torch.full((len(self.known),), math.nan, dtype=torch.float64)
        out[self.known] = flat_values
        return out


def _encode(vocab: Vocab, text: str, strict: bool) -> _Encoded:
    """Look every character up at once through a table indexed by code point (fast on MBs)."""
    codepoints = torch.frombuffer(
        bytearray(text.encode("utf-32-le", "surrogatepass")) or bytearray(4), dtype=torch.int32
    )[: len(text)].long()
    vocab_points = torch.tensor([ord(char) for char in vocab.chars], dtype=torch.long)
    # One slot past the largest known code point stands for every character beyond it.
    table = torch.full((int(vocab_points.max()) + 2,), -1, dtype=torch.long)
    table[vocab_points] = torch.arange(len(vocab))
    ids = table[codepoints.clamp(max=len(table) - 1)]
    known = ids >= 0
    if strict and not bool(known.all()):
        line = text.count("\n", 0, int((~known).nonzero()[0])) + 1
        missing = vocab.unknown_chars(text)
        raise VocabError(
            f"the text has {plural(len(missing), 'character')} the model never saw: "
            f"{describe_chars(missing)} (first on line {line}); without --strict they are "
            "skipped and counted as unknown"
        )
    known_before = torch.zeros(len(ids) + 1, dtype=torch.long)
    torch.cumsum(known, 0, out=known_before[1:])
    return _Encoded(flat=ids[known], known=known, known_before=known_before)


def _context_ids(vocab: Vocab, context: str) -> list[int]:
    missing = vocab.unknown_chars(context)
    if missing:
        raise VocabError(
            f"the context has {plural(len(missing), 'character')} the model never saw: "
            f"{describe_chars(missing)}; choose a context made of the model's characters"
        )
    return vocab.encode(context)


# --- running the model ------------------------------------------------------------------------


def _state_rows(state: State, rows: int) -> State:
    """The state of `rows` sequences: a single row (the context's) repeated, or the first rows
    of a batch (the sequences still running). cuDNN wants each tensor contiguous."""
    return tuple(
        (s.expand(-1, rows, -1) if s.size(1) == 1 else s[:, :rows]).contiguous() for s in state
    )


def _run(
    model: CharRNN,
    vocab: Vocab,
    flat: torch.Tensor,
    spans: list[Span],
    config: ScoreConfig,
    on_progress: ProgressCallback | None,
) -> torch.Tensor:
    """Log-probabilities (K,) float64 of the known characters `flat`, read as `spans`.

    Each span starts from the context's state with the context's last character as input.
    Spans are batched longest first, so a batch holds similar lengths (little padding) and the
    ones that have ended are always at its end, where they are dropped.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _run_batches(model, vocab, flat, spans, config, on_progress).to(
                "cpu", torch.float64
            )
    finally:
        model.train(was_training)


def _run_batches(
    model: CharRNN,
    vocab: Vocab,
    flat: torch.Tensor,
    spans: list[Span],
    config: ScoreConfig,
    on_progress: ProgressCallback | None,
) -> torch.Tensor:
    device = model.head.weight.device
    bf16 = use_bf16(device, config.precision)
    context = torch.tensor(_context_ids(vocab, config.context), device=device)
    size = len(flat)
    flat = flat.to(device)
    # The last slot swallows the padding's writes, so no mask ever has to be read back.
    out = torch.full((size + 1,), math.nan, device=device)
    state: State = model.initial_state(1, device)
    with autocast(device, bf16):
        for piece in context[:-1].split(config.chunk_len) if len(context) > 1 else ():
            _, state = model(piece[None], state)

    spans = sorted(spans, key=lambda span: span[1], reverse=True)
    total, done = sum(length - skip for _, length, skip in spans), 0
    batch_size = config.batch_size_on(device)
    for first in range(0, len(spans), batch_size):
        batch = spans[first : first + batch_size]
        negated_lengths = [-length for _, length, _ in batch]  # ascending, for bisect
        starts, lengths, skips = torch.tensor(batch, device=device).T[:, :, None]  # (B, 1) each
        active = len(batch)
        batch_state = _state_rows(state, active)
        for begin in range(0, batch[0][1], config.chunk_len):
            still = bisect.bisect_left(negated_lengths, -begin)  # spans longer than `begin`
            if still < active:
                batch_state, active = _state_rows(batch_state, still), still
            columns = torch.arange(begin, min(begin + config.chunk_len, batch[0][1]), device=device)
            positions = starts[:active] + columns  # (B, T) indices into flat
            inputs = flat[(positions - 1).clamp(0, size - 1)]
            if begin == 0:
                inputs[:, 0] = context[-1]
            targets = flat[positions.clamp(max=size - 1)]
            with autocast(device, bf16):
                logits, batch_state = model(inputs, batch_state)  # (B, T, V)
            logprobs = logits.float().log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
            scored = (columns < lengths[:active]) & (columns >= skips[:active])
            out[torch.where(scored, positions, size)] = logprobs
        done += sum(length - skip for _, length, skip in batch)
        if on_progress is not None:
            on_progress(done, total)
    return out[:size]


def rank_by_bits(
    rows: Iterable[tuple[int | None, TextScore]],
) -> list[tuple[int | None, TextScore]]:
    """(line number, score) rows, most probable (fewest bits per character) first; lines with
    nothing scored (NaN) last. The sort is stable: equal lines keep their input order."""
    return sorted(rows, key=lambda row: (math.isnan(row[1].bits_per_char), row[1].bits_per_char))
