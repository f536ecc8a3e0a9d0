"""Load check for `charrnn serve`: N clients at once streaming samples, against `charrnn sample`.

Starts `charrnn serve` on a free loopback port (it never talks to another machine), then for each
client count: N threads, each asking for one streamed sample after another (POST /v1/sample with
"stream": true, `--length` characters, a fresh seed each time) for `--seconds`; requests under
way at the end are finished and counted. Reports requests/s, characters/s served, and the time
to first character (request sent -> first piece event), p50 and p99. Against it, on the same
machine and model: single-process `charrnn sample -n LENGTH` (its own chars/s line, and the wall
time of the whole command with start-up and loading), and `charrnn sample --num-samples N` (one
batch of N), which is what batching N requests together could reach: the server does not batch.

    python benchmarks/bench_serve.py                          # shipped model, CPU, ~2 minutes
    python benchmarks/bench_serve.py --clients 1,2 --seconds 5 --repeats 1   # smoke run

Prints a table on stdout and writes JSON to benchmarks/results/serve-<device>.json (common.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import common
import torch

from charrnn.device import resolve_device
from charrnn.resources import default_checkpoint_path

MAX_SECONDS = 600  # per client count: the check is bounded whatever it is asked
MAX_CLIENTS = 256


def charrnn(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(common.REPO_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "charrnn", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )


def cli_sample(checkpoint: Path, device: str, length: int, samples: int, seed: int) -> dict:
    """One `charrnn sample` run: its reported chars/s and the command's wall time."""
    started = time.perf_counter()
    done = charrnn("sample", "-c", str(checkpoint), "--device", device, "-n", str(length),
                   "--num-samples", str(samples), "--seed", str(seed))  # fmt: skip
    wall = time.perf_counter() - started
    speed = re.search(r"\(([\d,]+) chars/s\)", done.stderr)
    return {"chars_per_second": float(speed[1].replace(",", "")), "wall_seconds": wall}


class Server:
    """`charrnn serve` in its own process on a free loopback port."""

    def __init__(self, checkpoint: Path, device: str, length: int):
        command = [sys.executable, "-m", "charrnn", "serve", "-c", str(checkpoint),
                   "--device", device, "--port", "0", "--max-length", str(length)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(common.REPO_DIR)}
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        said = ""
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)", said)):
            line = self.process.stderr.readline()
            if not line:
                common.fail(f"charrnn serve did not start: {said}")
            said += line
        self.port = int(found[1])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def stream_one(port: int, body: dict) -> tuple[float, int]:
    """One streamed sample: (seconds to the first piece, characters received)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    first, chars = math.nan, 0
    try:
        connection.request(
            "POST", "/v1/sample", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        if response.status != 200:
            common.fail(f"the server answered {response.status}: {response.read()[:200]!r}")
        event = ""
        while line := response.readline():
            if line.startswith(b"event: "):
                event = line[7:].strip().decode()
            elif line.startswith(b"data: ") and event == "piece":
                if math.isnan(first):
                    first = time.perf_counter() - started
                chars += len(json.loads(line[6:])["text"])
            elif event == "error":
                common.fail(f"a stream ended in an error: {line!r}")
    finally:
        connection.close()
    return first, chars


def load(port: int, clients: int, seconds: float, length: int) -> dict:
    """`clients` threads streaming samples back to back for `seconds`."""
    firsts: list[float] = []
    chars = [0] * clients
    requests = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        count = 0
        while time.perf_counter() < deadline:
            body = {"length": length, "seed": index * 1_000_000 + count, "stream": True}
            first, received = stream_one(port, body)
            firsts.append(first)
            chars[index] += received
            count += 1
        requests[index] = count

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    firsts.sort()
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": sum(requests),
        "requests_per_second": sum(requests) / elapsed,
        "chars_per_second": sum(chars) / elapsed,
        "first_char_p50_s": percentile(firsts, 0.50),
        "first_char_p99_s": percentile(firsts, 0.99),
    }


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of the sorted values lie (nearest rank)."""
    return values[max(0, math.ceil(share * len(values)) - 1)] if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="[default: the shipped model]")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto [default: cpu]")
    parser.add_argument("--clients", default="1,2,4,8", help="client counts [default: 1,2,4,8]")
    parser.add_argument("--seconds", type=float, default=20, help="per client count [default: 20]")
    parser.add_argument("--length", type=int, default=500, help="characters per request [500]")
    parser.add_argument("--repeats", type=int, default=3, help="charrnn sample runs [default: 3]")
    args = parser.parse_args()
    clients = [int(count) for count in args.clients.split(",")]
    if not 0 < args.seconds <= MAX_SECONDS or not all(0 < c <= MAX_CLIENTS for c in clients):
        common.fail(f"--seconds must be in (0, {MAX_SECONDS}], --clients in 1..{MAX_CLIENTS}", 2)
    checkpoint = args.checkpoint or default_checkpoint_path()
    device = resolve_device(args.device)
    started, load_before = time.perf_counter(), os.getloadavg()[0]

    common.log(f"charrnn sample -n {args.length}, {args.repeats} runs ...")
    single = [
        cli_sample(checkpoint, str(device), args.length, 1, seed) for seed in range(args.repeats)
    ]
    batched = {}
    for count in clients:
        common.log(f"charrnn sample --num-samples {count} ...")
        batched[count] = cli_sample(checkpoint, str(device), args.length, count, 1)
    server = Server(checkpoint, str(device), args.length)
    try:
        stream_one(server.port, {"length": 20, "seed": 0, "stream": True})  # warm up
        rows = []
        for count in clients:
            common.log(f"{count} clients for {args.seconds:g} s ...")
            rows.append(load(server.port, count, args.seconds, args.length))
    finally:
        server.stop()
    results = {
        "checkpoint": str(checkpoint),
        "length": args.length,
        "seconds_per_client_count": args.seconds,
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "cli_sample": common.spread([run["chars_per_second"] for run in single]),
        "cli_sample_wall_seconds": common.spread([run["wall_seconds"] for run in single]),
        "cli_sample_batched": {str(count): run for count, run in batched.items()},
        "serve": rows,
        "seconds_taken": time.perf_counter() - started,
    }
    device_info = common.describe_device(device)
    out = common.write_results("serve", device_info, results)
    report(results)
    common.log(f"wrote {out} in {results['seconds_taken']:.0f} s")


def report(results: dict) -> None:
    single = results["cli_sample"]
    wall = results["cli_sample_wall_seconds"]
    sys.stdout.write(
        f"charrnn sample -n {results['length']}: "
        f"{common.format_spread(single, lambda v: f'{v:,.0f}')} chars/s generating; "
        f"{common.format_spread(wall, lambda v: f'{v:.2f}')} s for the whole command\n\n"
    )
    milliseconds = lambda value: "-" if value is None else f"{value * 1000:.0f} ms"  # noqa: E731
    common.print_table(
        [
            "clients",
            "requests/s",
            "chars/s served",
            "vs one charrnn sample",
            "first char p50",
            "p99",
            "charrnn sample --num-samples N",
        ],  # fmt: skip
        [
            [
                row["clients"],
                f"{row['requests_per_second']:.2f}",
                f"{row['chars_per_second']:,.0f}",
                f"{row['chars_per_second'] / single.median:.2f}x",
                milliseconds(row["first_char_p50_s"]),
                milliseconds(row["first_char_p99_s"]),
                f"{results['cli_sample_batched'][str(row['clients'])]['chars_per_second']:,.0f}",
            ]
            for row in results["serve"]
        ],
    )


if __name__ == "__main__":
    torch.set_num_threads(1)  # this process only sends requests and reads
    main()
