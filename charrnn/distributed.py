"""Training across processes, GPUs and machines: PyTorch's DistributedDataParallel under torchrun.

`torchrun ... -m charrnn train ...` starts one process (a rank) per GPU or CPU share, on one
machine or several, and tells each where it stands (RANK, WORLD_SIZE, LOCAL_RANK). Each joins
the process group (NCCL on CUDA, gloo on CPU), trains its share of the batch's rows on a replica
of the model, and DDP averages the gradients, so every replica takes the same step a single
process would take on the whole batch. What the ranks must decide together (stop now, save now,
the loss, the validation loss) is agreed by an all-reduce, so they stop at the same step; only
rank 0 writes files and reports. A rank that loses the others (one died) stops with one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .errors import ConfigError, DeviceError, DistributedError

T = TypeVar("T")
# How long a rank waits for the others at a collective before giving up. Long enough for rank
# 0's evaluation and checkpoint writes and for the ranks of other machines to encode a corpus.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    """This process's place among the ranks torchrun started."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, metrics and progress."""
        return self.rank == 0


def from_environment(environ: Mapping[str, str] = os.environ) -> Group | None:
    """The group torchrun (or another launcher) described in the environment; None outside one."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        rank, world_size = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local_rank = int(environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (they are set by torchrun)"
        ) from None
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK {rank} is outside WORLD_SIZE {world_size}")
    return Group(rank, world_size, local_rank)


def device_for(device: torch.device, group: Group | None) -> torch.device:
    """Each rank's own GPU: 'cuda' means cuda:LOCAL_RANK under torchrun."""
    if group is None or device.type != "cuda" or device.index is not None:
        return device
    count = torch.cuda.device_count()
    if group.local_rank >= count:
        raise DeviceError(
            f"rank {group.rank} would train on cuda:{group.local_rank}, but this machine has "
            f"{count} GPU(s): give torchrun --nproc-per-node {count} or less"
        )
    return torch.device("cuda", group.local_rank)


def rows_of(total: int, group: Group | None, what: str) -> slice:
    """This rank's contiguous share of `total` rows of a training batch, the same size in each."""
    if group is None:
        return slice(0, total)
    if total % group.world_size:
        raise ConfigError(
            f"{what} ({total}) must divide evenly among the {group.world_size} processes; "
            f"use a multiple of {group.world_size}"
        )
    share = total // group.world_size
    return slice(group.rank * share, (group.rank + 1) * share)


def uneven_rows_of(total: int, group: Group | None) -> slice:
    """This rank's contiguous share of `total` rows that need not divide evenly (validation)."""
    if group is None:
        return slice(0, total)
    return slice(
        total * group.rank // group.world_size, total * (group.rank + 1) // group.world_size
    )


class Collective:
    """The process group this run trains in: joined on start, left on close."""

    def __init__(self, group: Group, device: torch.device) -> None:
        self.group, self.device = group, device

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        _call(lambda: _join(backend, self.group), "join the others")

    def close(self, clean: bool) -> None:
        """Leave the group. After a clean finish the ranks first wait for each other, so none
        tears its connections down while another still writes or talks (gloo can abort a
        process whose peer vanished). After a failure NCCL's teardown, itself collective, could
        hang: the process just exits."""
        if not dist.is_initialized():
            return
        if clean:
            _call(dist.barrier, "finish with the others")
        elif self.device.type == "cuda":
            return
        dist.destroy_process_group()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model as DDP wraps it: its gradients averaged over the ranks in backward."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over the ranks (float64): every rank gets the same numbers."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        _call(lambda: dist.all_reduce(tensor), "add up with the others")
        return tensor.tolist()

    def gather(self, value: T) -> list[T]:
        """Every rank's `value` (small: picklable tensors and numbers), in rank order."""
        found: list[Any] = [None] * self.group.world_size
        _call(lambda: dist.all_gather_object(found, value), "gather from the others")
        return found

    def check_all_started(self, problem: BaseException | None) -> None:
        """Agree that every rank is ready to train: if one failed, the others stop too."""
        failed = self.sum([1.0 if problem is not None else 0.0])[0]
        if problem is not None:
            raise problem
        if failed:
            raise DistributedError(
                f"{int(failed)} other training process(es) failed to start: see their error"
            )


def _join(backend: str, group: Group) -> None:
    """init_process_group, with the store keys of each torchrun restart kept apart.

    torchrun (torch 2.14) shares its rendezvous store with the workers and keeps it across
    restarts, so a restarted group would read the dead group's keys (its gloo or NCCL addresses)
    and hang or fail (pytorch issue 135712). Each restart attempt gets its own key prefix.
    """
    environ = os.environ
    if environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        dist.init_process_group(backend, timeout=TIMEOUT)
        return
    agent_store = dist.TCPStore(
        environ["MASTER_ADDR"],
        int(environ["MASTER_PORT"]),
        world_size=group.world_size,
        is_master=False,
        timeout=TIMEOUT,
    )
    attempt = environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"charrnn/attempt_{attempt}", agent_store)
    dist.init_process_group(
        backend, store=store, rank=group.rank, world_size=group.world_size, timeout=TIMEOUT
    )


def _call(operation: Callable[[], object], what: str) -> None:
    """Run a collective; a failure (a rank died, a timeout) becomes one clear line."""
    try:
        operation()
    except (RuntimeError, ValueError) as problem:
        raise lost_contact(problem, what) from None


def lost_contact(problem: Exception, what: str) -> DistributedError:
    """The one line for a collective that failed: what it was doing, and torch's reason."""
    return DistributedError(
        f"could not {what} in the process group ({_reason(problem)}); another training "
        "process probably stopped: see its error (torchrun --max-restarts N restarts the group, "
        "and --resume auto continues from last.pt)"
    )


def is_communication_failure(problem: BaseException) -> bool:
    """Whether an error raised inside torch (DDP's all-reduce in backward) is the process group
    failing, not a bug: gloo and NCCL say so in their messages."""
    if isinstance(problem, dist.DistError):
        return True
    text = str(problem)
    return isinstance(problem, RuntimeError) and any(
        word in text for word in ("gloo", "Gloo", "NCCL", "Connection reset", "Connection closed")
    )


def _reason(problem: Exception) -> str:
    """The first sentence of torch's message, without the source location gloo puts first."""
    text = " ".join(str(problem).split()) or type(problem).__name__
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    return text.split(". ", 1)[0].rstrip(".")
