"""Quality against time: train on tiny Shakespeare for a wall-clock budget, several runs.

Each run is `charrnn train` with the same options (charrnn.training, configs built as the CLI
builds them), in a fresh process so its peak memory is its own. Reports the best validation
loss (nats/char, last 10% of the text), the time to first reach each loss in LOSS_MARKS,
training chars/s and peak host and GPU memory: the median and min-max over the runs.

    python benchmarks/bench_train_quality.py --max-time 180 --runs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import common

from charrnn import ModelConfig, TrainConfig, train
from charrnn.device import resolve_device, use_bf16
from charrnn.errors import CharRNNError
from charrnn.events import EvalReport, Event, TrainResult, TrainStart
from charrnn.plan import plan_run

LOSS_MARKS = (1.60, 1.50, 1.45, 1.40)
MARK_KEYS = tuple(f"{mark:.2f}" for mark in LOSS_MARKS)  # "1.60", ...: JSON keys
VAL_FRACTION = 0.1  # the standard split: first 90% trains, last 10% validates
CORPUS_NAME = "tinyshakespeare.txt"
# ../shared/data beside the repository; a git-ignored shared/data inside it when only the
# repository travels (as to a GPU machine).
CORPUS_CANDIDATES = (
    common.REPO_DIR.parent / "shared" / "data" / CORPUS_NAME,
    common.REPO_DIR / "shared" / "data" / CORPUS_NAME,
)

# Options passed through to charrnn unchanged: (flag, config field, type). Unset means
# charrnn's own default, exactly as with `charrnn train`.
MODEL_OPTIONS = (
    ("--model", "cell", str),
    ("--layers", "num_layers", int),
    ("--hidden", "hidden_size", int),
    ("--embedding", "embedding_size", int),
    ("--dropout", "dropout", float),
)
TRAIN_OPTIONS = (
    ("--seq-len", "seq_len", int),
    ("--batch-size", "batch_size", int),
    ("--windows", "windows", str),
    ("--lr", "lr", float),
    ("--warmup", "warmup_steps", int),
    ("--weight-decay", "weight_decay", float),
    ("--grad-clip", "grad_clip", float),
    ("--max-steps", "max_steps", int),
    ("--patience", "patience", int),
    ("--eval-every", "eval_every", int),
    ("--sample-chars", "sample_chars", int),
    ("--precision", "precision", str),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (or `argv`: the sweep passes each variant's options through here)."""
    defaults = {
        f.name: f.default for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)
    }
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"the text to train on [default: {CORPUS_CANDIDATES[0]}]",
    )
    parser.add_argument(
        "--max-time", type=float, default=180.0, help="seconds of training per run [default: 180]"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="independent runs, seeds seed, seed+1, ... [default: 3]"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help=f"the first run's seed [default: {defaults['seed']}]"
    )
    parser.add_argument(
        "--device", default=None, help=f"auto, cpu, cuda or mps [default: {defaults['device']}]"
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"torch.compile the model [default: {defaults['compile']}]",
    )
    passthrough = parser.add_argument_group(
        "model and training options, as for charrnn train (unset: charrnn's defaults)"
    )
    for flag, field, kind in MODEL_OPTIONS + TRAIN_OPTIONS:
        passthrough.add_argument(
            flag,
            dest=field,
            type=kind,
            default=None,
            metavar=flag.removeprefix("--").upper(),
            help=f"{field} [default: {defaults[field]}]",
        )
    return parser.parse_args(argv)


parse_options = parse_args


def user_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and train options as `charrnn train` would pass them (see charrnn.plan.plan_run), as dicts.

    Only options that were given are set, so every other value is charrnn's default.
    """
    model_options = {field: getattr(args, field) for _, field, _ in MODEL_OPTIONS}
    train_options = {field: getattr(args, field) for _, field, _ in TRAIN_OPTIONS}
    train_options.update(
        max_time=args.max_time, device=args.device, seed=args.seed, compile=args.compile
    )
    model_options = {k: v for k, v in model_options.items() if v is not None}
    train_options = {k: v for k, v in train_options.items() if v is not None}
    train_options["val_fraction"] = VAL_FRACTION
    return model_options, train_options


def find_corpus(given: Path | None) -> Path:
    if given is not None:
        if not given.is_file():
            common.fail(f"corpus not found: {given}", 2)
        return given
    for candidate in CORPUS_CANDIDATES:
        if candidate.is_file():
            return candidate
    common.fail(
        f"tiny Shakespeare not found at {CORPUS_CANDIDATES[0]}; "
        "copy it there or pass --corpus PATH",
        2,
    )


class EvalRecorder:
    """An on_event callback keeping the start event and each evaluation, logging as it goes."""

    def __init__(self, run_label: str) -> None:
        self.run_label = run_label
        self.start: TrainStart | None = None
        self.evaluations: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrainStart):
            self.start = event
        elif isinstance(event, EvalReport):
            elapsed = event.metrics["elapsed_s"]
            self.evaluations.append(
                {"step": event.step, "elapsed_s": elapsed, "val_loss": event.val_loss}
            )
            common.log(
                f"{self.run_label}: step {event.step}, {elapsed:.0f} s, "
                f"val loss {event.val_loss:.4f}"
            )

    def finish(self, result: TrainResult) -> list[dict[str, Any]]:
        """The evaluations, with the one train() makes without an event when the clock stops
        between evaluations (a best loss no event showed came from it, at the end)."""
        seen_best = min((e["val_loss"] for e in self.evaluations), default=None)
        best = result.best_val_loss
        if best is not None and (seen_best is None or best < seen_best):
            self.evaluations.append(
                {"step": result.step, "elapsed_s": round(result.elapsed_s, 3), "val_loss": best}
            )
        return self.evaluations


def run_once(
    corpus_path: str,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
    run_label: str,
    init_from: str | None = None,
    measure: Callable[[Path], Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """One training run in this (fresh) process; its figures, or {'error', 'exit_code'}.

    init_from, threads: as `charrnn train --init-from`, `--threads`. measure: called with the
    run's best.pt before its directory goes; what it returns is kept as figures["measured"].
    """
    recorder = EvalRecorder(run_label)
    measured = None
    try:
        # The run `charrnn train` would make: its planning, its defaults, its thread choice.
        plan = plan_run(
            [corpus_path], model_options, train_options, threads=threads, init_from=init_from
        )
        config = plan.train_config
        with tempfile.TemporaryDirectory(prefix="charrnn-bench-") as out_dir:
            result = train(
                plan.corpus,
                plan.model_config,
                config,
                out_dir,
                init_from=plan.init_from,
                on_event=recorder,
            )
            if measure is not None and result.best_path is not None:
                measured = measure(result.best_path)
    except CharRNNError as problem:
        return {"error": str(problem), "exit_code": problem.exit_code}

    evaluations = recorder.finish(result)
    assert recorder.start is not None
    return {
        "seed": config.seed,
        "best_val_loss": result.best_val_loss,
        "time_to_loss_s": {
            key: time_to_reach(evaluations, mark)
            for key, mark in zip(MARK_KEYS, LOSS_MARKS, strict=True)
        },
        "chars_per_second": result.chars_per_second,
        "steps": result.step,
        "elapsed_s": result.elapsed_s,
        "stop_reason": result.stop_reason,
        "num_parameters": recorder.start.num_parameters,
        "precision": recorder.start.precision,
        "model_config": dataclasses.asdict(plan.model_config),
        "train_config": dataclasses.asdict(config),
        "threads": plan.threads.count if plan.threads else None,
        "peak_host_memory_bytes": common.peak_host_memory_bytes(),
        "peak_gpu_memory_bytes": common.peak_gpu_memory_bytes(resolve_device(config.device)),
        "evaluations": evaluations,
        **({"measured": measured} if measure is not None else {}),
    }


def time_to_reach(evaluations: list[dict[str, Any]], loss: float) -> float | None:
    """Seconds into training of the first evaluation at or below `loss`; None if never."""
    return next((e["elapsed_s"] for e in evaluations if e["val_loss"] <= loss), None)


def summarize(runs: list[dict[str, Any]]) -> dict[str, common.Spread]:
    summary = {"best_val_loss": common.spread([r["best_val_loss"] for r in runs])}
    for mark in MARK_KEYS:
        summary[f"time_to_{mark}_s"] = common.spread([r["time_to_loss_s"][mark] for r in runs])
    for key in ("chars_per_second", "peak_host_memory_bytes", "peak_gpu_memory_bytes"):
        summary[key] = common.spread([r[key] for r in runs])
    return summary


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _mebibytes(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f} MiB"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_tables(runs: list[dict[str, Any]], summary: dict[str, common.Spread]) -> None:
    headers = ["seed", "best val loss", *(f"time to {m}" for m in MARK_KEYS), "chars/s", "steps"]
    common.print_table(
        [*headers, "host peak", "GPU peak"],
        [
            [
                r["seed"],
                _loss(r["best_val_loss"]),
                *(_seconds(r["time_to_loss_s"][m]) for m in MARK_KEYS),
                common.si(r["chars_per_second"]),
                r["steps"],
                _mebibytes(r["peak_host_memory_bytes"]),
                _mebibytes(r["peak_gpu_memory_bytes"]),
            ]
            for r in runs
        ],
    )
    n = len(runs)
    rows = [["best val loss (nats/char)", common.format_spread(summary["best_val_loss"], _loss, n)]]
    rows += [
        [f"time to {m}", common.format_spread(summary[f"time_to_{m}_s"], _seconds, n)]
        for m in MARK_KEYS
    ]
    rows += [
        ["training chars/s", common.format_spread(summary["chars_per_second"], common.si, n)],
        [
            "peak host memory",
            common.format_spread(summary["peak_host_memory_bytes"], _mebibytes, n),
        ],
        ["peak GPU memory", common.format_spread(summary["peak_gpu_memory_bytes"], _mebibytes, n)],
    ]
    common.print_table([f"median (min-max) of {n} runs", "value"], rows)


def main() -> None:
    args = parse_args()
    if args.runs < 1:
        common.fail(f"--runs must be at least 1, got {args.runs}", 2)
    corpus_path = find_corpus(args.corpus)
    model_options, train_options = user_options(args)
    try:
        # Check the options here, once, before any run starts.
        ModelConfig(vocab_size=1, **model_options)
        base = TrainConfig(**train_options)
        device = resolve_device(base.device)
        use_bf16(device, base.precision)
    except CharRNNError as problem:
        common.fail(str(problem), problem.exit_code)
    device_info = common.describe_device(device)
    common.log(
        f"{args.runs} run(s) of {args.max_time:g} s on {device_info['name']}, corpus {corpus_path}"
    )

    runs = []
    for index in range(args.runs):
        options = {**train_options, "seed": base.seed + index}
        # A fresh process per run: its own peak memory, nothing warm from the run before.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            figures = pool.submit(
                run_once, str(corpus_path), model_options, options, f"run {index + 1}/{args.runs}"
            ).result()
        if "error" in figures:
            common.fail(figures["error"], figures["exit_code"])
        runs.append(figures)
        common.log(
            f"run {index + 1}/{args.runs}: best val loss {figures['best_val_loss']:.4f} "
            f"after {figures['steps']} steps, {figures['chars_per_second']:,.0f} chars/s"
        )

    summary = summarize(runs)
    print_tables(runs, summary)
    path = common.write_results(
        "train_quality",
        device_info,
        {
            "options": {
                "corpus": str(corpus_path),
                "max_time": args.max_time,
                "runs": args.runs,
                "model_options": model_options,
                "train_options": train_options,
            },
            "summary": summary,
            "runs": runs,
        },
    )
    common.log(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
