"""Fine-tuning the shipped model against training from scratch, on CPU, for a wall-clock budget.

The text is English the shipped model never saw and charrnn does not ship: the licence texts of
/usr/share/common-licenses (one of each family, about 179 KB; the last 10% validates). Each run
is `charrnn train` in a fresh process, for --seconds: `--init-from shakespeare` with the
fine-tuning defaults, or from scratch with the CPU defaults. Two variants of the text:
  known      written in characters the shipped model knows (tabs as spaces, `<` as `(`, ...);
  new-chars  the same with characters it never saw mixed in: every 10th line in Greek letters
             and a word-final 'e' as 'é', so its vocabulary has to grow.
Reports the best validation loss (nats/char) and the loss on the new characters alone, as the
median (min-max) of --repeats runs, and writes results/finetune-cpu.json.

    python benchmarks/bench_finetune.py                          # the real one: about 55 minutes
    python benchmarks/bench_finetune.py --seconds 5 --repeats 1 --json /tmp/smoke.json
    python benchmarks/bench_finetune.py --source old.pt --starts fine-tuned   # another model
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import multiprocessing
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import bench_train_quality
import common
import torch

from charrnn import score
from charrnn.batches import validation_streams
from charrnn.checkpoint import load_checkpoint
from charrnn.data import split_ids
from charrnn.finetune import load_source
from charrnn.model import CharRNN
from charrnn.plan import plan_run
from charrnn.training import evaluate

VAL_FRACTION = 0.1
SOURCE = "shakespeare"
LICENCE_DIR = Path("/usr/share/common-licenses")
# One text of each family (GFDL-1.2, GPL-1, LGPL-2 and the rest repeat these nearly word for
# word), in this order: the last 10%, most of MPL-2.0, validates.
LICENCES = ("Apache-2.0", "Artistic", "BSD", "CC0-1.0", "GFDL-1.3", "GPL-2", "GPL-3",
            "LGPL-2.1", "LGPL-3", "MPL-1.1", "MPL-2.0")  # fmt: skip
# The licences' characters the shipped model lacks, written as ones it knows (`known` variant).
KNOWN_SPELLINGS = {"\t": " ", "\x0c": "", "`": "'", "<": "(", ">": ")", "=": "-", "%": " percent"}
LATIN = "abcdefghijklmnopqrstuvwxyz"
GREEK = "αβψδεφγηιξκλμνοπθρστυϐωχυζ"
TO_GREEK = str.maketrans(LATIN + LATIN.upper(), GREEK + GREEK.upper())
GREEK_EVERY = 10  # every 10th line of the new-chars variant is written in Greek letters
STARTS = ("fine-tuned", "scratch")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        default="60,180",
        help="training budgets per run, comma-separated [default: 60,180]",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind [default: 3]")
    parser.add_argument(
        "--variants", default="known,new-chars", help="text variants [default: known,new-chars]"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help=f"another English text instead of the licences in {LICENCE_DIR}",
    )
    parser.add_argument(
        "--source",
        default=SOURCE,
        help=f"the model to fine-tune: a shipped name or a checkpoint [default: {SOURCE}]",
    )
    parser.add_argument(
        "--starts",
        default=",".join(STARTS),
        help=f"which starts to run [default: {','.join(STARTS)}]",
    )
    parser.add_argument("--threads", type=int, default=None, help="as charrnn train --threads")
    parser.add_argument("--seed", type=int, default=1337, help="run i uses seed + i")
    parser.add_argument(
        "--json",
        type=Path,
        default=common.RESULTS_DIR / "finetune-cpu.json",
        help="where the figures go [default: benchmarks/results/finetune-cpu.json]",
    )
    return parser.parse_args()


# --- the texts --------------------------------------------------------------------------------


def read_licences() -> str:
    missing = [name for name in LICENCES if not (LICENCE_DIR / name).is_file()]
    if missing:
        common.fail(f"{LICENCE_DIR} lacks {', '.join(missing)}; pass --corpus PATH", 2)
    return "".join((LICENCE_DIR / name).read_text(encoding="utf-8") for name in LICENCES)


def known_variant(text: str, known: set[str]) -> str:
    """The text in characters the shipped model knows: respelt where there is a spelling,
    dropped otherwise."""
    for char, spelling in KNOWN_SPELLINGS.items():
        text = text.replace(char, spelling)
    return "".join(char for char in text if char in known)


def new_chars_variant(text: str) -> str:
    """Every GREEK_EVERY-th line in Greek letters; elsewhere a word-final 'e' as 'é'."""
    lines = text.split("\n")
    return "\n".join(
        line.translate(TO_GREEK)
        if number % GREEK_EVERY == GREEK_EVERY - 1
        else re.sub(r"e\b", "é", line)
        for number, line in enumerate(lines)
    )


def build_texts(raw: str, variants: list[str], known: set[str]) -> dict[str, str]:
    base = known_variant(raw, known)
    made = {"known": base, "new-chars": new_chars_variant(base)}
    unknown = sorted(set(variants) - made.keys())
    if unknown:
        common.fail(f"--variants takes known and new-chars, got {', '.join(unknown)}", 2)
    return {name: made[name] for name in variants}


# --- measuring --------------------------------------------------------------------------------


def new_char_loss(best_path: Path, text: str, new_chars: str) -> dict[str, float | None]:
    """Loss (nats/char) on the validation characters the shipped model never saw, the text
    scored as one stream."""
    start = len(split_ids(torch.arange(len(text)), VAL_FRACTION)[0])
    validation = text[start:]
    logprobs = score(load_checkpoint(best_path), validation, device="cpu").logprobs
    mask = torch.tensor([char in new_chars for char in validation])
    return {"new_char_val_loss": float(-logprobs[mask].mean()) if bool(mask.any()) else None}


def untrained_loss(corpus_path: Path, threads: int | None, source: str = SOURCE) -> float:
    """The val loss of the source model with its vocabulary grown, before any step: where
    fine-tuning starts (measured as training measures it)."""
    plan = plan_run(
        [corpus_path], {}, {"device": "cpu", "val_fraction": VAL_FRACTION},
        threads=threads, init_from=source,
    )  # fmt: skip
    assert plan.init_from is not None
    model = CharRNN(plan.model_config)
    model.load_state_dict(plan.init_from.weights)
    text = corpus_path.read_text(encoding="utf-8")
    ids = torch.tensor(plan.init_from.vocab.encode(text), dtype=torch.long)
    _, val_ids = split_ids(ids, VAL_FRACTION)
    seq_len = plan.train_config.seq_len
    inputs, targets = validation_streams(val_ids, max_streams=64, seq_len=seq_len)
    return evaluate(model, inputs, targets, max(seq_len, 256), bf16=False)


def run_in_fresh_process(
    corpus_path: Path, text: str, new_chars: str, start: str, seconds: float, seed: int,
    threads: int | None, label: str, source: str = SOURCE,
) -> dict[str, Any]:  # fmt: skip
    options = {"device": "cpu", "val_fraction": VAL_FRACTION, "max_time": seconds, "seed": seed}
    measure = functools.partial(new_char_loss, text=text, new_chars=new_chars)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        figures = pool.submit(
            bench_train_quality.run_once, str(corpus_path), {}, options, label,
            source if start == "fine-tuned" else None, measure, threads,
        ).result()  # fmt: skip
    if "error" in figures:
        common.fail(figures["error"], figures["exit_code"])
    figures.update(start=start, seconds=seconds, **(figures.pop("measured") or {}))
    common.log(
        f"{label}: best val loss {figures['best_val_loss']:.4f} after {figures['steps']} steps, "
        f"{figures['chars_per_second']:,.0f} chars/s"
    )
    return figures


# --- reporting --------------------------------------------------------------------------------


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


FIGURES = ("best_val_loss", "new_char_val_loss", "steps", "chars_per_second")


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per start and budget ('fine-tuned@60'): the model and each figure's spread."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(f"{run['start']}@{run['seconds']:g}", []).append(run)
    return {
        key: {
            "model": _shape(group[0]["model_config"]),
            **{figure: common.spread([run.get(figure) for run in group]) for figure in FIGURES},
        }
        for key, group in groups.items()
    }


def _shape(model_config: dict[str, Any]) -> str:
    cell, layers, hidden = (
        model_config["cell"],
        model_config["num_layers"],
        model_config["hidden_size"],
    )
    return f"{cell.upper()} {layers}x{hidden}"


def print_variant(name: str, summary: dict[str, dict[str, Any]], budgets: list[float],
                  repeats: int, step0: float, new_chars: str,
                  starts: tuple[str, ...] = STARTS) -> None:  # fmt: skip
    sys.stdout.write(f"variant {name}: median (min-max) of {repeats} runs, loss in nats/char\n\n")
    headers = ["start", "model"]
    headers += [f"best val loss, {s:g} s" for s in budgets]
    if new_chars:
        headers += [f"new-char loss, {s:g} s" for s in budgets]
    headers += [f"steps, {s:g} s" for s in budgets] + ["chars/s"]
    rows = []
    for start in starts:
        groups = [summary[f"{start}@{s:g}"] for s in budgets]
        row = [start, groups[0]["model"]]
        row += [common.format_spread(g["best_val_loss"], _loss, repeats) for g in groups]
        if new_chars:
            row += [common.format_spread(g["new_char_val_loss"], _loss, repeats) for g in groups]
        row += [common.format_spread(g["steps"], lambda v: f"{v:.0f}", repeats) for g in groups]
        row.append(common.format_spread(groups[-1]["chars_per_second"], common.si, repeats))
        rows.append(row)
    common.print_table(headers, rows)
    sys.stdout.write(f"the source model before any step: val loss {step0:.4f}\n\n")


def main() -> None:
    args = parse_args()
    budgets = [float(s) for s in args.seconds.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    args.starts = tuple(s.strip() for s in args.starts.split(",") if s.strip())
    if args.repeats < 1 or not budgets or min(budgets) <= 0:
        common.fail("--repeats must be at least 1 and --seconds positive numbers", 2)
    if not args.starts or set(args.starts) - set(STARTS):
        common.fail(f"--starts takes {' and '.join(STARTS)}", 2)
    known = set(load_source(args.source).checkpoint.vocab.chars)
    raw = args.corpus.read_text(encoding="utf-8") if args.corpus else read_licences()
    texts = build_texts(raw, variants, known)
    device_info = {**common.describe_device(torch.device("cpu")), "slug": "cpu"}
    total = len(texts) * len(args.starts) * args.repeats * sum(budgets)
    common.log(
        f"{total:,.0f} s ({total / 60:.0f} min) of training, plus start-ups and evaluations, "
        f"on {device_info['name']}"
    )

    results: dict[str, Any] = {"options": vars(args) | {"budgets": budgets}, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="charrnn-finetune-") as folder:
        for name, text in texts.items():
            results["variants"][name] = run_variant(Path(folder), name, text, known, args, budgets)
    path = common.write_results_to(args.json, "finetune", device_info, results)
    common.log(f"wrote {path}")


def run_variant(folder: Path, name: str, text: str, known: set[str], args: argparse.Namespace,
                budgets: list[float]) -> dict[str, Any]:  # fmt: skip
    corpus_path = folder / f"licences-{name}.txt"
    corpus_path.write_text(text, encoding="utf-8")
    new_chars = "".join(sorted(set(text) - known))
    step0 = untrained_loss(corpus_path, args.threads, args.source)
    runs = []
    for index in range(args.repeats):  # repeats outermost: a slow spell hits every kind alike
        for seconds in budgets:
            for start in args.starts:
                label = f"{name} {start} {seconds:g} s, run {index + 1}/{args.repeats}"
                runs.append(run_in_fresh_process(
                    corpus_path, text, new_chars, start, seconds, args.seed + index,
                    args.threads, label, args.source,
                ))  # fmt: skip
    summary = summarize(runs)
    print_variant(name, summary, budgets, args.repeats, step0, new_chars, args.starts)
    return {
        "chars": len(text),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "new_chars": new_chars,
        "new_char_share": sum(char in new_chars for char in text) / len(text),
        "untrained_val_loss": step0,
        "summary": summary,
        "runs": runs,
    }


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        common.fail("interrupted", 130)
