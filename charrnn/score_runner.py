"""Running the model for scoring: text to ids with the unknown characters dropped, the state
after the context, padded batches of spans (lines), and one sequence carried chunk by chunk.

Exact: padding lines into batches and cutting sequences into chunks change nothing beyond float
rounding, because the recurrent core is causal (a position never sees the padding after it) and
the state is carried from chunk to chunk. Log-probabilities come back float64 on the CPU.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .config import ScoreConfig
from .device import autocast, use_bf16
from .errors import VocabError
from .model import CharRNN, State
from .text import plural
from .vocab import Vocab, describe_chars

# on_progress(characters scored so far, characters to score: None when not known in advance)
ProgressCallback = Callable[[int, "int | None"], None]
# A sequence to read: (start in the known characters, length, leading characters not scored)
Span = tuple[int, int, int]


@dataclass(frozen=True)
class Encoded:
    """A text as ids with its unknown characters dropped, and the way back to text positions."""

    flat: torch.Tensor  # (K,) ids of the known characters, in order
    known: torch.Tensor  # (N,) bool: which characters of the text are known
    known_before: torch.Tensor  # (N + 1,) how many known characters precede each text position

    def spread(self, flat_values: torch.Tensor, end: int | None = None) -> torch.Tensor:
        """Per-known-character values laid out over the text (up to `end`), NaN at unknown
        characters."""
        known = self.known[:end]
        out = torch.full((len(known),), math.nan, dtype=torch.float64)
        out[known] = flat_values
        return out


def encode(vocab: Vocab, text: str, strict: bool = False, first_line: int = 1) -> Encoded:
    """Look every character up at once through a table indexed by code point (fast on MBs).

    strict: an unknown character raises VocabError naming its line, counted from first_line.
    """
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
        raise unknown_error(vocab, text, int((~known).nonzero()[0]), first_line)
    known_before = torch.zeros(len(ids) + 1, dtype=torch.long)
    torch.cumsum(known, 0, out=known_before[1:])
    return Encoded(flat=ids[known], known=known, known_before=known_before)


def unknown_error(vocab: Vocab, text: str, first: int, first_line: int = 1) -> VocabError:
    """--strict's error: the unknown characters of `text`, the first at position `first`."""
    line = first_line + text.count("\n", 0, first)
    missing = vocab.unknown_chars(text)
    return VocabError(
        f"the text has {plural(len(missing), 'character')} the model never saw: "
        f"{describe_chars(missing)} (first on line {line}); without --strict they are "
        "skipped and counted as unknown"
    )


def context_ids(vocab: Vocab, context: str) -> list[int]:
    missing = vocab.unknown_chars(context)
    if missing:
        raise VocabError(
            f"the context has {plural(len(missing), 'character')} the model never saw: "
            f"{describe_chars(missing)}; choose a context made of the model's characters"
        )
    return vocab.encode(context)


def _state_rows(state: State, rows: int) -> State:
    """The state of `rows` sequences: a single row (the context's) repeated, or the first rows
    of a batch (the sequences still running). cuDNN wants each tensor contiguous."""
    return tuple(
        (s.expand(-1, rows, -1) if s.size(1) == 1 else s[:, :rows]).contiguous() for s in state
    )


class ModelRunner:
    """A model with its vocabulary and ScoreConfig, and the state after the context, read once.

    Every sequence starts from that state with the context's last character as input. Raises
    at once for a context with unknown characters or a precision the device cannot run.
    """

    def __init__(self, model: CharRNN, vocab: Vocab, config: ScoreConfig):
        self.model, self.vocab, self.config = model, vocab, config
        self.device = model.head.weight.device
        # 'auto' scores in bf16 on CUDA only: on a CPU, fp32 unless bf16 is asked for.
        cpu_auto = self.device.type == "cpu" and config.precision == "auto"
        self.bf16 = not cpu_auto and use_bf16(self.device, config.precision)
        self.batch_size = config.batch_size_on(self.device)
        self.context = torch.tensor(context_ids(vocab, config.context), device=self.device)
        state: State = model.initial_state(1, self.device)
        with self._reading(), autocast(self.device, self.bf16):
            for piece in self.context[:-1].split(config.chunk_len) if len(self.context) > 1 else ():
                _, state = model(piece[None], state)
        self.context_state = state

    @contextmanager
    def _reading(self) -> Iterator[None]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(was_training)

    def run_carried(
        self, ids: torch.Tensor, state: State | None, previous: torch.Tensor | None
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Log-probabilities (n,) of `ids` continuing one sequence, chunk by chunk: from `state`
        with `previous` (the sequence's last id so far) as input; None, None at its start.

        Returns (logprobs, state, last id) to carry into the next call. Chunks fall at the
        same places as run_spans' for the sequence in one piece when every call but the last
        gets a multiple of chunk_len ids, so the results are the same.
        """
        state = self.context_state if state is None else state
        previous = self.context[-1:] if previous is None else previous
        if len(ids) == 0:
            return torch.zeros(0, dtype=torch.float64), state, previous
        ids = ids.to(self.device)
        inputs = torch.cat([previous, ids[:-1]])[None]  # (1, n)
        out = []
        with self._reading():
            for begin in range(0, len(ids), self.config.chunk_len):
                end = begin + self.config.chunk_len
                with autocast(self.device, self.bf16):
                    logits, state = self.model(inputs[:, begin:end], state)  # (1, T, V)
                targets = ids[None, begin:end, None]
                out.append(logits.float().log_softmax(-1).gather(-1, targets).view(-1))
        return torch.cat(out).to("cpu", torch.float64), state, ids[-1:]

    def run_spans(
        self, flat: torch.Tensor, spans: list[Span], on_progress: ProgressCallback | None = None
    ) -> torch.Tensor:
        """Log-probabilities (K,) of the known characters `flat`, read as `spans`.

        Each span starts from the context's state. Spans are batched longest first, so a batch
        holds similar lengths (little padding) and the ones that have ended are always at its
        end, where they are dropped.
        """
        with self._reading():
            return self._run_batches(flat, spans, on_progress).to("cpu", torch.float64)

    def _run_batches(
        self, flat: torch.Tensor, spans: list[Span], on_progress: ProgressCallback | None
    ) -> torch.Tensor:
        device, chunk_len, context = self.device, self.config.chunk_len, self.context
        size = len(flat)
        flat = flat.to(device)
        # The last slot swallows the padding's writes, so no mask ever has to be read back.
        out = torch.full((size + 1,), math.nan, device=device)
        spans = sorted(spans, key=lambda span: span[1], reverse=True)
        total, done = sum(length - skip for _, length, skip in spans), 0
        for first in range(0, len(spans), self.batch_size):
            batch = spans[first : first + self.batch_size]
            negated_lengths = [-length for _, length, _ in batch]  # ascending, for bisect
            starts, lengths, skips = torch.tensor(batch, device=device).T[:, :, None]  # (B, 1)
            active = len(batch)
            batch_state = _state_rows(self.context_state, active)
            for begin in range(0, batch[0][1], chunk_len):
                still = bisect.bisect_left(negated_lengths, -begin)  # spans longer than `begin`
                if still < active:
                    batch_state, active = _state_rows(batch_state, still), still
                columns = torch.arange(begin, min(begin + chunk_len, batch[0][1]), device=device)
                positions = starts[:active] + columns  # (B, T) indices into flat
                inputs = flat[(positions - 1).clamp(0, size - 1)]
                if begin == 0:
                    inputs[:, 0] = context[-1]
                targets = flat[positions.clamp(max=size - 1)]
                with autocast(device, self.bf16):
                    logits, batch_state = self.model(inputs, batch_state)  # (B, T, V)
                logprobs = logits.float().log_softmax(-1).gather(-1, targets[..., None])
                scored = (columns < lengths[:active]) & (columns >= skips[:active])
                out[torch.where(scored, positions, size)] = logprobs.squeeze(-1)
            done += sum(length - skip for _, length, skip in batch)
            if on_progress is not None:
                on_progress(done, total)
        return out[:size]
