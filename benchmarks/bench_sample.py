"""How fast `charrnn sample` generates: characters per second through the generation loop.

Measures one stream and batches of 64 and 1024 for a 2x128 and a 3x512 LSTM (random weights,
vocabulary 65: speed does not depend on what the weights say), in fp32 and, on CPU, with fp16
and int8 weights; a real checkpoint with --checkpoint. Each figure is the median of 3 runs
(spread: min-max). It also measures the machine's memory copy bandwidth and reports each
single-stream figure as a share of its bandwidth bound: one stream reads every weight once per
character, so chars/s <= bandwidth / weight bytes per character. That bound uses main-memory
(copy) bandwidth: weights that fit in the CPU's caches are read faster, so small models (and
fp16/int8 copies of mid-sized ones) can show a share above 100%.

    python benchmarks/bench_sample.py                      # CPU, about a minute
    python benchmarks/bench_sample.py --device cuda
    python benchmarks/bench_sample.py --checkpoint runs/x --loss-text corpora/shakespeare.txt

Prints a table on stdout and writes JSON to benchmarks/results/sample-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from charrnn.checkpoint import Checkpoint, load_checkpoint
from charrnn.config import ModelConfig, SampleConfig
from charrnn.device import resolve_device
from charrnn.model import CharRNN
from charrnn.sampling import CPU_EMIT_EVERY, CUDA_EMIT_EVERY, Generation, resolve_precision
from charrnn.stepper import Stepper
from charrnn.vocab import Vocab

RESULTS = Path(__file__).resolve().parent / "results"
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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device: torch.device, threads: int | None = None) -> float:
    """GB/s of a large tensor copy (bytes read + bytes written), median of 3."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        size = (256 if device.type == "cpu" else 1024) * 2**20 // 4
        source = torch.rand(size, device=device)
        target = torch.empty_like(source)
        target.copy_(source)  # touch the pages first
        rates = []
        for _ in range(3):
            synchronize(device)
            start = time.perf_counter()
            target.copy_(source)
            synchronize(device)
            rates.append(2 * source.numel() * 4 / (time.perf_counter() - start) / 1e9)
        return statistics.median(rates)
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
            synchronize(device)
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
    for precision in ("fp32", "fp16", "int8"):
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
    parser.add_argument(
        "--out", type=Path, help="JSON file [default: benchmarks/results/sample-<device>.json]"
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    precisions = ["fp32", "fp16", "int8"] if device.type == "cpu" else ["fp32"]
    started = time.perf_counter()
    load_before = os.getloadavg()
    print(f"measuring copy bandwidth on {device} ...", file=sys.stderr)
    bandwidth = copy_bandwidth(device, threads=1 if device.type == "cpu" else None)
    bandwidth_all = copy_bandwidth(device) if device.type == "cpu" else bandwidth

    models = [(name, random_checkpoint(layers, hidden, device)) for name, layers, hidden in SHAPES]
    if args.checkpoint:
        loaded = load_checkpoint(args.checkpoint, device)
        config = loaded.model_config
        models.append(
            (f"{loaded.path.name} {config.cell} {config.num_layers}x{config.hidden_size}", loaded)
        )

    rows = []
    for name, checkpoint in models:
        for precision in precisions:
            for batch in batches:
                if precision != "fp32" and batch > 64:
                    continue  # compute-bound there: reduced precision buys little, costs minutes
                print(f"{name} {precision} batch {batch} ...", file=sys.stderr)
                row = {
                    "model": name,
                    "parameters": checkpoint.model.num_parameters(),
                    "precision": precision,
                    "batch": batch,
                }
                row.update(measure(checkpoint, batch, precision, args.seconds))
                bytes_per_step = Stepper(checkpoint.model, 1, precision).bytes_per_step()
                bound = bandwidth * 1e9 / bytes_per_step * batch
                row.update(
                    weight_bytes_per_step=bytes_per_step,
                    bandwidth_bound_chars_per_second=bound,
                    share_of_bound=row["chars_per_second"] / bound,
                )
                rows.append(row)
    baseline = forward_loop_baseline(models[0][1], args.seconds)
    losses = (
        loss_change(models[-1][1], args.loss_text, args.loss_chars)
        if args.checkpoint and args.loss_text
        else []
    )
    auto = {
        name: resolve_precision("auto", checkpoint.model, device) for name, checkpoint in models
    }

    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "copy_bandwidth_gb_per_s": bandwidth,
        "copy_bandwidth_all_threads_gb_per_s": bandwidth_all,
        "plain_forward_loop_chars_per_second_2x128": baseline,
        "auto_precision": auto,
        "results": rows,
        "loss_change": losses,
        "seconds_taken": time.perf_counter() - started,
    }
    out = args.out or RESULTS / f"sample-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(
        f"device {device} ({result['device_name']}), torch {torch.__version__}, "
        f"load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(
        f"copy bandwidth: {bandwidth:.1f} GB/s"
        + (f" (one thread; {bandwidth_all:.1f} GB/s all threads)" if device.type == "cpu" else "")
    )
    print(f"plain model.forward loop, lstm 2x128, one stream: {baseline:,.0f} chars/s")
    print()
    header = (
        f"{'model':<28} {'weights':<7} {'batch':>5} {'chars/s':>12} {'spread':>21} "
        f"{'per CPU-s':>11} {'bound':>12} {'share':>6} {'1st char':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        low, high = row["spread"]
        print(
            f"{row['model'][:28]:<28} {row['precision']:<7} {row['batch']:>5} "
            f"{row['chars_per_second']:>12,.0f} {f'{low:,.0f}-{high:,.0f}':>21} "
            f"{row['cpu_chars_per_second']:>11,.0f} "
            f"{row['bandwidth_bound_chars_per_second']:>12,.0f} {row['share_of_bound']:>6.0%} "
            f"{row['first_char_seconds'] * 1000:>7.0f}ms"
        )
    if losses:
        print()
        print(f"loss over the last {args.loss_chars} characters of {args.loss_text}:")
        for row in losses:
            print(
                f"  {row['precision']:<20} {row['val_loss']:.5f} nats/char  ({row['change']:+.5f})"
            )
    print(
        "\nbound: copy bandwidth / weight bytes read per step x batch; a share above 100% means "
        "the weights are served from cache, not main memory"
    )
    print(f"wrote {out} in {result['seconds_taken']:.0f} s")


if __name__ == "__main__":
    main()
