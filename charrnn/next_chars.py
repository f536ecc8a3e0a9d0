"""What the model expected: at each position of a text, the N characters it found most likely
to come next, with their probabilities (its plain softmax), and the probability and rank it gave
the character that did come (`charrnn score --top N`).

The model reads the context, then the text, in chunks that carry the state; a character it never
saw gets a row (what was expected there) but is not read, as scoring skips it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .model import CharRNN
from .score_runner import context_ids, unknown_error
from .vocab import Vocab

CHUNK = 512  # characters per forward call: memory is bounded for any text


@dataclass(frozen=True)
class Expectation:
    """One position of the text: its character and what the model expected there."""

    position: int  # 0-based, in the text
    char: str
    prob: float | None  # the probability given to `char`; None: a character it never saw
    rank: int | None  # 1 when `char` was its first guess
    top: list[tuple[str, float]]  # the most likely characters, the most likely first


def expectations(
    model: CharRNN,
    vocab: Vocab,
    text: str,
    top: int,
    context: str = "\n",
    strict: bool = False,
) -> Iterator[Expectation]:
    """An Expectation for each character of `text`, in order, `top` characters each (at most
    the vocabulary). strict: a character the model never saw raises VocabError here, before
    any row, as does a context with one."""
    if strict and vocab.unknown_chars(text):
        first = min(text.find(char) for char in vocab.unknown_chars(text))
        raise unknown_error(vocab, text, first)
    return _expectations(model, vocab, text, min(top, len(vocab)), context_ids(vocab, context))


def _expectations(
    model: CharRNN, vocab: Vocab, text: str, count: int, context: list[int]
) -> Iterator[Expectation]:
    device = model.head.weight.device
    model.eval()
    with torch.inference_mode():  # only around the model: the caller's code runs between rows
        logits, state = model(torch.tensor([context], device=device))
    current = logits[0, -1]  # what comes first
    position = 0
    for known, segment in _segments(vocab, text):
        if not known:  # one character the model never saw: not read
            yield _rows(vocab, current[None], [(position, segment, None)], count)[0]
            position += 1
            continue
        ids = vocab.encode(segment)
        with torch.inference_mode():
            out, state = model(torch.tensor([ids], device=device), state)
            before = torch.cat([current[None], out[0, :-1]])  # (T, V): before each character
            rows = _rows(
                vocab, before, [(position + i, c, ids[i]) for i, c in enumerate(segment)], count
            )
        yield from rows
        current, position = out[0, -1], position + len(segment)


def _segments(vocab: Vocab, text: str) -> Iterator[tuple[bool, str]]:
    """Runs of known characters (at most CHUNK long), and each unknown character alone."""
    start = 0
    for index, char in enumerate(text):
        if char not in vocab.index:
            if index > start:
                yield from _chunks(text[start:index])
            yield False, char
            start = index + 1
    if start < len(text):
        yield from _chunks(text[start:])


def _chunks(run: str) -> Iterator[tuple[bool, str]]:
    for begin in range(0, len(run), CHUNK):
        yield True, run[begin : begin + CHUNK]


def _rows(
    vocab: Vocab, logits: torch.Tensor, chars: list[tuple[int, str, int | None]], count: int
) -> list[Expectation]:
    probs = logits.float().softmax(-1).cpu()  # (T, V)
    top_probs, top_ids = probs.topk(count, dim=-1)
    rows = []
    for row, (position, char, char_id) in enumerate(chars):
        best = list(zip(top_ids[row].tolist(), top_probs[row].tolist(), strict=True))
        top = [(vocab.chars[i], p) for i, p in best]
        if char_id is None:
            rows.append(Expectation(position, char, None, None, top))
            continue
        prob = probs[row, char_id]
        rank = int((probs[row] > prob).sum()) + 1
        rows.append(Expectation(position, char, float(prob), rank, top))
    return rows
