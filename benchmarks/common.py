"""Helpers shared by the benchmark scripts: the device, timing, spreads, peaks, tables and JSON.

Scripts import it as `import common` (they run as `python benchmarks/bench_x.py`, which puts
this folder on sys.path). Figures go to stdout as Markdown tables; progress goes to stderr.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import torch

import charrnn

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
RESULTS_DIR = BENCHMARKS_DIR / "results"


# --- the device -------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cores() -> int:
    # A container may be limited to fewer cores than the machine has.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe_device(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: hardware, library versions and the file-name slug."""
    description: dict[str, Any] = {
        "type": device.type,
        "cpu": _cpu_name(),
        "cpu_cores": _usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "charrnn": charrnn.__version__,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        description.update(
            name=properties.name,
            gpu_memory_bytes=properties.total_memory,
            compute_capability=f"{properties.major}.{properties.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            # fp32 matmuls and cuDNN RNNs may run in TF32; the fp32 figures depend on these.
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
        )
        description["slug"] = _slug(properties.name)
    else:
        description["name"] = f"{description['cpu']} ({description['cpu_cores']} cores)"
        description["slug"] = f"{device.type}-{description['cpu_cores']}core"
    return description


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish queued work, so that the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# --- timing and spreads -----------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements, their range, and how many there were."""

    median: float | None
    low: float | None
    high: float | None
    count: int


def spread(values: Sequence[float | None]) -> Spread:
    """Median and min-max of `values`; None entries (e.g. a loss never reached) are left out."""
    present = [v for v in values if v is not None]
    if not present:
        return Spread(None, None, None, 0)
    return Spread(statistics.median(present), min(present), max(present), len(present))


def time_repeats(
    fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1
) -> list[float]:
    """Seconds taken by each of `repeats` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def _repeated(
    fn: Callable[[], object], device: torch.device, min_seconds: float
) -> tuple[Callable[[], None], int]:
    """`fn` called enough times in a row to last about `min_seconds`, and that count."""
    once = min(time_repeats(fn, device, repeats=2, warmup=1))
    calls = max(1, math.ceil(min_seconds / max(once, 1e-9)))

    def run() -> None:
        for _ in range(calls):
            fn()

    return run, calls


# --- physical limits --------------------------------------------------------------------------


def matmul_flops(
    device: torch.device,
    dtype: torch.dtype,
    size: int | None = None,
    repeats: int = 5,
    min_seconds: float = 0.25,
) -> Spread:
    """Achieved FLOP/s of a large square matmul: the compute ceiling a model can approach.

    size: the matrices' side (default 8192 on a GPU, 2048 on a CPU). Two untimed rounds first:
    a cold CPU thread pool measured 30% low on the dev machine, which inflated every share.
    """
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    run, calls = _repeated(lambda: a @ b, device, min_seconds)
    flops = 2 * size**3 * calls
    return spread([flops / s for s in time_repeats(run, device, repeats, warmup=2)])


def copy_bandwidth(
    device: torch.device, megabytes: int | None = None, repeats: int = 3, min_seconds: float = 0.25
) -> Spread:
    """Achieved memory bandwidth in bytes/s of a large copy, counting the read and the write.

    megabytes: the buffer's size (default 1024 on a GPU, 256 on a CPU: far beyond the caches).
    """
    megabytes = megabytes or (1024 if device.type == "cuda" else 256)
    count = megabytes * 2**20 // 4
    source = torch.ones(count, device=device)
    target = torch.empty_like(source)
    run, calls = _repeated(lambda: target.copy_(source), device, min_seconds)
    moved = 2 * source.numel() * source.element_size() * calls
    return spread([moved / s for s in time_repeats(run, device, repeats, warmup=0)])


def peak_host_memory_bytes() -> int:
    """The largest resident set this process has had (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_gpu_memory_bytes(device: torch.device) -> int | None:
    """The most GPU memory tensors have held since the last reset; None off CUDA."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


# --- output -----------------------------------------------------------------------------------


def log(message: str) -> None:
    """A progress line for people, on stderr (stdout holds only the tables)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """One line on stderr and the exit code: usage errors 2, runtime errors 1."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(exit_code)


def si(value: float | None, digits: int = 3) -> str:
    """A number with an SI prefix: 1234567 -> '1.23 M'; None -> '-'."""
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}"
    return f"{value:.{digits}g}"


def format_spread(s: Spread, fmt: Callable[[float], str], runs: int | None = None) -> str:
    """'median (low-high)', with 'k/n' appended when only k of n runs had a value."""
    if s.median is None:
        return "-"
    text = fmt(s.median) if s.count == 1 else f"{fmt(s.median)} ({fmt(s.low)}-{fmt(s.high)})"
    if runs is not None and s.count < runs:
        text += f" [{s.count}/{runs}]"
    return text


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table on stdout, padded to line up, ready to paste into the README."""
    cells = [[str(h) for h in headers]] + [
        ["-" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |\n"

    sys.stdout.write(line(cells[0]))
    sys.stdout.write("|" + "|".join("-" * (w + 2) for w in widths) + "|\n")
    for row in cells[1:]:
        sys.stdout.write(line(row))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _git_commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def write_results(name: str, device_info: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write results/<name>-<device slug>.json, the latest run on that device; return its path."""
    return write_results_to(
        RESULTS_DIR / f"{name}-{device_info['slug']}.json", name, device_info, results
    )


def write_results_to(
    path: Path, name: str, device_info: dict[str, Any], results: dict[str, Any]
) -> Path:
    """Write the results, with the command, the commit and the device, as JSON to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": _git_commit(),
        "device": device_info,
        **results,
    }
    path.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Spread):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'2x128,3x512' as [(2, 128), (3, 512)]; 'none' as no sizes."""
    if text.strip() == "none":
        return []
    sizes = []
    for item in text.split(","):
        match = re.fullmatch(r"(\d+)x(\d+)", item.strip())
        if not match:
            fail(f"--sizes takes LAYERSxHIDDEN items such as 2x512, got {item!r}", 2)
        sizes.append((int(match[1]), int(match[2])))
    return sizes
