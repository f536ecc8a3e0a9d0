"""How many CPU threads torch should use, chosen so that a busy core cannot collapse throughput.

PyTorch's OpenMP workers spin at every barrier, so a thread that shares its core with another
busy process stalls all the others: on the 2-core development machine, two threads beside one
busy process trained 3.2x slower than one thread (3,671 vs 11,720 chars/s, GRU 2x256,
benchmarks/bench_threads.py). So by default charrnn counts the cores that are free right now and
uses no more threads than that.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .text import plural

PROBE_SECONDS = 0.2  # long enough to see a busy core, short enough not to be noticed
FREE_SHARE = 0.5  # a core idle for at least this share of the probe counts as free
PROBES = 3  # a busy core is busy in every probe; a blip (a shell, a cron job) is in one


@dataclass(frozen=True)
class ThreadChoice:
    count: int
    reason: str  # shown on stderr: why this many


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> list[tuple[int, int]] | None:
    """(idle, total) jiffies per core from /proc/stat (Linux); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    times = []
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(value) for value in fields]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            times.append((idle, sum(values[:8])))
    return times or None


def _probe(probe_seconds: float) -> tuple[int, int] | None:
    """(idle cores, cores) over one probe of /proc/stat; None where it cannot be read."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(probe_seconds)
    after = _cpu_times()
    if after is None or len(after) != len(before):
        return None
    free = 0
    for (idle0, total0), (idle1, total1) in zip(before, after, strict=True):
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) >= FREE_SHARE:
            free += 1
    return free, len(after)


def free_cores(probe_seconds: float = PROBE_SECONDS, probes: int = PROBES) -> float | None:
    """How many cores are idle now: the most seen free over up to `probes` short probes on Linux
    (a core busy in one probe only had a blip, and would cost a long run half its threads), else
    from the 1-minute load average; None when neither can be read."""
    most: int | None = None
    for _ in range(probes):
        probed = _probe(probe_seconds)
        if probed is None:
            break
        free, cores = probed
        most = free if most is None else max(most, free)
        if most == cores:
            break
    if most is not None:
        return float(most)
    try:
        return max(0.0, (os.cpu_count() or 1) - os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def choose_threads(
    requested: int | None, default: int, probe_seconds: float = PROBE_SECONDS
) -> ThreadChoice:
    """The thread count for this run.

    requested: --threads, which always wins. Otherwise OMP_NUM_THREADS, when set, is left to
    torch (`default` is torch's own count). Otherwise at most one thread per free core, and at
    least one.
    """
    if requested is not None:
        return ThreadChoice(requested, f"{plural(requested, 'thread')} (--threads)")
    if os.environ.get("OMP_NUM_THREADS"):
        return ThreadChoice(default, f"{plural(default, 'thread')} (OMP_NUM_THREADS)")
    free = free_cores(probe_seconds)
    if free is None or default <= 1:
        return ThreadChoice(default, plural(default, "thread"))
    count = max(1, min(default, int(free)))
    if count < default:
        busy = usable_cores() - int(free)
        return ThreadChoice(
            count,
            f"{plural(count, 'thread')}: {busy} of {usable_cores()} cores busy with "
            "other work (a thread on a busy core stalls the rest; --threads N overrides)",
        )
    return ThreadChoice(count, f"{count} threads (all free cores)")
