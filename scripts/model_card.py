"""Write checkpoints/README.md, the shipped model's card, from the checkpoint itself.

Usage:
  python scripts/model_card.py [CHECKPOINT] [--previous OLD.pt | --previous-rev REV]
                               [--finetune NAME=RESULTS.json ...] [--curve METRICS.jsonl]
                               [--sizes SWEEP.json ...] [--hardware TEXT]

Every figure comes from the checkpoints: the held-out loss is re-scored here from the files
(what `charrnn score --whole` prints on the held-out tail), the samples are generated here,
unedited, with the seeds shown. --previous (a checkpoint) or --previous-rev (a git revision whose
checkpoints/shakespeare.pt is the earlier model) adds the side-by-side comparison; --finetune adds
the fine-tuning benchmark's figures (benchmarks/bench_finetune.py --json) for a model, NAME
being `previous` or `this`; --curve the run's evaluations (the metrics.jsonl `charrnn train` writes
in its run directory); --sizes the sizes tried (benchmarks/sweep_train_quality.py --out results).
The recipe shows the `charrnn train` commands of scripts/train_default_model.sh as they stand.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from charrnn import load_checkpoint, sample_text, score
from charrnn.checkpoint import Checkpoint
from charrnn.data import split_ids

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpora" / "shakespeare.txt"
RECIPE = REPO / "scripts" / "train_default_model.sh"
# (temperature, seed, prime): the same draws for every model compared.
SAMPLES = ((0.8, 1, ""), (0.5, 2, ""), (0.8, 3, "OTHELLO.\n"))
SAMPLE_CHARS = 500


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "checkpoint", nargs="?", type=Path, default=REPO / "checkpoints" / "shakespeare.pt"
    )
    parser.add_argument("--previous", type=Path, help="the earlier shipped model, to compare")
    parser.add_argument("--previous-rev", help="a git revision holding the earlier model")
    parser.add_argument("--finetune", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--curve", type=Path, help="the run's metrics.jsonl, its evaluations")
    parser.add_argument("--sizes", type=Path, action="append", default=[], help="sweep results")
    parser.add_argument("--hardware", default=_cpu_name(), help="where it was trained")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the text it was trained on")
    return parser.parse_args(argv)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{torch.get_num_threads()}-core {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def heldout_tail(corpus: Path, train_config: Any) -> tuple[str, int]:
    """The validation text of the corpus (its last val_fraction) and where it starts."""
    text = corpus.read_text(encoding="utf-8")
    start = len(split_ids(torch.arange(len(text)), train_config.val_fraction)[0])
    return text[start:], start


def heldout_loss(loaded: Checkpoint, tail: str) -> float:
    """Nats per character on the held-out tail, scored as one text (`charrnn score --whole`)."""
    scored = score(loaded, tail, device="cpu")
    return -scored.logprob / scored.chars


def previous_checkpoint(args: argparse.Namespace, folder: Path) -> Checkpoint | None:
    if args.previous:
        return load_checkpoint(args.previous)
    if not args.previous_rev:
        return None
    blob = subprocess.run(
        ["git", "show", f"{args.previous_rev}:checkpoints/shakespeare.pt"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout  # fmt: skip
    path = folder / "previous.pt"
    path.write_bytes(blob)
    return load_checkpoint(path)


def _shown(path: Path) -> str:
    """A path as the card shows it: relative to the repository where it lies inside."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def _nats(value: float) -> str:
    return f"{value:.4f} nats ({value / math.log(2):.4f} bits)"


def _minutes(info: dict[str, Any]) -> str:
    return f"{info['elapsed_s'] / 60:.0f} minutes"


def _averaged(train: Any) -> str:
    """How the weights were kept: their moving average (--ema) is what was evaluated and kept."""
    if not train.ema_decay:
        return ""
    return f"; the weights kept are their moving average (`--ema {train.ema_decay}`)"


def facts(loaded: Checkpoint, path: Path, corpus: Path, hardware: str, loss: float) -> str:
    info, model, train = loaded.info, loaded.model_config, loaded.train_config
    best = info["best_val_loss"]
    return f"""| | |
| --- | --- |
| corpus | `{_shown(corpus)}`, {info["corpus_chars"]:,} characters, sha256 `{info["corpus_sha256"]}` |
| split | the last {train.val_fraction:.0%} of the corpus (the end of the works, The Winter's Tale) validates |
| model | {model.describe()} |
| parameters | {loaded.model.num_parameters():,} |
| vocabulary | {len(loaded.vocab)} characters |
| training | {info["step"]:,} steps of {train.batch_size} x {train.seq_len} characters ({train.windows} windows), {_minutes(info)} on {info["device"]} ({info["precision"]}), {hardware}{_averaged(train)} |
| held-out loss | **{_nats(loss)} per character**: `charrnn score --whole` on the held-out tail |
| best val loss in training | {_nats(best)} per character at step {info["step"]:,} (64 streams, each starting cold) |
| file | {path.stat().st_size / 1e6:.1f} MB: weights stored in float16 (converted to float32 on load), no optimizer state |
"""


def recipe(loaded: Checkpoint, corpus: Path, tail_start: int, card_command: str) -> str:
    minutes = _minutes(loaded.info)
    return f"""## Recipe
```bash
bash scripts/train_default_model.sh     # trains, exports best.pt in float16, rewrites this card
```
The script runs these `charrnn train` commands (seed {loaded.train_config.seed}), exports `best.pt`
with `scripts/export_model.py` and writes this card. Extra options are passed to `charrnn train`
(`--device cuda` on a GPU); a run that dies is continued with
`charrnn train --resume runs/shakespeare-default`, never restarted.
```bash
{recipe_commands()}
```
This model took {minutes} on this machine, pauses included. This card was written by
```bash
{card_command}
```
The held-out tail is the corpus from character {tail_start:,} on:
```bash
python -c "import sys; t = open('{_shown(corpus)}', encoding='utf-8').read(); sys.stdout.write(t[{tail_start}:])" > heldout.txt
charrnn score --whole heldout.txt
```
"""


def samples(models: list[tuple[str, Checkpoint]]) -> str:
    parts = ["## Unedited samples\n"]
    for temperature, seed, prime in SAMPLES:
        # In $'...' the shell turns \n into a newline, as the prime needs.
        escaped = prime.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        shown_prime = f" --prime $'{escaped}'" if prime else ""
        command = f"charrnn sample --seed {seed} -n {SAMPLE_CHARS} --temperature {temperature}"
        for name, loaded in models:
            text = sample_text(
                loaded, length=SAMPLE_CHARS, temperature=temperature, seed=seed, prime=prime,
                device="cpu",
            )  # fmt: skip
            label = "" if len(models) == 1 else f" ({name})"
            parts.append(f"`{command}{shown_prime}`{label}:\n\n```\n{prime}{text.rstrip()}\n```\n")
    return "\n".join(parts)


def comparison(
    this: Checkpoint, previous: Checkpoint, losses: dict[str, float], finetune: dict[str, Any]
) -> str:
    rows = [
        ("model", previous.model_config.describe(), this.model_config.describe()),
        ("parameters", f"{previous.model.num_parameters():,}", f"{this.model.num_parameters():,}"),
        ("held-out loss (`score --whole`)", _nats(losses["previous"]), _nats(losses["this"])),
        ("best val loss in training", _nats(previous.info["best_val_loss"]), _nats(this.info["best_val_loss"])),
        ("training", f"{previous.info['step']:,} steps, {_minutes(previous.info)}", f"{this.info['step']:,} steps, {_minutes(this.info)}"),
    ]  # fmt: skip
    if finetune:
        rows.append(("fine-tuned on the licences (`bench_finetune.py`), best val loss", *(
            _finetune_cell(finetune.get(name)) for name in ("previous", "this")
        )))  # fmt: skip
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"""## Against the previous shipped model
Both scored here, on the same held-out tail; samples below with the same seeds and primes.

| | previous | this model |
| --- | --- | --- |
{table}
"""


def _finetune_cell(results: dict[str, Any] | None) -> str:
    """The known-characters variant's fine-tuned figures per budget, median (min-max)."""
    if not results:
        return "-"
    summary = results["variants"]["known"]["summary"]
    cells = []
    for key, group in sorted(summary.items(), key=lambda item: float(item[0].split("@")[1])):
        start, seconds = key.split("@")
        if start != "fine-tuned":
            continue
        loss = group["best_val_loss"]
        spread = (
            f" ({loss['low']:.4f}-{loss['high']:.4f}), {loss['count']} runs"
            if loss["count"] > 1
            else ""
        )
        cells.append(f"{seconds} s: {loss['median']:.4f}{spread}")
    return "; ".join(cells) or "-"


def curve_table(path: Path | None) -> str:
    """The run's evaluations, one row each, from the metrics.jsonl training appends to."""
    if path is None:
        return ""
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = "\n".join(
        f"| {e['step']:,} | {e['elapsed_s'] / 60:.0f} | {e['lr']:.2g} | {e['train_loss']:.4f} "
        f"| {e['val_loss']:.4f} |"
        for e in events
        if e.get("val_loss") is not None
    )
    return f"""## The training curve
Val loss as training measured it (64 streams, each starting cold); the learning rate at that step,
the training loss of that step's batch.

| step | minutes | lr | train loss | val loss |
| --- | --- | --- | --- | --- |
{rows}
"""


def sizes_table(paths: list[Path]) -> str:
    """The sweeps' variants (benchmarks/sweep_train_quality.py results), best first."""
    if not paths:
        return ""
    rows, sources = [], []
    for path in paths:
        results = json.loads(path.read_text(encoding="utf-8"))
        options, device = results["options"], results["device"]
        sources.append(
            f"`{_shown(path)}`: {Path(options['corpus']).name}, {options['max_time']:.0f} s each,"
            f" {device['name']}"
        )
        for variant in results["variants"]:
            model = variant["model"]
            shape = f"{model['cell'].upper()} {model['num_layers']}x{model['hidden_size']}"
            rows.append((
                variant["best_val_loss"]["median"],
                f"| {variant['name']} | {shape} | {variant['parameters']:,} | "
                f"{variant['precision']} | {variant['steps']['median']:,} | "
                f"{variant['best_val_loss']['median']:.4f} |",
            ))  # fmt: skip
    body = "\n".join(row for _, row in sorted(rows))
    listed = "\n".join(f"- {source}" for source in sources)
    return f"""## Sizes tried
Short sweeps, one run per variant, best val loss first. A short budget favours small models,
so these chose the cell and the learning rate rather than the size:
{listed}

| variant | model | parameters | precision | steps | best val loss |
| --- | --- | --- | --- | --- | --- |
{body}
"""


def recipe_commands(script: Path = RECIPE) -> str:
    """The `charrnn train` commands of the recipe script, continuation lines included."""
    commands, current = [], None
    for line in script.read_text(encoding="utf-8").splitlines():
        if current is None and line.startswith("charrnn train"):
            current = [line]
        elif current is not None:
            current.append(line)
        if current is not None and not line.endswith("\\"):
            commands.append("\n".join(current))
            current = None
    return "\n".join(commands)


def card(args: argparse.Namespace, argv: list[str]) -> str:
    path = args.checkpoint
    this = load_checkpoint(path)
    tail, tail_start = heldout_tail(args.corpus, this.train_config)
    losses = {"this": heldout_loss(this, tail)}
    models = [("this model", this)]
    finetune = {}
    for item in args.finetune:
        name, _, results = item.partition("=")
        finetune[name] = json.loads(Path(results).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        previous = previous_checkpoint(args, Path(folder))
    compared = ""
    if previous is not None:
        losses["previous"] = heldout_loss(previous, tail)
        models.insert(0, ("previous", previous))
        compared = comparison(this, previous, losses, finetune)
    print(f"held-out loss: {losses}", file=sys.stderr)
    return "\n".join(
        part
        for part in (
            "# The shipped model: `shakespeare.pt`\n\n"
            "`charrnn sample` and `charrnn score` use this model when no `--checkpoint` is given.\n",
            facts(this, path, args.corpus, args.hardware, losses["this"]),
            compared,
            sizes_table(args.sizes),
            curve_table(args.curve),
            recipe(this, args.corpus, tail_start, _card_command(argv)),
            samples(models),
        )
        if part
    )


def _card_command(argv: list[str]) -> str:
    """The command that wrote the card, one option a line, repository paths shown relative."""

    def shown(arg: str) -> str:
        name, sep, value = arg.rpartition("=")  # --finetune NAME=PATH
        if Path(value).exists() and (not sep or not name.startswith("-")):
            return shlex.quote(name + sep + _shown(Path(value)))
        return shlex.quote(arg)

    lines = ["python scripts/model_card.py"]
    for arg in argv:
        if arg.startswith("--") or len(lines) == 1:
            lines.append(shown(arg))
        else:
            lines[-1] += " " + shown(arg)
    return " \\\n  ".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    target = args.checkpoint.parent / "README.md"
    target.write_text(card(args, argv), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
