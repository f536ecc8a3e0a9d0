"""Memory of `charrnn score` as the input grows: many lines, and one long line.

Each case runs `python -m charrnn score FILE -q` in its own process (this checkout, one thread
unless --threads says otherwise), rows to a pipe that is read and dropped. Every --sample
seconds it notes the process's resident set and how far it has read its input
(/proc/PID/fdinfo); "RSS scoring" is the largest resident set up to the last row, and a case
stopped at @SECONDS still shows whether memory grew and how fast it read. "peak RSS" is the
kernel's count when the process ends (wait4's ru_maxrss): it includes the interpreter's exit,
where this torch build touches about 120 MB more (`python -c "import torch"` peaks at 646 MB,
519 MB before exit), so it is shown but not compared. A first case scores one short line: what
torch and the model take before any text (its seconds are the start-up time, left out of
chars/s).

The inputs are made under --work-dir (default /tmp, never the repository): lines of tiny
Shakespeare repeated to SIZE (`lines-20MB`), or its text with newlines made spaces, repeated, as
one line without a newline (`one-line-50MB`).

    python benchmarks/bench_score_memory.py                                # the issue's cases
    python benchmarks/bench_score_memory.py --cases lines-5MB,one-line-5MB  # lines vs one line
    python benchmarks/bench_score_memory.py --cases lines-200MB --max-seconds 900  # stop after
    python benchmarks/bench_score_memory.py --source /tmp/old --cases lines-2MB  # another tree
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common
import torch

DEFAULT_CASES = "lines-5MB,one-line-5MB,lines-20MB,lines-200MB@300,one-line-50MB@300"
CORPUS_PLACES = (
    common.REPO_DIR.parent / "shared" / "data" / "tinyshakespeare.txt",
    common.REPO_DIR / "shared" / "data" / "tinyshakespeare.txt",
)
MB = 1_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        default=DEFAULT_CASES,
        help="comma-separated lines-SIZE or one-line-SIZE, SIZE in MB, each with @SECONDS to "
        "stop it after that long [default: %(default)s]",
    )
    parser.add_argument("--corpus", type=Path, help="text to repeat [default: tiny Shakespeare]")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp"), help="[/tmp]")
    parser.add_argument("--checkpoint", help="-c for charrnn score [default: the shipped model]")
    parser.add_argument(
        "--max-seconds", type=float, help="stop a case without @SECONDS after this long [never]"
    )
    parser.add_argument("--sample", type=float, default=0.5, help="seconds between samples [0.5]")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS [default: 1]")
    parser.add_argument(
        "--source", type=Path, help="the charrnn source tree to run [default: this checkout]"
    )
    parser.add_argument(
        "--extra", default="", help="more charrnn score options, e.g. '--sort' or '--whole'"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON file [default: results/score-memory-<device>.json]"
    )
    return parser.parse_args()


def parse_case(case: str, max_seconds: float | None) -> tuple[str, int, float | None]:
    """(kind, characters, seconds to stop after) from 'lines-20MB' or 'one-line-50MB@600'."""
    match = re.fullmatch(r"(lines|one-line)-(\d+(?:\.\d+)?)MB(?:@(\d+))?", case.strip())
    if not match:
        common.fail(f"--cases takes lines-SIZE or one-line-SIZE[@SECONDS], got {case!r}", 2)
    return match[1], int(float(match[2]) * MB), float(match[3]) if match[3] else max_seconds


def make_input(kind: str, size: int, corpus: str, work_dir: Path) -> Path:
    """The case's input under work_dir, made once (ASCII, so bytes are characters): whole lines
    of the corpus repeated up to `size` characters, or one line of exactly `size`."""
    path = work_dir / f"charrnn-score-{kind}-{size / MB:g}MB.txt"
    if path.is_file():
        return path
    unit = corpus if kind == "lines" else corpus.replace("\n", " ")
    common.log(f"writing {path}")
    partial = path.with_suffix(".tmp")
    with partial.open("w", encoding="ascii") as out:
        written = 0
        while written < size:
            piece = unit[: size - written]
            if kind == "lines" and len(piece) < len(unit):  # the last repeat ends a line
                piece = piece[: piece.rfind("\n") + 1]
                if not piece:
                    break
            out.write(piece)
            written += len(piece)
    partial.replace(path)
    return path


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in bytes ({} once it has gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


def _read_position(pid: int, path: Path) -> int | None:
    """How far the process has read `path` (its file offset), None if it has no such file open."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                return int(info.split("pos:", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return None


def run_case(
    path: Path, args: argparse.Namespace, source: Path, max_seconds: float | None = None
) -> dict[str, Any]:
    """Score `path` in a child process; its peak memory, time, rows and samples over time."""
    command = [sys.executable, "-m", "charrnn", "score", str(path), "-q", *args.extra.split()]
    if args.checkpoint:
        command += ["-c", str(Path(args.checkpoint).resolve())]
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    # In the source tree: `python -m` puts the working directory first on sys.path.
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=source
    )
    counted = {"rows": -1, "bytes": 0, "last_row_s": None}  # the header is not a row

    def drain() -> None:
        for row in child.stdout:
            counted["rows"] += 1
            counted["bytes"] += len(row)
            counted["last_row_s"] = time.perf_counter() - started

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    samples, stopped = [], False
    # wait4 rather than Popen.poll: it reaps the child with its resource usage (the peak RSS).
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    while pid == 0:
        elapsed = time.perf_counter() - started
        memory = _status(child.pid)
        samples.append([round(elapsed, 1), memory.get("VmRSS"), _read_position(child.pid, path)])
        if max_seconds is not None and elapsed > max_seconds and not stopped:
            child.kill()
            stopped = True
        time.sleep(args.sample)
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    reader.join(timeout=10)
    errors = child.stderr.read().decode(errors="replace").strip()
    if child.returncode != 0 and not stopped:
        common.fail(f"charrnn score {path} failed ({child.returncode}): {errors[-500:]}")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    # While scoring: up to the last row (torch's teardown at exit touches ~120 MB more on some
    # builds, which ru_maxrss counts), or all of a run that was stopped.
    end_s = math.inf if stopped or counted["last_row_s"] is None else counted["last_row_s"]
    scoring = [rss for seconds, rss, _ in samples if rss is not None and seconds <= end_s]
    read = max((s[2] for s in samples if s[2] is not None), default=None)
    return {
        "input": str(path),
        "input_bytes": path.stat().st_size,
        "completed": not stopped,
        "seconds": seconds,
        "read_bytes": path.stat().st_size if not stopped else read,
        "rows": max(counted["rows"], 0),
        "peak_rss_bytes": peak,
        "scoring_rss_bytes": max(scoring, default=None),
        "reading_chars_per_second": _reading_speed(samples),
        "samples": samples[:: max(1, len(samples) // 200)],  # [seconds, rss bytes, bytes read]
    }


def _reading_speed(samples: list[list[Any]]) -> float | None:
    """Bytes read per second between the first and the last sample at which the read position
    moved: the reader runs ahead of scoring by one read, which cancels out."""
    reads = [(seconds, read) for seconds, _, read in samples if read is not None]
    moves = [now for before, now in zip(reads, reads[1:], strict=False) if now[1] != before[1]]
    if len(moves) < 2:
        return None
    (start_s, start), (end_s, end) = moves[0], moves[-1]
    return (end - start) / (end_s - start_s)


def print_results(results: list[dict[str, Any]], baseline: dict[str, Any]) -> None:
    """The cases as a Markdown table: the resident set while scoring (also against the one short
    line's), and the peak the kernel counted, exit included."""
    rows = []
    for result in results:
        speed, scoring = result.get("chars_per_second"), result["scoring_rss_bytes"]
        above = None if scoring is None else (scoring - baseline["scoring_rss_bytes"]) / MB
        done = "yes" if result["completed"] else f"stopped at {result['read_bytes'] or 0:,} read"
        rows.append(
            [
                result["case"],
                f"{result['input_bytes']:,}",
                f"{result['rows']:,}",
                f"{result['seconds']:.0f}",
                "-" if speed is None else f"{speed:,.0f}",
                "-" if scoring is None else f"{scoring / MB:,.0f}",
                "-" if above is None else f"{above:+,.0f}",
                f"{result['peak_rss_bytes'] / MB:,.0f}",
                done,
            ]
        )
    headers = [
        "case",
        "chars",
        "rows",
        "s",
        "chars/s",
        "RSS scoring MB",
        "vs baseline",
        "peak RSS MB (exit incl.)",
        "completed",
    ]
    common.print_table(headers, rows)


def main() -> None:
    args = parse_args()
    cases = [parse_case(case, args.max_seconds) for case in args.cases.split(",") if case.strip()]
    corpus_path = args.corpus or next((p for p in CORPUS_PLACES if p.is_file()), None)
    if corpus_path is None:
        common.fail("tiny Shakespeare not found beside the repository; give --corpus PATH", 2)
    corpus = corpus_path.read_text(encoding="utf-8")
    if not corpus.isascii():
        common.fail(f"{corpus_path} is not ASCII: sizes would not be characters", 2)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    source = (args.source or common.REPO_DIR).resolve()
    info = common.describe_device(torch.device("cpu"))
    info["torch_threads"] = args.threads

    baseline_path = args.work_dir / "charrnn-score-one-short-line.txt"
    baseline_path.write_text("To be, or not to be, that is the question:\n", encoding="ascii")
    common.log("baseline: one short line")
    baseline = run_case(baseline_path, args, source)
    results = [{"case": "one short line", **baseline}]
    for kind, size, max_seconds in cases:
        path = make_input(kind, size, corpus, args.work_dir)
        name = f"{kind}-{size / MB:g}MB"
        common.log(f"{name}: scoring {path}")
        measured = run_case(path, args, source, max_seconds)
        scoring_s = measured["seconds"] - baseline["seconds"]  # less the start-up time
        if measured["completed"]:
            speed = measured["input_bytes"] / scoring_s if scoring_s > 1 else None
            measured["chars_per_second"] = speed
        else:
            measured["chars_per_second"] = measured["reading_chars_per_second"]
        results.append({"case": name, **measured})
        common.log(f"{name}: peak {measured['peak_rss_bytes'] / MB:,.0f} MB")

    print_results(results, baseline)
    document = {
        "options": {
            "checkpoint": args.checkpoint or "shipped",
            "threads": args.threads,
            "max_seconds": {f"{kind}-{size / MB:g}MB": limit for kind, size, limit in cases},
            "extra": args.extra,
            "source": str(source),
        },
        "cases": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
        common.log(f"wrote {args.out}")
    else:
        common.log(f"wrote {common.write_results('score-memory', info, document)}")


if __name__ == "__main__":
    main()
