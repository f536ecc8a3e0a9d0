"""Training throughput: chars/s of charrnn's training loop for each cell, size and precision.

Runs charrnn.training itself (forward, cross-entropy, backward, clip, AdamW step, windows on the
device, loss read-back every few steps) on random text with tiny Shakespeare's 65 characters,
and times its step reports: a warm-up, then `--repeats` windows of at least `--seconds` each.
Evaluation never runs. Model FLOP/s is 6 x parameters x chars/s (2 forward + 4 backward per
parameter per character), set against the measured peak of a large matmul.

    python benchmarks/bench_train_throughput.py --cells lstm --sizes 3x512 --precisions bf16
"""

from __future__ import annotations

import argparse
import dataclasses
import string
import tempfile
import time
from typing import Any

import common
import torch

from charrnn import Corpus, ModelConfig, TrainConfig, train
from charrnn.config import CELLS
from charrnn.device import cpu_has_bf16, resolve_device, use_bf16
from charrnn.errors import CharRNNError
from charrnn.events import Event, StepReport, TrainStart

ALL_SIZES = ("2x128", "2x512", "3x512", "3x1024")
CPU_SIZES = ("2x128", "2x512")  # the bigger ones take minutes per step window on a few cores
ALPHABET = "\n !$&',-.3:;?" + string.ascii_uppercase + string.ascii_lowercase  # tiny Shakespeare's
WINDOWS_PER_PASS = 50  # random text long enough for this many stateful windows
TRAINING_FLOPS_PER_PARAMETER = 6  # per character: 2 forward + 4 backward
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args() -> argparse.Namespace:
    defaults = {
        f.name: f.default for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)
    }
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cells", default=",".join(CELLS), help="comma-separated [default: %(default)s]"
    )
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated LAYERSxHIDDEN "
        f"[default: {','.join(ALL_SIZES)} on CUDA, {','.join(CPU_SIZES)} elsewhere]",
    )
    parser.add_argument(
        "--precisions",
        default=None,
        help="fp32 and/or bf16 (CUDA, or a CPU with bf16 matrix units) "
        "[default: both where bf16 runs, fp32 elsewhere]",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="windows per step [default: 64]")
    parser.add_argument(
        "--seq-len", type=int, default=128, help="characters per window [default: 128]"
    )
    parser.add_argument(
        "--windows", default=None, help=f"stateful or random [default: {defaults['windows']}]"
    )
    parser.add_argument(
        "--embedding",
        type=int,
        default=None,
        help=f"character embedding size [default: {defaults['embedding_size']}]",
    )
    parser.add_argument(
        "--dropout", type=float, default=None, help=f"dropout [default: {defaults['dropout']}]"
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"torch.compile the model [default: {defaults['compile']}]",
    )
    parser.add_argument(
        "--device", default=None, help=f"auto, cpu, cuda or mps [default: {defaults['device']}]"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed windows per model [default: 3]"
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="least seconds per timed window [default: 2]"
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=2.0, help="untimed seconds first [default: 2]"
    )
    return parser.parse_args()


def parse_list(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        common.fail(f"{option} takes {', '.join(allowed)}, got {text!r}", 2)
    return items


def random_corpus(batch_size: int, seq_len: int, val_fraction: float) -> Corpus:
    """Random text over ALPHABET: throughput does not depend on what the characters say."""
    train_chars = batch_size * seq_len * WINDOWS_PER_PASS + 1
    total = int(train_chars / (1 - val_fraction)) + seq_len
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(ALPHABET), (total,), generator=generator).tolist()
    return Corpus(text="".join(ALPHABET[i] for i in ids), sources=("random text",))


class StepTimer:
    """Times windows of training steps from train()'s step reports, after a warm-up.

    Used as both on_event and should_stop: it asks train() to stop once all windows are timed.
    """

    def __init__(self, device: torch.device, warmup_s: float, window_s: float, repeats: int):
        self.device, self.warmup_s, self.window_s, self.repeats = (
            device,
            warmup_s,
            window_s,
            repeats,
        )
        self.started = 0.0
        self.num_parameters = 0
        self.marks: list[tuple[int, float]] = []  # (step, time) at each window boundary

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainStart):
            self.num_parameters = event.num_parameters
            self.started = time.perf_counter()
        if not isinstance(event, StepReport):
            return
        # train() has already read the loss back (a sync); this makes the clock safe regardless.
        common.synchronize(self.device)
        now = time.perf_counter()
        if not self.marks:
            # Steps 1-2 build the graph, allocate and (with --compile) compile: never timed.
            if now - self.started >= self.warmup_s and event.step >= 3:
                self.marks.append((event.step, now))
            return
        last_step, last_time = self.marks[-1]
        if event.step > last_step and now - last_time >= self.window_s:
            self.marks.append((event.step, now))

    def done(self) -> bool:
        return len(self.marks) > self.repeats

    def windows(self) -> list[tuple[int, float]]:
        """(steps, seconds) of each timed window."""
        return [
            (s1 - s0, t1 - t0)
            for (s0, t0), (s1, t1) in zip(self.marks, self.marks[1:], strict=False)
        ]


def measure(
    corpus: Corpus, model_config: ModelConfig, config: TrainConfig, timer: StepTimer
) -> dict[str, Any]:
    """Train until `timer` has its windows; their chars/s."""
    with tempfile.TemporaryDirectory(prefix="charrnn-bench-") as out_dir:
        train(corpus, model_config, config, out_dir, on_event=timer, should_stop=timer.done)
    chars_per_step = config.batch_size * config.seq_len
    windows = [
        {"steps": steps, "seconds": seconds, "chars_per_second": steps * chars_per_step / seconds}
        for steps, seconds in timer.windows()
    ]
    speed = common.spread([w["chars_per_second"] for w in windows])
    return {"num_parameters": timer.num_parameters, "chars_per_second": speed, "windows": windows}


def main() -> None:
    args = parse_args()
    if args.repeats < 1:
        common.fail(f"--repeats must be at least 1, got {args.repeats}", 2)
    cells = parse_list(args.cells, CELLS, "--cells")
    try:
        device = resolve_device(args.device or TrainConfig().device)
    except CharRNNError as problem:
        common.fail(str(problem), problem.exit_code)
    cuda = device.type == "cuda"
    sizes = common.parse_sizes(args.sizes or ",".join(ALL_SIZES if cuda else CPU_SIZES))
    bf16_runs = cuda or (device.type == "cpu" and cpu_has_bf16())
    precisions = parse_list(
        args.precisions or ("fp32,bf16" if bf16_runs else "fp32"), tuple(DTYPES), "--precisions"
    )

    model_options = {"embedding_size": args.embedding, "dropout": args.dropout}
    train_options = {"windows": args.windows, "compile": args.compile, "device": args.device}
    model_options = {k: v for k, v in model_options.items() if v is not None}
    train_options = {k: v for k, v in train_options.items() if v is not None}
    # No evaluation: it would interrupt the timed steps. max_steps is never reached either.
    train_options.update(
        batch_size=args.batch_size, seq_len=args.seq_len, eval_every=10**9, max_steps=10**9
    )
    train_options.update(val_fraction=0.01, sample_chars=0)
    plans = []
    try:
        for cell in cells:
            for layers, hidden in sizes:
                for precision in precisions:
                    model_config = ModelConfig(
                        vocab_size=len(ALPHABET),
                        cell=cell,
                        num_layers=layers,
                        hidden_size=hidden,
                        **model_options,
                    )
                    config = TrainConfig(precision=precision, **train_options)
                    use_bf16(device, precision)  # refuses bf16 where it cannot run
                    plans.append((model_config, config))
    except CharRNNError as problem:
        common.fail(str(problem), problem.exit_code)

    device_info = common.describe_device(device)
    common.log(f"measuring the matmul peak on {device_info['name']}")
    # Both peaks where bf16 runs, so every figure is also a share of the bf16 peak.
    peaks = {
        p: common.matmul_flops(device, DTYPES[p])
        for p in ("fp32", "bf16")
        if bf16_runs or p == "fp32"
    }
    corpus = random_corpus(args.batch_size, args.seq_len, train_options["val_fraction"])

    results = []
    for model_config, config in plans:
        size = f"{model_config.num_layers}x{model_config.hidden_size}"
        label = f"{model_config.cell} {size} {config.precision}"
        common.log(f"{label}: timing")
        timer = StepTimer(device, args.warmup_seconds, args.seconds, args.repeats)
        try:
            figures = measure(corpus, model_config, config, timer)
        except torch.cuda.OutOfMemoryError:
            common.log(f"{label}: out of GPU memory, skipped")
            continue
        except CharRNNError as problem:
            common.fail(str(problem), problem.exit_code)
        speed = figures["chars_per_second"]
        model_flops = TRAINING_FLOPS_PER_PARAMETER * figures["num_parameters"] * speed.median
        results.append(
            {
                "cell": model_config.cell,
                "layers": model_config.num_layers,
                "hidden": model_config.hidden_size,
                "precision": config.precision,
                **figures,
                "model_flops_per_second": model_flops,
                "fraction_of_matmul_peak": model_flops / peaks[config.precision].median,
                "fraction_of_peak": {p: model_flops / peak.median for p, peak in peaks.items()},
            }
        )
        common.log(f"{label}: {speed.median:,.0f} chars/s")

    common.print_table(
        ["precision", f"matmul peak FLOP/s ({device_info['name']})"],
        [[p, common.format_spread(peak, common.si)] for p, peak in peaks.items()],
    )
    common.print_table(
        ["cell", "size", "precision", "parameters", "chars/s", "model FLOP/s"]
        + [f"of {p} peak" for p in peaks],
        [
            [
                r["cell"],
                f"{r['layers']}x{r['hidden']}",
                r["precision"],
                f"{r['num_parameters']:,}",
                common.format_spread(r["chars_per_second"], common.si),
                common.si(r["model_flops_per_second"]),
                *(f"{share:.1%}" for share in r["fraction_of_peak"].values()),
            ]
            for r in results
        ],
    )
    path = common.write_results(
        "train_throughput",
        device_info,
        {
            "options": {
                "cells": cells,
                "sizes": [f"{layers}x{hidden}" for layers, hidden in sizes],
                "precisions": precisions,
                "model_options": model_options,
                "train_options": train_options,
                "repeats": args.repeats,
                "seconds": args.seconds,
                "warmup_seconds": args.warmup_seconds,
            },
            "matmul_peak_flops_per_second": peaks,
            "results": results,
        },
    )
    common.log(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
