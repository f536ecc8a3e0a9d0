"""Scoring text as it comes: lines in blocks of consecutive lines, each scored in padded batches
as soon as it is complete, and a sequence too long for a block (a long line, or the whole text
with --whole) scored as it arrives, its state carried from chunk to chunk.

Blocks keep rows in input order: the first block is one batch, each next one twice as big, up
to BLOCK_BATCHES batches (sorting within 32 batches pads about as little as sorting the whole
input), and at most BLOCK_ROW_CHARS characters per line of the block on average, so long lines
make short blocks. A line longer than the largest block (long_line_chars) is scored in
segments of about batch_size * BLOCK_ROW_CHARS characters as it is read. So what is held at once
is bounded by the batch size whatever the input: a block's lines and the start of the next line
(up to long_line_chars each), or a long line's segment; only the text of a long line (or of the
whole input) is kept whole, as its row repeats it. Of a scored line only its row is kept, with
its text (per-character values only when asked for; on_chars gets them as they come).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from .score_results import ScoredText, TextScore
from .score_runner import ModelRunner, ProgressCallback, encode
from .vocab import Vocab

BLOCK_BATCHES = 32
BLOCK_ROW_CHARS = 256

# Part of a line: (text, whether it ends the line). A line longer than a block comes in parts.
Part = tuple[str, bool]
# on_chars(text, logprobs): a scored stretch of the input and the log-probability of each of its
# characters (NaN where unknown), stretch after stretch in input order.
CharsCallback = Callable[[str, torch.Tensor], None]


def long_line_chars(batch_size: int) -> int:
    """The most characters a line may have to be scored in a block (the largest block's)."""
    return BLOCK_BATCHES * batch_size * BLOCK_ROW_CHARS


def line_parts(pieces: Iterable[str], limit: int) -> Iterator[Part]:
    """The lines of a text given in pieces cut anywhere, each (line, True) with its newline;
    a line longer than `limit` comes as soon as it is known to be, in parts: (part, False) ...
    then (last part, True)."""
    pending: list[str] = []  # the start of a line whose end is still to come
    pending_chars, long = 0, False  # long: the line being read was handed out in part
    for piece in pieces:
        start, end = 0, piece.find("\n")
        while end != -1:
            line = piece[start : end + 1]
            if pending:
                line, pending, pending_chars = "".join(pending) + line, [], 0
            yield line, True
            start, end, long = end + 1, piece.find("\n", end + 1), False
        if start < len(piece):
            pending.append(piece[start:] if start else piece)
            pending_chars += len(pending[-1])
            if long or pending_chars > limit:
                yield "".join(pending), False
                pending, pending_chars, long = [], 0, True
    if pending or long:
        yield "".join(pending), True


class _Progress:
    """Characters scored so far across blocks and sequences, reported to on_progress."""

    def __init__(self, on_progress: ProgressCallback | None, total: int | None):
        self.on_progress, self.total, self.done = on_progress, total, 0

    def advance(self, count: int) -> None:
        self.done += count
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def within(self) -> ProgressCallback:
        """A callback for one block's run: its counts on top of what was scored before it."""
        before = self.done

        def report(block_done: int, _: int | None) -> None:
            self.advance(before + block_done - self.done)

        return report


def _row(
    vocab: Vocab,
    text: str,
    chars: int,
    logprob: float,
    logprobs: torch.Tensor | None = None,
    missing: Iterable[str] | None = None,
) -> ScoredText:
    """A row; missing: its unknown characters where already known (else looked up in `text`)."""
    unknown = len(text) - chars
    if missing is None:
        missing = vocab.unknown_chars(text) if unknown else ()
    missing = tuple(sorted(missing))
    figures = {"chars": chars, "unknown": unknown, "logprob": logprob, "unknown_chars": missing}
    if logprobs is None:
        return ScoredText(text=text, **figures)
    return TextScore(text=text, logprobs=logprobs, **figures)


def line_blocks(
    runner: ModelRunner,
    parts: Iterable[Part],
    *,
    per_char: bool,
    total: int | None = None,
    on_progress: ProgressCallback | None = None,
    on_chars: CharsCallback | None = None,
) -> Iterator[list[ScoredText]]:
    """Rows of the lines `parts` hold, block after block in input order, each block yielded as
    soon as it is scored. per_char: rows are TextScores with each character's log-probability.
    total: the characters to score, for on_progress, where known."""
    progress, batch_size = _Progress(on_progress, total), runner.batch_size
    limit, most_lines = long_line_chars(batch_size), BLOCK_BATCHES * batch_size
    block_lines, first_line = batch_size, 1  # the block's size in lines, its first line's number
    block: list[str] = []
    block_chars = 0
    parts = iter(parts)
    for text, ends in parts:
        fits = ends and len(text) <= limit
        if block and (not fits or block_chars + len(text) > block_lines * BLOCK_ROW_CHARS):
            yield _score_block(runner, block, first_line, per_char, progress, on_chars)
            first_line, block_lines = first_line + len(block), min(2 * block_lines, most_lines)
            block, block_chars = [], 0
        if not fits:  # a line too long for any block: scored as it is read
            carried = _Carried(runner, first_line, per_char, progress, on_chars)
            carried.feed(text)
            while not ends:
                text, ends = next(parts, ("", True))
                carried.feed(text)
            yield [carried.finish()]
            first_line, block_lines = first_line + 1, min(2 * block_lines, most_lines)
            continue
        block.append(text)
        block_chars += len(text)
        if len(block) == block_lines or block_chars >= block_lines * BLOCK_ROW_CHARS:
            yield _score_block(runner, block, first_line, per_char, progress, on_chars)
            first_line, block_lines = first_line + len(block), min(2 * block_lines, most_lines)
            block, block_chars = [], 0
    if block:
        yield _score_block(runner, block, first_line, per_char, progress, on_chars)


def whole_blocks(
    runner: ModelRunner,
    pieces: Iterable[str],
    *,
    per_char: bool,
    on_progress: ProgressCallback | None = None,
    on_chars: CharsCallback | None = None,
) -> Iterator[list[ScoredText]]:
    """The text of `pieces` as one sequence, scored as it is read: one block of one row at the
    end, or none for an empty text."""
    carried = _Carried(runner, 1, per_char, _Progress(on_progress, None), on_chars)
    for piece in pieces:
        carried.feed(piece)
    row = carried.finish()
    if row.text:
        yield [row]


def _score_block(
    runner: ModelRunner,
    lines: list[str],
    first_line: int,
    per_char: bool,
    progress: _Progress,
    on_chars: CharsCallback | None,
) -> list[ScoredText]:
    """Rows of whole lines, each scored from the context's state, in padded batches."""
    text = "".join(lines)
    encoded = encode(runner.vocab, text, runner.config.strict, first_line)
    sizes = torch.tensor([len(line) for line in lines], dtype=torch.long)
    ends = sizes.cumsum(0)
    flat_starts = encoded.known_before[ends - sizes]
    lengths = encoded.known_before[ends] - flat_starts
    spans = [
        (start, length, 0)
        for start, length in zip(flat_starts.tolist(), lengths.tolist(), strict=True)
    ]
    logprobs = runner.run_spans(encoded.flat, spans, progress.within())
    line_of_char = torch.repeat_interleave(torch.arange(len(lines)), lengths)
    sums = torch.zeros(len(lines), dtype=torch.float64).index_add_(0, line_of_char, logprobs)
    per_chars = encoded.spread(logprobs) if per_char or on_chars is not None else None
    rows, end = [], 0
    for line, length, line_sum in zip(lines, lengths.tolist(), sums.tolist(), strict=True):
        start, end = end, end + len(line)
        values = None if per_chars is None else per_chars[start:end]
        if on_chars is not None:
            on_chars(line, values)
        rows.append(_row(runner.vocab, line, length, line_sum, values if per_char else None))
    return rows


class _Carried:
    """One sequence (a long line, or the whole text) scored as its text arrives, in segments of
    whole chunks with the state carried between them: the same figures however it is cut."""

    def __init__(
        self,
        runner: ModelRunner,
        first_line: int,
        per_char: bool,
        progress: _Progress,
        on_chars: CharsCallback | None,
    ):
        self.runner, self.line, self.per_char = runner, first_line, per_char
        self.progress, self.on_chars = progress, on_chars
        chunk_len = runner.config.chunk_len
        self.segment = chunk_len * max(1, runner.batch_size * BLOCK_ROW_CHARS // chunk_len)
        self.pending: list[str] = []  # text received but not scored yet
        self.pending_chars = 0
        self.state, self.previous = None, None
        self.texts: list[str] = []  # the scored text, for the row
        self.logprobs: list[torch.Tensor] = []  # per character, only when per_char
        self.chars, self.logprob = 0, 0.0
        self.missing: set[str] = set()  # the unknown characters met so far

    def feed(self, text: str) -> None:
        for start in range(0, len(text), self.segment):
            self.pending.append(text[start : start + self.segment])
            self.pending_chars += len(self.pending[-1])
            if self.pending_chars >= self.segment:
                self._score(final=False)

    def finish(self) -> ScoredText:
        """Score what is left and return the sequence's row."""
        self._score(final=True)
        text, self.texts = "".join(self.texts), []
        logprobs = torch.cat(self.logprobs) if self.per_char else None
        return _row(self.runner.vocab, text, self.chars, self.logprob, logprobs, self.missing)

    def _score(self, final: bool) -> None:
        """Score the pending text's known characters, all of them when final, else as many
        whole chunks as it holds (so chunks fall where they would in one piece)."""
        runner, chunk_len = self.runner, self.runner.config.chunk_len
        text = "".join(self.pending)
        encoded = encode(runner.vocab, text, runner.config.strict, self.line)
        known = len(encoded.flat)
        count = known if final else known - known % chunk_len
        # The text up to the first known character left for later (all of it when none is).
        cut = len(text) if count == known else int(encoded.known.nonzero()[count])
        logprobs, self.state, self.previous = runner.run_carried(
            encoded.flat[:count], self.state, self.previous
        )
        scored, rest = text[:cut], text[cut:]
        self.pending, self.pending_chars = ([rest] if rest else []), len(rest)
        self.line += scored.count("\n")
        self.chars, self.logprob = self.chars + count, self.logprob + float(logprobs.sum())
        if cut > count:  # unknown characters among the scored text
            self.missing.update(runner.vocab.unknown_chars(scored))
        if self.per_char or self.on_chars is not None:
            values = encoded.spread(logprobs, cut)
            if self.on_chars is not None and scored:
                self.on_chars(scored, values)
            if self.per_char:
                self.logprobs.append(values)
        self.texts.append(scored)
        self.progress.advance(count)
