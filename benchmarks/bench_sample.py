"""How fast `charrnn sample` generates: characters per second through the generation loop.

Measures one stream and batches of 64 and 1024 for a 2x128 and a 3x512 LSTM (random weights,
vocabulary 65: speed does not depend on what the weights say), in fp32 and, on CPU, with fp16
and int8 weights, and bf16 where the CPU has bf16 matrix units; a real checkpoint with
--checkpoint. Batches are set against the one-thread matmul peak (fp32 and bf16) too. Each figure is the median of 3 runs
(spread: min-max). It also measures the machine's memory copy bandwidth and reports each
single-stream figure as a share of its bandwidth bound: one stream reads every weight once per
character, so chars/s <= bandwidth / weight bytes per character. That bound uses main-memory
(copy) bandwidth: weights that fit in the CPU's caches are read faster, so small models (and
fp16/int8 copies of mid-sized ones) can show a share above 100%.

    python benchmarks/bench_sample.py                      # CPU, about a minute
    python benchmarks/bench_sample.py --device cuda
    python benchmarks/bench_sample.py --checkpoint runs/x --loss-text corpora/shakespeare.txt

Prints a table on stdout and writes JSON to benchmarks/results/sample-<device>.json (common.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import common
import torch

from charrnn.checkpoint import Checkpoint, load_checkpoint
from charrnn.config import ModelConfig, SampleConfig
from charrnn.device import cpu_has_bf16, resolve_device
from charrnn.model import CharRNN
from charrnn.sampling import CPU_EMIT_EVERY, CUDA_EMIT_EVERY, Generation, resolve_precision
from charrnn.stepper import Stepper
from charrnn.vocab import Vocab

SHAPES = [("lstm 2x128", 2, 128), ("lstm 3x512", 3, 512)]
BATCHES = [1, 64, 1024]
REPEATS = 3


def random_checkpoint(layers: int, hidden: int, device: torch.device) -> Checkpoint:
    torch.manual_seed(0)
    vocab = Vocab(
        "\n" + "".join(chr(c) for c in range(32, 96))
    )  # 65 characters, like tiny Shakespeare
    config = ModelConfig(
        vocab_size=len(vocab),
        cell="lstm",
        num_layers=layers,
        hidden_size=hidden,
        embedding_size=64,
        dropout=0.0,
    )
    return Checkpoint(model=CharRNN(config).to(device).eval(), vocab=vocab, model_config=config)


def single_thread_bandwidth(device: torch.device) -> float:
    """Copy bandwidth in GB/s on one thread: what one generation stream (on one thread) can use."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return common.copy_bandwidth(device).median / 1e9
    finally:
        torch.set_num_threads(previous)


def single_thread_matmul_peaks(device: torch.device, bf16: bool) -> dict[str, float]:
    """FLOP/s of a large matmul on one thread (all of the device's off CPU), fp32 and bf16."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if bf16 else {})}
        return {p: common.matmul_flops(device, dtype).median for p, dtype in dtypes.items()}
    finally:
        torch.set_num_threads(previous)


def run_once(
    checkpoint: Checkpoint, batch: int, length: int, precision: str, seed: int
) -> tuple[float, float, float]:
    """Steady generation speed: (chars/s by the wall clock, chars per second of this process's
    CPU time, seconds to the first character). The clocks start at the first character, so
    set-up (reading the prime, packing weights) is reported apart from the speed."""
    config = SampleConfig(
        length=length,
        num_samples=batch,
        seed=seed,
        precision=precision,
        device=str(checkpoint.model.head.weight.device),
    )
    device = checkpoint.model.head.weight.device
    first_burst = min(length, CPU_EMIT_EVERY if device.type == "cpu" else CUDA_EMIT_EVERY)
    start = time.perf_counter()
    pieces = iter(Generation(checkpoint.model, checkpoint.vocab, config))
    next(pieces)  # the first burst of steps is done when its first character comes out
    wall, cpu = time.perf_counter(), time.process_time()
    first_char = wall - start
    for _ in pieces:
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    chars = batch * (length - first_burst)
    return chars / max(wall, 1e-9), chars / max(cpu, 1e-9), first_char


def measure(checkpoint: Checkpoint, batch: int, precision: str, seconds: float) -> dict:
    device = checkpoint.model.head.weight.device
    least = 2 * (CPU_EMIT_EVERY if device.type == "cpu" else CUDA_EMIT_EVERY)
    rate, _, _ = run_once(checkpoint, batch, least, precision, seed=0)  # warm-up, calibration
    length = max(least, int(rate * seconds / batch))
    runs = [run_once(checkpoint, batch, length, precision, seed=run) for run in range(REPEATS)]
    wall = [r[0] for r in runs]
    return {
        "chars_per_second": statistics.median(wall),
        "spread": [min(wall), max(wall)],
        "cpu_chars_per_second": statistics.median(r[1] for r in runs),
        "first_char_seconds": statistics.median(r[2] for r in runs),
        "length": length,
    }


def forward_loop_baseline(checkpoint: Checkpoint, seconds: float) -> float:
    """The plain loop: model.forward on one character at a time, carrying the state (on one
    thread, like the generation loop: two threads are far slower for such small ops)."""
    model, device = checkpoint.model, checkpoint.model.head.weight.device
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ids = torch.zeros(1, 1, dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    rates = []
    with torch.inference_mode():
        for _ in range(REPEATS):
            state, count, start = None, 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                logits, state = model(ids, state)
                ids = torch.multinomial(logits[:, -1].softmax(-1), 1, generator=generator)
                count += 1
            common.synchronize(device)
            rates.append(count / (time.perf_counter() - start))
    torch.set_num_threads(threads)
    return statistics.median(rates)


def loss_change(checkpoint: Checkpoint, text_path: Path, chars: int) -> list[dict]:
    """Nats per character over the last `chars` characters of a text, stepping in each precision,
    against model.forward in fp32."""
    text = text_path.read_text(encoding="utf-8")[-chars - 1 :]
    ids = torch.tensor(checkpoint.vocab.encode(text, unknown="skip"))
    targets = ids[1:]
    with torch.inference_mode():
        logits, _ = checkpoint.model(ids[None, :-1].to(checkpoint.model.head.weight.device))
        reference = torch.nn.functional.cross_entropy(logits[0].float().cpu(), targets).item()
    rows = [{"precision": "model.forward fp32", "val_loss": reference, "change": 0.0}]
    if checkpoint.model.head.weight.device.type != "cpu":
        return rows
    for precision in (
        ("fp32", "fp16", "bf16", "int8") if cpu_has_bf16() else ("fp32", "fp16", "int8")
    ):
        with torch.inference_mode():
            stepper = Stepper(checkpoint.model, 1, precision)
            out = torch.empty(len(targets), len(checkpoint.vocab))
            for position in range(len(targets)):
                stepper.step(ids[position : position + 1], out[position : position + 1])
            loss = torch.nn.functional.cross_entropy(out, targets).item()
        rows.append({"precision": precision, "val_loss": loss, "change": loss - reference})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto [default: cpu]")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per run [default: 1]")
    parser.add_argument(
        "--checkpoint", type=Path, help="also measure this checkpoint (file or run directory)"
    )
    parser.add_argument(
        "--loss-text",
        type=Path,
        help="text for the loss change of reduced precision (needs --checkpoint)",
    )
    parser.add_argument(
        "--loss-chars", type=int, default=2000, help="characters of --loss-text [default: 2000]"
    )
    parser.add_argument(
        "--batches", default=",".join(map(str, BATCHES)), help="batch sizes [default: 1,64,1024]"
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    precisions = ["fp32", "fp16", "int8"] if device.type == "cpu" else ["fp32"]
    if device.type == "cpu" and cpu_has_bf16():
        precisions.insert(2, "bf16")
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    common.log(f"measuring copy bandwidth on {device} ...")
    bandwidth = single_thread_bandwidth(device) if device.type == "cpu" else None
    bandwidth_all = common.copy_bandwidth(device).median / 1e9
    bandwidth = bandwidth or bandwidth_all
    # A batch of streams is bound by arithmetic, not by reading weights: its share of the matmul
    # peak on one thread (the generation loop's), fp32 and bf16 where bf16 runs.
    peaks = single_thread_matmul_peaks(device, "bf16" in precisions)

    models = [(name, random_checkpoint(layers, hidden, device)) for name, layers, hidden in SHAPES]
    if args.checkpoint:
        loaded = load_checkpoint(args.checkpoint, device)
        models.append((f"{loaded.path.name} {loaded.model_config.shape}", loaded))
    rows = measure_all(models, precisions, batches, bandwidth, args.seconds)
    for row in rows:
        flops = 2 * row["parameters"] * row["chars_per_second"]
        row["share_of_matmul_peak"] = {p: flops / peak for p, peak in peaks.items()}
    baseline = forward_loop_baseline(models[0][1], args.seconds)
    losses = (
        loss_change(models[-1][1], args.loss_text, args.loss_chars)
        if args.checkpoint and args.loss_text
        else []
    )
    auto = {
        f"{name}, batch {batch}": resolve_precision("auto", ckpt.model, device, batch)
        for name, ckpt in models
        for batch in batches
    }
    results = {
        "load_average_before_after": [load_before, os.getloadavg()[0]],
        "copy_bandwidth_gb_per_s": bandwidth,
        "copy_bandwidth_all_threads_gb_per_s": bandwidth_all,
        "matmul_peak_one_thread_flops_per_second": peaks,
        "plain_forward_loop_chars_per_second_2x128": baseline,
        "auto_precision": auto,
        "results": rows,
        "loss_change": losses,
        "seconds_taken": time.perf_counter() - started,
    }
    device_info = common.describe_device(device)
    out = common.write_results("sample", device_info, results)
    report(device_info, results, args)
    common.log(f"wrote {out} in {results['seconds_taken']:.0f} s")


def measure_all(
    models: list[tuple[str, Checkpoint]],
    precisions: list[str],
    batches: list[int],
    bandwidth_gb_s: float,
    seconds: float,
) -> list[dict]:
    rows = []
    for name, checkpoint in models:
        for precision in precisions:
            for batch in batches:
                if precision not in ("fp32", "bf16") and batch > 64:
                    continue  # compute-bound there: reduced precision buys little, costs minutes
                common.log(f"{name} {precision} batch {batch} ...")
                row = {
                    "model": name,
                    "parameters": checkpoint.model.num_parameters(),
                    "precision": precision,
                    "batch": batch,
                }
                row.update(measure(checkpoint, batch, precision, seconds))
                bytes_per_step = Stepper(checkpoint.model, 1, precision).bytes_per_step()
                bound = bandwidth_gb_s * 1e9 / bytes_per_step * batch
                row.update(
                    weight_bytes_per_step=bytes_per_step,
                    bandwidth_bound_chars_per_second=bound,
                    share_of_bound=row["chars_per_second"] / bound,
                )
                rows.append(row)
    return rows


def report(device_info: dict, results: dict, args: argparse.Namespace) -> None:
    low, high = results["load_average_before_after"]
    print(
        f"device {device_info['name']}, torch {device_info['torch']}, "
        f"load average {low:.2f} -> {high:.2f}\n"
    )
    print(
        f"copy bandwidth: {results['copy_bandwidth_gb_per_s']:.1f} GB/s on one thread, "
        f"{results['copy_bandwidth_all_threads_gb_per_s']:.1f} GB/s on all\n"
    )
    baseline = results["plain_forward_loop_chars_per_second_2x128"]
    print(f"plain model.forward loop, lstm 2x128, one stream: {baseline:,.0f} chars/s\n")
    peaks = results["matmul_peak_one_thread_flops_per_second"]
    headers = ["model", "weights", "batch", "chars/s (spread)", "per CPU-s", "bound", "share",
               *(f"of {p} peak" for p in peaks), "1st char"]  # fmt: skip
    common.print_table(
        headers,
        [
            [
                row["model"],
                row["precision"],
                row["batch"],
                f"{row['chars_per_second']:,.0f} ({row['spread'][0]:,.0f}-{row['spread'][1]:,.0f})",
                f"{row['cpu_chars_per_second']:,.0f}",
                f"{row['bandwidth_bound_chars_per_second']:,.0f}",
                f"{row['share_of_bound']:.0%}",
                *(f"{share:.0%}" for share in row["share_of_matmul_peak"].values()),
                f"{row['first_char_seconds'] * 1000:.0f} ms",
            ]
            for row in results["results"]
        ],
    )
    if results["loss_change"]:
        print(f"loss over the last {args.loss_chars} characters of {args.loss_text}:")
        for row in results["loss_change"]:
            print(
                f"  {row['precision']:<20} {row['val_loss']:.5f} nats/char ({row['change']:+.5f})"
            )
    print(
        "bound: one-thread copy bandwidth / weight bytes read per step x batch; a share above "
        "100% means the weights are served from cache, not main memory"
    )


if __name__ == "__main__":
    main()
