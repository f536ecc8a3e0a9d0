"""Training speed on a busy machine: `charrnn train` beside other busy processes, with the
thread count forced to every core (torch's own default) and with charrnn's free-core choice.

Each run is a real `charrnn train` process (the CLI's own planning and thread choice), timed by
its own chars/s figure. The busy processes are plain Python loops, one per core to occupy.
A thread that shares a core with a busy process stalls its siblings at every OpenMP barrier,
so the figure to watch is the forced-threads speed as a share of the chosen-threads speed.

    python benchmarks/bench_threads.py [--corpus PATH] [--seconds 40] [--runs 3] [--busy 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import torch

DEFAULT_CORPUS = common.REPO_DIR.parent / "shared" / "data" / "tinyshakespeare.txt"


def spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def train_once(corpus: Path, seconds: float, threads: int | None, out: Path) -> tuple[float, str]:
    """chars/s of one `charrnn train` run, and what it said about threads."""
    command = [sys.executable, "-m", "charrnn", "train", str(corpus), "--out", str(out)]
    command += ["--max-time", str(seconds), "--eval-every", "100000", "--sample-chars", "0"]
    command += ["--model", "gru", "--hidden", "256", "--layers", "2"]  # the same model in both
    if threads is not None:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 120)
    if done.returncode != 0:
        common.fail(f"charrnn train failed: {done.stderr.strip()}")
    speed = re.search(r"in [\d:]+, ([\d,]+) chars/s", done.stderr)
    said = re.search(r"^cpu threads: (.*)$", done.stderr, re.M)
    if not speed:
        common.fail(f"no chars/s in the output: {done.stderr[-500:]}")
    return float(speed.group(1).replace(",", "")), said.group(1) if said else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--seconds", type=float, default=40.0, help="training time per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside training")
    args = parser.parse_args()
    if not args.corpus.is_file():
        common.fail(f"corpus not found: {args.corpus}; pass --corpus PATH", 2)
    cores = torch.get_num_threads()
    modes = {"forced": cores, "chosen": None}
    speeds: dict[str, list[float]] = {mode: [] for mode in modes}
    said: dict[str, str] = {}
    for run in range(args.runs):
        for mode, threads in modes.items():
            stop_at = time.monotonic() + args.seconds * 4 + 60
            busy = [
                multiprocessing.Process(target=spin, args=(stop_at,), daemon=True)
                for _ in range(args.busy)
            ]
            for process in busy:
                process.start()
            time.sleep(1.0)  # let the busy loops show on the cores before charrnn looks
            try:
                with tempfile.TemporaryDirectory() as out:
                    speed, said[mode] = train_once(
                        args.corpus, args.seconds, threads, Path(out) / "run"
                    )
            finally:
                for process in busy:
                    process.terminate()
            speeds[mode].append(speed)
            common.log(f"run {run + 1}, {mode}: {speed:,.0f} chars/s ({said[mode]})")
    summary = {mode: common.spread(values) for mode, values in speeds.items()}
    rows = [
        [mode, said[mode], common.format_spread(summary[mode], lambda v: f"{v:,.0f}", args.runs)]
        for mode in modes
    ]
    common.print_table(["threads", "what charrnn said", "chars/s (median, min-max)"], rows)
    share = summary["forced"].median / summary["chosen"].median
    print(f"\nforced {cores} threads beside {args.busy} busy process(es): {share:.1%} of the speed")
    device = common.describe_device(torch.device("cpu"))
    results = {"busy_processes": args.busy, "seconds": args.seconds, "speeds": speeds}
    results["said"], results["forced_share"] = said, share
    print(f"wrote {common.write_results('threads', device, results)}")


if __name__ == "__main__":
    main()
