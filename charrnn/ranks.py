"""What the ranks of a torchrun job share in a training run, and what a single process does alone.

With no group every method is the single-process answer, so a run outside torchrun takes the
path it always took. Under torchrun:
- each rank draws its own dropout masks: rank 0 keeps the seeded stream a single process has,
  rank r > 0 reseeds from (seed, rank, step) once the model is built;
- last.pt holds the whole batch's carried hidden state (each rank's rows gathered in rank order)
  and every rank's RNG states, so a resume with any number of ranks gives each its rows;
- the stop and save decisions, the training loss and the validation loss are agreed by an
  all-reduce, so every rank stops, saves and reports at the same step with the same numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from .distributed import Collective, Group, is_communication_failure, lost_contact
from .errors import CharRNNError, DistributedError

T = TypeVar("T")

# Spreads ranks' dropout seeds apart (a prime, so (seed, rank, step) rarely collide).
_RANK_SEED_STRIDE = 1_000_003


class RankState:
    """One rank's view of the group (or of a run with none)."""

    def __init__(self, group: Group | None, device: torch.device) -> None:
        self.group, self.device = group, device
        self.collective = Collective(group, device) if group is not None else None

    @property
    def main(self) -> bool:
        """Whether this process writes files and reports: rank 0, or a run without torchrun."""
        return self.group is None or self.group.main

    @property
    def world_size(self) -> int:
        return 1 if self.group is None else self.group.world_size

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        """Inside the process group (nothing to join for a single process): a failure of the
        group inside torch (DDP's all-reduce in backward) becomes one line."""
        if self.collective is None:
            yield
            return
        self.collective.start()
        clean = False
        try:
            yield
            clean = True
        except RuntimeError as problem:
            if not is_communication_failure(problem):
                raise
            raise lost_contact(problem, "average the gradients") from None
        finally:
            self.collective.close(clean)

    def started(self, start: Callable[[], T]) -> T:
        """`start()`'s run, once every rank's has started: a rank that fails stops the others."""
        if self.collective is None:
            return start()
        problem: CharRNNError | None = None
        try:
            run = start()
        except CharRNNError as error:
            problem = error
        self.collective.check_all_started(problem)
        return run

    def seed_own_stream(self, seed: int, step: int, saved: dict[str, Any] | None) -> None:
        """Give rank r > 0 its own random stream: the one saved for it in last.pt when the
        run is resumed with as many ranks as saved it, else a fresh one from (seed, rank, step)."""
        if self.group is None or self.group.rank == 0:
            return
        ranks = (saved or {}).get("rng_ranks") or []
        if len(ranks) + 1 == self.group.world_size:
            mine = ranks[self.group.rank - 1]
            torch.set_rng_state(mine["cpu"])
            if self.device.type == "cuda" and mine.get("cuda") is not None:
                torch.cuda.set_rng_state(mine["cuda"])
            return
        torch.manual_seed((seed + _RANK_SEED_STRIDE * self.group.rank + step) % 2**63)

    def rng_states(self) -> dict[str, Any]:
        """The RNG states of ranks 1.. for last.pt (rank 0's are saved as a single process's)."""
        if self.collective is None:
            return {}
        cuda = torch.cuda.get_rng_state() if self.device.type == "cuda" else None
        states = self.collective.gather({"cpu": torch.get_rng_state(), "cuda": cuda})
        return {"rng_ranks": states[1:]}

    def gather_carried(self, rows: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        """The whole batch's carried state from each rank's rows (every rank gets it)."""
        if self.collective is None or rows is None:
            return rows
        parts = self.collective.gather(rows)
        return [torch.cat([part[index] for part in parts], dim=1) for index in range(len(rows))]

    @staticmethod
    def my_rows(saved: list[torch.Tensor] | None, rows: slice) -> list[torch.Tensor] | None:
        """This rank's rows of a saved whole-batch carried state."""
        if not saved:
            return saved
        return [tensor[:, rows] for tensor in saved]

    def agree(self, flags: list[bool]) -> list[bool]:
        """Each flag true when it is true on any rank."""
        if self.collective is None:
            return flags
        return [total > 0 for total in self.collective.sum([float(flag) for flag in flags])]

    def mean(self, total: float, count: int) -> float:
        """A mean over every rank's values, from each rank's sum and count."""
        if self.collective is not None:
            total, count = self.collective.sum([total, float(count)])
        return total / count

    def check_same_step(self, step: int, last_path: object) -> None:
        """Refuse a start where ranks disagree (one resumed last.pt, another could not see it)."""
        if self.collective is None:
            return
        steps = self.collective.gather(step)
        if len(set(steps)) > 1:
            raise DistributedError(
                f"the training processes start from different steps ({', '.join(map(str, steps))}"
                f" for ranks 0 to {len(steps) - 1}): each rank reads {last_path}, so put --out on "
                "a filesystem every machine shares"
            )
