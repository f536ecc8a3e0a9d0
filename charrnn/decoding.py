"""Choosing characters: logits to draws, a batch of samples stepped together, their texts.

A `SampleBatch` reads the prime with one `model.forward`, then goes one character at a time on a
`Stepper` (the recurrent state is carried, never recomputed). Draws use the Gumbel-max trick:
argmax(logits / T + g) with g ~ Gumbel(0, 1) is an exact sample from softmax(logits / T), and
argmax(logits + T g) is the same choice, so a step costs one add and one argmax, with no softmax,
no cumulative sum and no tensor created. The uniforms behind g come from each sample's own
torch.Generator (seed + i for sample i), drawn NOISE_BLOCK steps at a time: a batch of N samples
makes the same draws as N single runs with seeds seed .. seed + N - 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .stepper import Stepper

if TYPE_CHECKING:
    from .sampling import Generation

NOISE_BLOCK = 128  # steps of uniforms drawn at once; fixed, so a seed means the same text always
CPU_EMIT_EVERY = 8  # characters per burst: well under a millisecond apart for small models
CUDA_EMIT_EVERY = 64  # on a GPU, copy ids to the host every N steps, not every character


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits (B, V), already divided by the temperature, with everything outside the top-k and
    then outside the nucleus (smallest set of most likely ids holding top_p of the mass) at -inf."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        probs = logits.softmax(dim=-1)
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        # Drop an id when the mass before it already reaches top_p; the most likely always stays.
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@dataclass(frozen=True)
class Sample:
    """A finished sample. `text` is the continuation (without the prime and the stop text);
    `logprob` is its natural-log probability under the model's plain softmax (no temperature,
    top-k or top-p), so samples can be ranked."""

    text: str
    prime: str
    seed: int | None  # None: not drawn at random (beam search)
    logprob: float
    stopped: bool  # ended by the stop text rather than by the length

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class Piece:
    """Newly generated text of one sample of the batch. A sample's last piece carries the
    finished Sample, the moment it ends (its text may then be empty)."""

    sample: int
    text: str
    finished: Sample | None = None


class StopFilter:
    """Holds back text that may be the start of the stop text, so the stop text never shows."""

    def __init__(self, stop: str | None):
        self.stop = stop
        self.pending = ""
        self.stopped = False

    def feed(self, char: str) -> str:
        """The text that is now safe to show."""
        if self.stop is None:
            return char
        pending = self.pending + char
        if pending.endswith(self.stop):
            self.stopped = True
            self.pending = ""
            return pending[: len(pending) - len(self.stop)]
        held = next(
            (
                k
                for k in range(min(len(self.stop) - 1, len(pending)), 0, -1)
                if self.stop.startswith(pending[-k:])
            ),
            0,
        )
        self.pending = pending[len(pending) - held :] if held else ""
        return pending[: len(pending) - held]

    def flush(self) -> str:
        pending, self.pending = self.pending, ""
        return pending


@contextlib.contextmanager
def fast_step_mode(device: torch.device) -> Iterator[None]:
    """Inference mode, and one CPU thread: a step is a string of tiny ops, and OpenMP's barrier
    after each costs more than a second thread brings (measured: 10-30x slower under load)."""
    threads = torch.get_num_threads()
    single = device.type == "cpu" and threads != 1
    if single:
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        if single:
            torch.set_num_threads(threads)


class SampleBatch:
    """Up to SAMPLE_BATCH samples of a Generation, stepped together, one seed each."""

    def __init__(self, generation: Generation, seeds: range):
        self.generation, self.seeds = generation, seeds
        self.model, self.vocab, self.config = generation.model, generation.vocab, generation.config
        self.device, self.precision = generation.device, generation.precision
        self.prime = generation.prime
        self.count = len(seeds)
        self.stepper: Stepper | None = None
        self._logprob_blocks: list[torch.Tensor] = []  # (steps, B) per finished block
        self._open_block: tuple[torch.Tensor, torch.Tensor, int] | None = None  # logits, ids, steps

    def __iter__(self) -> Iterator[Piece]:
        count = self.count
        filters = [StopFilter(self.config.stop) for _ in range(count)]
        texts: list[list[str]] = [[] for _ in range(count)]
        active, chars = count, self.vocab.chars
        steps = self._id_rows()
        finished: dict[int, Sample] = {}
        try:
            for rows in steps:  # a burst of steps: one piece per sample, not one per character
                for index, stop_filter in enumerate(filters):
                    if stop_filter.stopped:
                        continue
                    shown = []
                    for row in rows:
                        shown.append(stop_filter.feed(chars[row[index]]))
                        if stop_filter.stopped:
                            active -= 1
                            break
                    text = "".join(shown)
                    if text:
                        texts[index].append(text)
                    if stop_filter.stopped:
                        finished[index] = self._sample(index, texts[index], True)
                        yield Piece(index, text, finished[index])
                    elif text:
                        yield Piece(index, text)
                if active == 0:
                    break
        finally:
            steps.close()  # records the log-probabilities of the steps taken so far
        per_step = self._step_logprobs()
        for index, stop_filter in enumerate(filters):
            if stop_filter.stopped:
                continue
            rest = stop_filter.flush()
            if rest:
                texts[index].append(rest)
            finished[index] = self._sample(index, texts[index], False, per_step)
            yield Piece(index, rest, finished[index])

    def _sample(
        self, index: int, parts: list[str], stopped: bool, per_step: torch.Tensor | None = None
    ) -> Sample:
        """Sample `index` with its text so far, ended now (per_step: _step_logprobs(), if known)."""
        text = "".join(parts)
        per_step = self._step_logprobs() if per_step is None else per_step
        logprob = float(per_step[: len(text), index].sum())
        return Sample(text, self.prime, self.seeds[index], logprob, stopped)

    def _step_logprobs(self) -> torch.Tensor:
        """(steps so far, B) float64: each chosen id's log-probability under the plain softmax."""
        blocks = list(self._logprob_blocks)
        if self._open_block is not None:  # the block of steps still running
            logits, ids, done = self._open_block
            with fast_step_mode(self.device):
                blocks.append(chosen_logprobs(logits[:done], ids[:done]))
        if not blocks:
            return torch.zeros(0, self.count, dtype=torch.float64)
        return torch.cat(blocks)

    def _id_rows(self) -> Iterator[list[list[int]]]:
        """Chosen ids, as lists of rows (one id per sample), a few steps at a time."""
        config, device = self.config, self.device
        batch, vocab_size, length = self.count, len(self.vocab), config.length
        if length == 0:
            return
        state, first_logits = self.generation.read_prime()
        with fast_step_mode(device):
            stepper = self.stepper = Stepper(self.model, batch, self.precision)
            stepper.load_state(state)
            # logits[j] chooses step j of a block; logits[NOISE_BLOCK] is the next block's first
            logits = torch.empty(NOISE_BLOCK + 1, batch, vocab_size, device=device)
            ids = torch.zeros(NOISE_BLOCK, batch, dtype=torch.long, device=device)
            noise = (
                None
                if config.greedy
                else torch.empty(batch, NOISE_BLOCK, vocab_size, device=device)
            )
            generators = [torch.Generator(device=device).manual_seed(s) for s in self.seeds]
            logits[0].copy_(first_logits.float().expand(batch, -1))
            choose = self._chooser(torch.empty(batch, vocab_size, device=device))
        logit_rows, id_rows, step = logits.unbind(0), ids.unbind(0), stepper.step
        noise_rows = noise.unbind(1) if noise is not None else [None] * NOISE_BLOCK
        emit_every = CPU_EMIT_EVERY if device.type == "cpu" else CUDA_EMIT_EVERY
        produced = 0
        while produced < length:
            count = min(NOISE_BLOCK, length - produced)
            final = length - produced - 1  # no step after the last character
            done = 0
            try:
                with fast_step_mode(device):
                    if noise is not None:
                        self._draw_gumbel(noise, generators)
                while done < count:
                    end = min(done + emit_every, count)
                    with fast_step_mode(device):
                        for j in range(done, end):
                            choose(logit_rows[j], noise_rows[j], id_rows[j])
                            if j != final:
                                step(id_rows[j], logit_rows[j + 1])
                        rows = ids[done:end].tolist()
                    done = end
                    self._open_block = (logits, ids, done)
                    yield rows
            finally:
                self._open_block = None
                with fast_step_mode(device):
                    self._logprob_blocks.append(chosen_logprobs(logits[:done], ids[:done]))
                    logits[0].copy_(logits[NOISE_BLOCK])
            produced += count

    def _draw_gumbel(self, noise: torch.Tensor, generators: list[torch.Generator]) -> None:
        """Fill noise (B, NOISE_BLOCK, V) with Gumbel(0, 1) draws, each row from its own sample's
        generator; scaled by the temperature when no filtering needs the unscaled logits."""
        for row, generator in zip(noise, generators, strict=True):
            torch.rand(row.shape, generator=generator, device=noise.device, out=row)
        noise.log_().neg_().log_().neg_()  # -log(-log(u)); u == 0 gives -inf, never chosen
        if not self._filtering():
            noise.mul_(self.config.temperature)

    def _filtering(self) -> bool:
        config = self.config
        return (config.top_k is not None and config.top_k < len(self.vocab)) or (
            config.top_p is not None and config.top_p < 1.0
        )

    def _chooser(self, scores: torch.Tensor) -> Callable[[torch.Tensor, Any, torch.Tensor], None]:
        """choose(logits (B, V), gumbel (B, V) or None, out (B,)): write the chosen ids."""
        config = self.config
        if config.greedy:

            def greedy(logits: torch.Tensor, gumbel: Any, out: torch.Tensor) -> None:
                torch.argmax(logits, 1, out=out)

            return greedy
        if self._filtering():
            temperature, top_k, top_p = config.temperature, config.top_k, config.top_p

            def filtered(logits: torch.Tensor, gumbel: torch.Tensor, out: torch.Tensor) -> None:
                kept = filter_logits(logits / temperature, top_k, top_p)
                torch.argmax(kept.add_(gumbel), 1, out=out)

            return filtered

        def plain(logits: torch.Tensor, gumbel: torch.Tensor, out: torch.Tensor) -> None:
            torch.add(logits, gumbel, out=scores)  # gumbel is pre-scaled by the temperature
            torch.argmax(scores, 1, out=out)

        return plain


def chosen_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(steps, B) float64 on the CPU: log_softmax(logits (steps, B, V)) at ids (steps, B)."""
    picked = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return picked.double().cpu()
