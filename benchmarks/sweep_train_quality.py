"""A sweep of training variants against one wall-clock budget: which recipe learns most in it.

Each variant is a set of `charrnn train` options (anything `bench_train_quality.py` passes
through) added to charrnn's defaults; each run trains on tiny Shakespeare for `--max-time`
seconds in a fresh process, exactly as `bench_train_quality.py` runs it. Prints one row per
variant, losers included: best val loss (median and min-max over `--runs`), chars/s, steps.

    python benchmarks/sweep_train_quality.py --max-time 180 --runs 1 --variants cpu-bf16
    python benchmarks/sweep_train_quality.py --variant "wide=--model lstm --hidden 384"

A variant is NAME=OPTIONS. The named sets below are the ones measured for the README's tables.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import bench_train_quality as quality
import common

VARIANT_SETS: dict[str, list[str]] = {
    # The CPU defaults re-tuned for 180 s on two cores with bf16 (issue 16).
    "cpu-bf16": [
        "defaults fp32=--precision fp32",
        "defaults=",
        "lstm 2x256=--model lstm",
        "lstm 2x384=--model lstm --hidden 384",
        "lstm 2x512=--model lstm --hidden 512",
        "gru 2x384=--hidden 384",
        "lstm 3x256=--model lstm --layers 3",
        "lstm 2x384 batch 128 lr 1e-2=--model lstm --hidden 384 --batch-size 128 --lr 1e-2",
        "lstm 2x384 seq 128=--model lstm --hidden 384 --seq-len 128",
        "lstm 2x384 lr 1e-2=--model lstm --hidden 384 --lr 1e-2",
        "lstm 2x384 lr 2.5e-3=--model lstm --hidden 384 --lr 2.5e-3",
        "lstm 2x256 batch 128 lr 1e-2=--model lstm --batch-size 128 --lr 1e-2",
        "lstm 2x384 dropout 0.1=--model lstm --hidden 384 --dropout 0.1",
    ],
    # The GRU, the first set's winner, around the defaults.
    "cpu-bf16-gru": [
        "gru 2x256 lr 1e-2=--lr 1e-2",
        "gru 2x256 lr 2.5e-3=--lr 2.5e-3",
        "gru 2x256 batch 128 lr 1e-2=--batch-size 128 --lr 1e-2",
        "gru 2x256 batch 32=--batch-size 32",
        "gru 2x256 seq 128=--seq-len 128",
        "gru 2x320=--hidden 320",
        "gru 3x256=--layers 3",
        "gru 2x256 dropout 0.1=--dropout 0.1",
        "gru 2x256 warmup 20=--warmup 20",
        "lstm 2x256 lr 1e-2=--model lstm --lr 1e-2",
        "lstm 2x384 lr 2e-2=--model lstm --hidden 384 --lr 2e-2",
    ],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=None, help=f"a named set: {', '.join(VARIANT_SETS)}")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=OPTIONS (repeatable); added to --variants",
    )
    parser.add_argument("--only", default=None, help="comma-separated names: run only these")
    parser.add_argument("--max-time", type=float, default=180.0, help="seconds per run [180]")
    parser.add_argument("--runs", type=int, default=1, help="runs per variant, seeds s, s+1.. [1]")
    parser.add_argument("--corpus", type=Path, default=None, help="[tiny Shakespeare]")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON [results/sweep_train_quality-<device>.json]"
    )
    return parser.parse_args()


def variants(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    if args.variants and args.variants not in VARIANT_SETS:
        common.fail(f"--variants takes {', '.join(VARIANT_SETS)}, got {args.variants!r}", 2)
    items = [*(VARIANT_SETS[args.variants] if args.variants else []), *args.variant]
    chosen = []
    for item in items:
        name, separator, options = item.partition("=")
        if not separator:
            common.fail(f"a variant is NAME=OPTIONS, got {item!r}", 2)
        chosen.append((name.strip(), shlex.split(options)))
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        chosen = [(name, options) for name, options in chosen if name in wanted]
    if not chosen:
        common.fail("no variants: give --variants or --variant", 2)
    return chosen


def run_variant(
    corpus: Path, name: str, options: list[str], max_time: float, runs: int
) -> dict[str, Any]:
    parsed = quality.parse_options([*options, "--max-time", str(max_time)])
    model_options, train_options = quality.user_options(parsed)
    first_seed = train_options.get("seed", 1337)
    figures = []
    for index in range(runs):
        run_options = {**train_options, "seed": first_seed + index}
        label = f"{name} {index + 1}/{runs}"
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            run = pool.submit(quality.run_once, str(corpus), model_options, run_options, label)
            found = run.result()
        if "error" in found:
            common.fail(f"{name}: {found['error']}", found["exit_code"])
        figures.append(found)
    return {
        "name": name,
        "options": " ".join(options),
        "best_val_loss": common.spread([r["best_val_loss"] for r in figures]),
        "chars_per_second": common.spread([r["chars_per_second"] for r in figures]),
        "steps": common.spread([r["steps"] for r in figures]),
        "model": figures[0]["model_config"],
        "precision": figures[0]["precision"],
        "parameters": figures[0]["num_parameters"],
        "runs": figures,
    }


def main() -> None:
    args = parse_args()
    chosen = variants(args)
    corpus = quality.find_corpus(args.corpus)
    device_info = common.describe_device(quality.resolve_device("auto"))
    results: list[dict[str, Any]] = []

    def save() -> Path:  # after every variant, so a stopped sweep keeps what it measured
        document = {
            "options": {"max_time": args.max_time, "runs": args.runs, "corpus": str(corpus)},
            "variants": results,
        }
        if args.out:
            return common.write_results_to(args.out, "sweep_train_quality", device_info, document)
        return common.write_results("sweep_train_quality", device_info, document)

    for name, options in chosen:
        common.log(f"{name}: {' '.join(options) or '(defaults)'}")
        result = run_variant(corpus, name, options, args.max_time, args.runs)
        results.append(result)
        save()
        common.log(
            f"{name}: best val loss {result['best_val_loss'].median:.4f}, "
            f"{result['chars_per_second'].median:,.0f} chars/s, {result['steps'].median:,.0f} steps"
        )
    loss = lambda v: f"{v:.4f}"  # noqa: E731
    common.print_table(
        ["variant", "model", "precision", "parameters", "best val loss", "chars/s", "steps"],
        [
            [
                r["name"],
                f"{r['model']['cell']} {r['model']['num_layers']}x{r['model']['hidden_size']}",
                r["precision"],
                f"{r['parameters']:,}",
                common.format_spread(r["best_val_loss"], loss, args.runs),
                common.format_spread(r["chars_per_second"], common.si, args.runs),
                common.format_spread(r["steps"], lambda v: f"{v:,.0f}", args.runs),
            ]
            for r in results
        ],
    )
    path = save()
    common.log(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
