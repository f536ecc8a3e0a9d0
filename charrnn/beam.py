"""Beam search: the most likely continuation under the model, rather than a random draw.

K continuations are kept at every step, the K most likely of the K x V ways to extend them by one
character (summed log-probabilities under the plain softmax: no temperature, top-k or top-p).
The K streams step together on one `Stepper`, their states reordered after each choice. With
K = 1 it is greedy sampling, character for character. Like a low temperature it is conservative:
the most likely text is often plain and repetitive.

With a stop text, a continuation that produces it ends there (its score includes the stop text,
its text and logprob do not), and the search ends once the N best ended ones are at least as
likely as any still growing: every further character only lowers a score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .config import SampleConfig, flag
from .decoding import Sample, fast_step_mode
from .errors import ConfigError
from .memory import check_fits, sampling_bytes
from .model import CharRNN
from .sampling import Generation
from .stepper import Stepper
from .vocab import Vocab


@dataclass(frozen=True)
class _Ended:
    score: float  # natural-log probability, the stop text included
    beam: int  # its row when it ended
    step: int  # the step it ended at (its last character)
    stopped: bool  # by the stop text, not the length


class BeamSearch:
    """A beam search of `width` for `config.num_samples` best continuations of config.prime
    (config's length, stop, unknown, device and precision apply; its randomness does not)."""

    def __init__(self, model: CharRNN, vocab: Vocab, config: SampleConfig, width: int):
        if width < 1:
            raise ConfigError(f"--beam must be at least 1, got {width}")
        if config.num_samples > width:
            raise ConfigError(
                f"{flag('num_samples')} {config.num_samples} asks for more texts than a beam of "
                f"{width} keeps; use --beam {config.num_samples} or more"
            )
        # The prime is read, checked and reported exactly as sampling does.
        self.setup = Generation(model, vocab, replace(config, num_samples=1, seed=0))
        self.model, self.vocab, self.config, self.width = model, vocab, config, width
        self.device = self.setup.device
        check_fits(
            f"a beam of {width:,}",
            sampling_bytes(model.config, width),
            self.device,
            "ask for a narrower --beam",
        )
        # Scores add up hundreds of log-probabilities: float64 keeps ties from rounding apart.
        self.dtype = torch.float32 if self.device.type == "mps" else torch.float64

    @property
    def prime(self) -> str:
        return self.setup.prime

    @property
    def skipped_note(self) -> str | None:
        return self.setup.skipped_note

    def run(self) -> list[Sample]:
        """The num_samples most likely continuations, the most likely first."""
        if self.config.length == 0:
            return [Sample("", self.prime, None, 0.0, False)] * self.config.num_samples
        state, first_logits = self.setup.read_prime()
        with fast_step_mode(self.device):
            return self._search(state, first_logits)

    def _search(self, state: tuple, first_logits: torch.Tensor) -> list[Sample]:
        width, length, stop = self.width, self.config.length, self.config.stop
        vocab_size, chars = len(self.vocab), self.vocab.chars
        stepper = Stepper(self.model, width, self.setup.precision)
        stepper.load_state(state)
        logits = first_logits.float().expand(width, -1).contiguous()
        scores = torch.full((width,), float("-inf"), dtype=self.dtype, device=self.device)
        scores[0] = 0.0  # every row starts the same: one live beam
        chosen, parents, gains = [], [], []  # per step: (K,) ids, rows they extend, log-probs
        tails = [""] * width  # each beam's last characters, to find the stop text
        ended: list[_Ended] = []
        for step in range(length):
            log_probs = logits.to(self.dtype).log_softmax(-1)  # (K, V)
            scores, flat = torch.topk((scores[:, None] + log_probs).flatten(), width)
            parent, ids = flat // vocab_size, flat % vocab_size
            chosen.append(ids)
            parents.append(parent)
            gains.append(log_probs[parent, ids])
            self._reorder(stepper, parent)
            if stop is not None:
                ids_list, parent_list = ids.tolist(), parent.tolist()
                tails = [
                    (tails[p] + chars[i])[-len(stop) :]
                    for p, i in zip(parent_list, ids_list, strict=True)
                ]
                for beam, tail in enumerate(tails):
                    if tail == stop and scores[beam] > float("-inf"):
                        ended.append(_Ended(float(scores[beam]), beam, step, True))
                        scores[beam] = float("-inf")
                if self._settled(ended, scores):
                    break
            if step + 1 < length:
                stepper.step(ids, logits)
        growing = [
            _Ended(float(score), beam, len(chosen) - 1, False)
            for beam, score in enumerate(scores.tolist())
            if score > float("-inf")
        ]
        best_ones = sorted(ended + growing, key=lambda e: -e.score)[: self.config.num_samples]
        history = (torch.stack(chosen).cpu(), torch.stack(parents).cpu(), torch.stack(gains).cpu())
        return [self._sample(one, history) for one in best_ones]

    def _settled(self, ended: list[_Ended], scores: torch.Tensor) -> bool:
        """Whether no growing continuation can still beat the N best ended ones."""
        wanted = self.config.num_samples
        if len(ended) < wanted:
            return False
        nth_best = sorted((e.score for e in ended), reverse=True)[wanted - 1]
        return nth_best >= float(scores.max())

    @staticmethod
    def _reorder(stepper: Stepper, parent: torch.Tensor) -> None:
        """Each row takes the state of the beam it extends."""
        stepper.hidden_state.copy_(stepper.hidden_state.index_select(0, parent))
        if stepper.cell_state is not None:
            stepper.cell_state.copy_(stepper.cell_state.index_select(0, parent))

    def _sample(self, one: _Ended, history: tuple[torch.Tensor, ...]) -> Sample:
        """Walk back from a beam's last character to its first."""
        chosen, parents, gains = history
        ids, log_probs, beam = [], [], one.beam
        for step in range(one.step, -1, -1):
            ids.append(int(chosen[step, beam]))
            log_probs.append(float(gains[step, beam]))
            beam = int(parents[step, beam])
        ids.reverse()
        log_probs.reverse()
        kept = len(ids) - len(self.config.stop or "") if one.stopped else len(ids)
        text = self.vocab.decode(ids[:kept])
        return Sample(text, self.prime, None, sum(log_probs[:kept]), one.stopped)


def beam_search(model: CharRNN, vocab: Vocab, config: SampleConfig, width: int) -> list[Sample]:
    """The config.num_samples most likely continuations of config.prime by a beam of `width`."""
    return BeamSearch(model, vocab, config, width).run()
