"""Scoring throughput: chars/s of charrnn.scoring for LSTMs of a few sizes, against the matmul peak.

Scoring knows the whole text in advance, so it runs the fused RNN over whole sequences: lines in
padded batches (`lines`, the CLI's default), or the text as one stream carried in chunks
(`whole`, exact; `--streams N` cuts it into N segments scored side by side, approximately). A
forward pass costs about 2 FLOPs per parameter per character, so model FLOP/s = 2 x parameters x
chars/s, shown as a share of a large matmul's FLOP/s (fp32, and bf16 where it runs) measured
first on the same device.

    python benchmarks/bench_score.py                          # CPU: 2x128, 2x512, 3x512 (~2 min)
    python benchmarks/bench_score.py --threads 1              # a busy machine: one thread
    python benchmarks/bench_score.py --device cuda --precisions bf16
    python benchmarks/bench_score.py --checkpoint checkpoints/shakespeare.pt --sizes none
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import common
import torch

from charrnn import CharRNN, ModelConfig, Vocab, load_checkpoint
from charrnn.device import cpu_has_bf16, resolve_device, use_bf16
from charrnn.errors import CharRNNError
from charrnn.scoring import ScoreConfig, score, score_lines

ALPHABET = "\n !$&',-.3:;?" + string.ascii_uppercase + string.ascii_lowercase  # tiny Shakespeare's
DEFAULT_SIZES = "2x128,2x512,3x512"
MODES = ("lines", "whole")
FORWARD_FLOPS_PER_PARAMETER = 2
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps [default: auto]")
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated LAYERSxHIDDEN LSTMs with random weights, or 'none' "
        "[default: %(default)s]",
    )
    parser.add_argument("--checkpoint", type=Path, help="also time this trained model")
    parser.add_argument(
        "--text",
        type=Path,
        help="UTF-8 text to score [default: random words over tiny Shakespeare's characters, "
        "lines of 0-55 characters like the corpus's]",
    )
    parser.add_argument(
        "--chars",
        type=int,
        default=300_000,
        help="at most this many characters of the text [default: %(default)s]",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="aim each timed run at about this long by scoring a prefix of the text (whole "
        "lines) [default: 3 on a CPU; on a GPU the whole text]",
    )
    parser.add_argument(
        "--modes", default="lines,whole", help="lines and/or whole [default: %(default)s]"
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=1,
        help="whole mode: segments side by side (approximate when > 1) [default: 1]",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="lines per batch [default: charrnn's for the device]",
    )
    parser.add_argument(
        "--precisions",
        default=None,
        help="fp32 and/or bf16 (CUDA, or a CPU with bf16 matrix units) "
        "[default: both where bf16 runs, fp32 elsewhere]",
    )
    parser.add_argument(
        "--loss-text",
        type=Path,
        help="with --checkpoint: score this text whole in each precision and print the loss "
        "difference from fp32 in nats per character (e.g. the held-out tail of the corpus)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row [default: 3]")
    parser.add_argument("--threads", type=int, help="torch CPU threads [default: torch's]")
    parser.add_argument(
        "--out", type=Path, help="JSON file [default: benchmarks/results/score-<device>.json]"
    )
    return parser.parse_args()


def random_text(chars: int, seed: int = 0) -> str:
    """Lines of random words over ALPHABET; throughput does not depend on what they say."""
    generator = random.Random(seed)
    letters = string.ascii_letters
    punctuation = ALPHABET[1:13]
    lines, total = [], 0
    while total < chars:
        length = generator.randint(0, 55)
        words, size = [], 0
        while size < length:
            word = "".join(generator.choice(letters) for _ in range(generator.randint(1, 8)))
            if generator.random() < 0.15:
                word += generator.choice(punctuation)
            words.append(word)
            size += len(words[-1]) + 1
        line = " ".join(words)[:length] + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)[:chars]


def whole_lines(text: str, chars: int) -> str:
    """The longest prefix of at most `chars` characters that ends a line (or `chars` if none)."""
    if chars >= len(text):
        return text
    end = text.rfind("\n", 0, chars)
    return text[: end + 1] if end > 0 else text[:chars]


def time_scoring(
    model: CharRNN, vocab: Vocab, text: str, mode: str, config: ScoreConfig, device: torch.device
) -> float:
    """Seconds to score `text`, synchronised with the device."""
    common.synchronize(device)
    started = time.perf_counter()
    if mode == "lines":
        score_lines(model, text, config, vocab=vocab)
    else:
        score(model, text, config, vocab=vocab)
    common.synchronize(device)
    return time.perf_counter() - started


def measure(
    model: CharRNN,
    vocab: Vocab,
    text: str,
    mode: str,
    config: ScoreConfig,
    device: torch.device,
    seconds: float | None,
    runs: int,
) -> dict[str, Any]:
    # An untimed warm-up (kernels, allocator), which also estimates the rate for the prefix.
    probe = whole_lines(text, 4_000)
    rate = len(probe) / time_scoring(model, vocab, probe, mode, config, device)
    timed = text if seconds is None else whole_lines(text, max(4_000, int(rate * seconds)))
    runs_s = [time_scoring(model, vocab, timed, mode, config, device) for _ in range(runs)]
    speed = common.spread([len(timed) / s for s in runs_s])
    return {"chars": len(timed), "seconds": runs_s, "chars_per_second": speed}


def main() -> None:
    args = parse_args()
    if args.runs < 1 or args.chars < 1 or args.streams < 1:
        common.fail("--runs, --chars and --streams must be at least 1", 2)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        common.fail(f"--modes takes lines and/or whole, got {args.modes!r}", 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        bf16_runs = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())
        precisions = [p.strip() for p in (args.precisions or "fp32,bf16").split(",")]
        if args.precisions is None and not bf16_runs:
            precisions = ["fp32"]
        if not precisions or any(p not in DTYPES for p in precisions):
            common.fail(f"--precisions takes fp32 and/or bf16, got {args.precisions!r}", 2)
        configs = {
            p: ScoreConfig(batch_size=args.batch_size, precision=p, streams=args.streams)
            for p in precisions
        }
        for precision in precisions:
            use_bf16(device, precision)  # refuses bf16 where it cannot run
    except CharRNNError as problem:
        common.fail(str(problem), problem.exit_code)
    seconds = args.seconds
    if seconds is None and device.type != "cuda":
        seconds = 3.0

    text = _read(args.text, args.chars) if args.text else random_text(args.chars)
    info = common.describe_device(device)
    threads = torch.get_num_threads()
    common.log(f"device: {info['name']}, {threads} threads; measuring the matmul peaks")
    peaks = {p: common.matmul_flops(device, DTYPES[p]) for p in DTYPES if p == "fp32" or bf16_runs}
    models = _models(args, text, device)

    rows, results = [], []
    for name, model, model_vocab in models:
        parameters = model.num_parameters()
        for mode in modes:
            for precision, config in configs.items():
                common.log(f"{name}, {mode}, {precision}...")
                found = measure(model, model_vocab, text, mode, config, device, seconds, args.runs)
                speed: common.Spread = found["chars_per_second"]
                flops = FORWARD_FLOPS_PER_PARAMETER * parameters * speed.median
                batch = config.batch_size_on(device) if mode == "lines" else config.streams
                shares = {p: flops / peak.median for p, peak in peaks.items()}
                results.append(
                    {
                        "model": name,
                        "parameters": parameters,
                        "mode": mode,
                        "precision": precision,
                        "batch": batch,
                        **found,
                        "model_flops_per_second": flops,
                        "share_of_matmul": shares[precision],
                        "share_of_peak": shares,
                    }
                )
                shown = mode if mode == "lines" or args.streams == 1 else f"whole/{args.streams}"
                rows.append(
                    [
                        name,
                        f"{parameters:,}",
                        shown,
                        precision,
                        batch,
                        f"{found['chars']:,}",
                        common.format_spread(speed, lambda v: f"{v:,.0f}"),
                        f"{flops / 1e9:.1f}",
                        *(f"{share:.0%}" for share in shares.values()),
                    ]
                )
    headers = ["model", "parameters", "mode", "precision", "batch", "chars timed",
               "chars/s (median, min-max)", "model GFLOP/s"] + [f"of {p} peak" for p in peaks]  # fmt: skip
    common.print_table(headers, rows)
    for precision, peak in peaks.items():
        common.log(
            f"matmul peak ({precision}, {threads} threads): "
            f"{peak.median / 1e9:.1f} GFLOP/s ({peak.low / 1e9:.1f}-{peak.high / 1e9:.1f})"
        )

    document = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "threads": threads,
        "text_chars": len(text),
        "matmul_flops_per_second": peaks,
        "rows": results,
    }
    if args.loss_text and args.checkpoint:
        document["loss_by_precision"] = _loss_by_precision(args, models[-1], configs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        full = {"benchmark": "score", "device": info, **document}
        written = json.dumps(full, indent=2, default=common._jsonable) + "\n"
        args.out.write_text(written, encoding="utf-8")
        path = args.out
    else:
        path = common.write_results("score", info, document)
    common.log(f"wrote {path}")


def _read(path: Path, chars: int | None) -> str:
    try:
        return path.read_text(encoding="utf-8")[:chars]
    except (OSError, UnicodeDecodeError) as problem:
        common.fail(f"cannot read {path}: {problem}")


def _models(
    args: argparse.Namespace, text: str, device: torch.device
) -> list[tuple[str, CharRNN, Vocab]]:
    """LSTMs of --sizes with random weights over the text's characters, and --checkpoint."""
    models: list[tuple[str, CharRNN, Vocab]] = []
    vocab = Vocab(ALPHABET + "".join(sorted(set(text) - set(ALPHABET))))
    for layers, hidden in common.parse_sizes(args.sizes):
        torch.manual_seed(0)
        model_config = ModelConfig(
            vocab_size=len(vocab), num_layers=layers, hidden_size=hidden, dropout=0.0
        )
        models.append((f"LSTM {layers}x{hidden}", CharRNN(model_config).to(device).eval(), vocab))
    if args.checkpoint:
        try:
            loaded = load_checkpoint(args.checkpoint, device)
        except CharRNNError as problem:
            common.fail(str(problem), problem.exit_code)
        shape = loaded.model_config
        name = f"{args.checkpoint.name} ({shape.cell} {shape.num_layers}x{shape.hidden_size})"
        models.append((name, loaded.model, loaded.vocab))
    return models


def _loss_by_precision(
    args: argparse.Namespace,
    model: tuple[str, CharRNN, Vocab],
    configs: dict[str, ScoreConfig],
) -> dict[str, Any]:
    """The checkpoint's loss on --loss-text (scored whole, exactly) in each precision."""
    name, network, vocab = model
    text = _read(args.loss_text, None)
    losses = {}
    for precision, config in configs.items():
        common.log(f"{name}: loss on {args.loss_text.name} in {precision}...")
        scored = score(network, text, replace(config, streams=1), vocab=vocab)
        losses[precision] = -scored.logprob / scored.chars
    reference = losses.get("fp32")
    common.print_table(
        ["model", "text", "precision", "nats/char", "difference from fp32"],
        [
            [name, f"{args.loss_text.name} ({len(text):,} chars)", p, f"{loss:.5f}",
             "-" if reference is None else f"{loss - reference:+.5f}"]
            for p, loss in losses.items()
        ],
    )  # fmt: skip
    return {"text": str(args.loss_text), "chars": len(text), "nats_per_char": losses}


if __name__ == "__main__":
    main()
