"""Corpora bigger than memory, and training across processes: what it costs.

Writes a synthetic UTF-8 corpus of --size (mostly English prose and code, with lines in Cyrillic,
Greek, Arabic and CJK, and 4-byte emoji and mathematical letters: about 450 distinct characters,
so uint16 ids) under --work-dir, then, each in a fresh process (this checkout, one thread):
- idle: `import torch, charrnn` and nothing else, the baseline resident set;
- encode: `open_corpus` with an empty token cache: source MB/s and the peak resident set;
- cache hit: `open_corpus` again: the seconds it takes, and a whole `charrnn train` start (the
  interpreter and torch included) to its first line;
- train: `charrnn train` on the corpus, a small model (GRU 2x128, batch 64 x 64) for --steps
  steps with an evaluation at the end: the peak resident set while training;
- processes: chars/s of `charrnn train` for --seconds, one process on one and on two threads,
  and `torchrun --nproc-per-node 2` (one thread each), the same total batch.

Resident sets are sampled from /proc every --sample seconds (VmRSS; the token file's pages that a
run touched count, as the kernel counts them) and compared with the idle process's. The corpus
and the token cache are removed at the end unless --keep.

    python benchmarks/bench_scale.py                          # 2 GB (about 6 minutes here)
    python benchmarks/bench_scale.py --size 200MB --seconds 20 # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import common
import torch

MB = 1_000_000
# A small model for the memory run (the corpus, not the model, is what is measured).
SMALL = ["--model", "gru", "--layers", "2", "--hidden", "128", "--batch-size", "64"]
SMALL += ["--seq-len", "64", "--sample-chars", "0", "--device", "cpu"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2GB", help="corpus size, e.g. 2GB or 200MB [2GB]")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp"), help="[/tmp]")
    parser.add_argument("--steps", type=int, default=100, help="steps of the memory run [100]")
    parser.add_argument(
        "--seconds", type=float, default=45.0, help="seconds per processes run [45]"
    )
    parser.add_argument("--sample", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and token cache")
    parser.add_argument("--out", type=Path, help="JSON file [default: results/scale-<device>]")
    return parser.parse_args()


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(MB|GB)", text.strip(), re.IGNORECASE)
    if not match:
        common.fail(f"--size takes a size such as 2GB or 200MB, got {text!r}", 2)
    return int(float(match[1]) * (1000 if match[2].upper() == "GB" else 1) * MB)


# --- the corpus ---------------------------------------------------------------------------------


def _lines(rng: random.Random) -> list[str]:
    """A pool of lines in several scripts; the text repeats them in random order."""
    syllables = ["the", "and", "of", "to", "in", "is", "it", "that", "was", "for", "on", "are"]
    syllables += ["wi", "th", "ing", "er", "an", "re", "on", "en", "at", "ou", "ed", "nd"]
    cyrillic, greek = "абвгдежзийклмнопрстуфхцчшщыэюя", "αβγδεζηθικλμνξοπρστυφχψω"
    arabic = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
    cjk = [chr(0x4E00 + i * 37) for i in range(200)]
    four_byte = ["🙂", "🚀", "🎉", "🐍", "📚", "𝔘", "𝔫", "𝔦", "𝔠", "𝔬", "𝔡", "𝔢", "𝟘", "𝟙"]

    def word(letters: str | list[str], low: int, high: int) -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(low, high)))

    pool = []
    for _ in range(4000):
        kind = rng.random()
        if kind < 0.6:
            words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(12)]
            pool.append(" ".join(words).capitalize() + rng.choice([".", ",", "!", "?"]))
        elif kind < 0.75:
            name = word("abcdefghijklmnopqrstuvwxyz_", 3, 10)
            pool.append(f"    {name} = compute({name}[{rng.randint(0, 99)}], x * 2)  # {name}")
        elif kind < 0.83:
            pool.append(" ".join(word(cyrillic, 2, 8) for _ in range(8)).capitalize() + ".")
        elif kind < 0.88:
            pool.append(" ".join(word(greek, 2, 8) for _ in range(8)) + ";")
        elif kind < 0.92:
            pool.append(" ".join(word(arabic, 2, 6) for _ in range(8)))
        elif kind < 0.97:
            pool.append(word(cjk, 10, 30) + "。")
        else:
            pool.append(f"Emoji {word(four_byte, 1, 4)} and letters {word(four_byte, 2, 6)}!")
    return pool


def write_corpus(path: Path, size: int) -> None:
    """`size` bytes (cut at a line end) of shuffled lines, written through a temporary name."""
    rng = random.Random(1337)
    pool = _lines(rng)
    block = "\n".join(rng.choices(pool, k=200_000)).encode("utf-8") + b"\n"  # ~14 MB
    partial = path.with_suffix(".tmp")
    with partial.open("wb") as out:
        written = 0
        while written < size:
            piece = block[: size - written]
            if len(piece) < len(block):
                piece = piece[: piece.rfind(b"\n") + 1]
                if not piece:
                    break
            out.write(piece)
            written += len(piece)
            cut = block.index(b"\n", len(block) // 3) + 1  # not one block repeated
            block = block[cut:] + block[:cut]
    partial.replace(path)


# --- measuring a child process ----------------------------------------------------------------


_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def _memory(pid: int) -> dict[str, int]:
    """The process's resident set (VmRSS), its anonymous and file-backed parts, and the pages of
    token files it has mapped, in bytes ({} once it has gone)."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile"):
                found[name] = int(value.split()[0]) * 1024
        tokens, current = 0, ""
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            if _MAPPING.match(line):
                current = line.split()[-1] if len(line.split()) >= 6 else ""
            elif line.startswith("Rss:") and current.endswith(".tokens"):
                tokens += int(line.split()[1]) * 1024
        found["tokens"] = tokens
    except (OSError, ValueError, IndexError):
        return {}
    return found


def run_child(
    command: list[str], env: dict[str, str], sample_s: float, until: str | None = None
) -> dict[str, Any]:
    """Run `command`; its output, seconds, the largest resident set sampled (up to the first
    stderr line containing `until`, when given) and when that line came."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: dict[str, float] = {}
    lines: list[str] = []

    def read_stderr() -> None:
        for line in child.stderr:
            lines.append(line)
            if until and until in line and "until" not in seen:
                seen["until"] = time.perf_counter() - started
            if "training on" in line and "start" not in seen:
                seen["start"] = time.perf_counter() - started

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    peak: dict[str, int] = {}
    while child.poll() is None:
        if "until" not in seen:
            for name, value in _memory(child.pid).items():
                peak[name] = max(peak.get(name, 0), value)
        time.sleep(sample_s)
    stdout = child.stdout.read()
    reader.join(timeout=10)
    if child.returncode != 0:
        common.fail(f"{' '.join(command[:6])} ... failed: {''.join(lines)[-800:]}")
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_bytes": peak.get("VmRSS", 0),
        "peak_anon_bytes": peak.get("RssAnon", 0),
        "peak_file_bytes": peak.get("RssFile", 0),
        "peak_token_file_bytes": peak.get("tokens", 0),
        "stdout": stdout,
        "stderr": "".join(lines),
        "start_s": seen.get("start"),
        "until_s": seen.get("until"),
    }


OPEN_SCRIPT = """
import json, sys, time
import torch, charrnn
from charrnn.token_cache import open_corpus
if sys.argv[1] == "idle":
    time.sleep(2)
    sys.exit(0)
started = time.perf_counter()
corpus = open_corpus([sys.argv[1]])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "cache_hit": corpus.cache_hit, "chars": len(corpus),
                  "vocab": len(corpus.vocab), "dtype": corpus.ids.dtype.name}))
"""


def open_in_child(path: Path | str, env: dict[str, str], sample_s: float) -> dict[str, Any]:
    measured = run_child([sys.executable, "-c", OPEN_SCRIPT, str(path)], env, sample_s)
    if path != "idle":
        measured.update(json.loads(measured.pop("stdout")))
    return measured


# --- the runs ---------------------------------------------------------------------------------


def train_speed(
    corpus: Path, work: Path, env: dict[str, str], seconds: float, processes: int, threads: int
) -> dict[str, Any]:
    """chars/s of a run of `seconds` (the whole session, evaluation at the end excluded)."""
    out = work / f"run-{processes}x{threads}"
    shutil.rmtree(out, ignore_errors=True)
    # A tiny held-out tail: the evaluation at the end must not weigh on the speed.
    options = [str(corpus), "--out", str(out), "--max-time", str(seconds), "--eval-every"]
    options += ["1000000", "--val-fraction", "0.00001", *SMALL, "--threads", str(threads)]
    launcher = [sys.executable, "-m", "charrnn"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launcher += ["--nproc-per-node", str(processes), "-m", "charrnn"]
    child_env = {**env, "OMP_NUM_THREADS": str(threads)}
    measured = run_child([*launcher, "train", *options], child_env, 1.0)
    found = re.search(r"done at step ([\d,]+) .* ([\d,]+) chars/s", measured["stderr"])
    if not found:
        common.fail(f"no summary in: {measured['stderr'][-500:]}")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "processes": processes,
        "threads_each": threads,
        "steps": int(found[1].replace(",", "")),
        "chars_per_second": float(found[2].replace(",", "")),
    }


def main() -> None:
    args = parse_args()
    size = parse_size(args.size)
    work = args.work_dir / "charrnn-bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"synthetic-{size // MB}MB.txt"
    cache = work / "token-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(common.REPO_DIR), "OMP_NUM_THREADS": "1"}
    env["CHARRNN_CACHE_DIR"] = str(cache)
    info = common.describe_device(torch.device("cpu"))
    info["torch_threads"] = 1
    try:
        if not corpus.is_file() or corpus.stat().st_size < size * 0.99:
            common.log(f"writing {corpus}")
            write_corpus(corpus, size)
        results = measure(corpus, work, env, args)
    finally:
        if not args.keep:
            corpus.unlink(missing_ok=True)
            shutil.rmtree(work, ignore_errors=True)
    results["corpus_bytes"] = size
    print_results(results)
    document = {"options": {"size": args.size, "steps": args.steps, "seconds": args.seconds}}
    document.update(results)
    if args.out:
        common.write_results_to(args.out, "scale", info, document)
        common.log(f"wrote {args.out}")
    else:
        common.log(f"wrote {common.write_results('scale', info, document)}")


def measure(corpus: Path, work: Path, env: dict[str, str], args: argparse.Namespace) -> dict:
    common.log("idle: python with torch imported")
    idle = open_in_child("idle", env, args.sample)
    common.log(f"encode: {corpus.stat().st_size / MB:,.0f} MB, empty cache")
    encode = open_in_child(corpus, env, args.sample)
    common.log(f"encode: {encode['seconds']:.1f} s; again (cache hit)")
    hit = open_in_child(corpus, env, args.sample)
    common.log(f"cache hit: {hit['seconds']:.2f} s; training {args.steps} steps")
    train = train_memory(corpus, work / "run-memory", env, args)
    common.log(f"training: peak {train['peak_rss_bytes'] / MB:,.0f} MB; the same on 1 MB")
    small = work / "synthetic-1MB.txt"
    with corpus.open("rb") as whole:
        head = whole.read(MB)
    small.write_bytes(head[: head.rfind(b"\n") + 1])
    reference = train_memory(small, work / "run-reference", env, args)
    common.log(f"on 1 MB: peak {reference['peak_rss_bytes'] / MB:,.0f} MB; processes")
    speeds = [
        train_speed(corpus, work, env, args.seconds, processes, threads)
        for processes, threads in ((1, 1), (1, 2), (2, 1))
    ]
    for measured in (idle, encode, hit, train, reference):
        measured.pop("stderr", None)
    return {
        "idle": idle,
        "encode": {**encode, "mb_per_second": corpus.stat().st_size / MB / encode["seconds"]},
        "cache_hit": hit,
        "train": train,
        "train_1mb": reference,
        "processes": speeds,
    }


def train_memory(
    corpus: Path, out: Path, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """`charrnn train` for --steps steps with an evaluation at the end, sampled until its
    summary (the interpreter's exit left out)."""
    command = [sys.executable, "-m", "charrnn", "train", str(corpus), "--out", str(out)]
    command += ["--max-steps", str(args.steps), "--eval-every", str(args.steps), *SMALL]
    command += ["--threads", "1"]
    measured = run_child(command, env, args.sample, until="done at step")
    measured.pop("stdout")
    return {**measured, "steps": args.steps, "corpus": str(corpus)}


def _memory_cells(measured: dict[str, Any], idle: dict[str, Any]) -> list[str]:
    def mb(value: float) -> str:
        return f"{value / MB:,.0f}"

    return [
        mb(measured["peak_rss_bytes"]),
        f"{(measured['peak_rss_bytes'] - idle['peak_rss_bytes']) / MB:+,.0f}",
        f"{(measured['peak_anon_bytes'] - idle['peak_anon_bytes']) / MB:+,.0f}",
        f"{(measured['peak_file_bytes'] - idle['peak_file_bytes']) / MB:+,.0f}",
        mb(measured["peak_token_file_bytes"]),
    ]


def print_results(results: dict[str, Any]) -> None:
    idle = results["idle"]
    encode, hit = results["encode"], results["cache_hit"]
    train, reference = results["train"], results["train_1mb"]
    steps = train["steps"]
    rows = [
        ["encode (empty cache)", f"{encode['seconds']:.1f} s", f"{encode['mb_per_second']:.0f} MB/s",
         *_memory_cells(encode, idle)],
        ["open again (cache hit)", f"{hit['seconds']:.2f} s", "-", *_memory_cells(hit, idle)],
        [f"train {steps} steps", f"{train['until_s']:.1f} s (start {train['start_s']:.1f} s)", "-",
         *_memory_cells(train, idle)],
        [f"train {steps} steps on 1 MB", f"{reference['until_s']:.1f} s", "-",
         *_memory_cells(reference, idle)],
    ]  # fmt: skip
    common.print_table(
        [f"corpus {results['corpus_bytes'] / 1e9:g} GB", "time", "speed", "peak RSS MB",
         "above idle", "anon above idle", "file above idle", "token file pages MB"],
        rows,
    )  # fmt: skip
    common.print_table(
        ["processes x threads", "steps", "chars/s"],
        [
            [f"{s['processes']} x {s['threads_each']}", f"{s['steps']:,}", f"{s['chars_per_second']:,.0f}"]
            for s in results["processes"]
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
