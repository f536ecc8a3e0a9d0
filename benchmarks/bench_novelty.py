"""How fast `charrnn sample --novelty` answers on a corpus: the one-off index build, reading the
cached index, and measuring samples (the longest copied span and the 20-character windows).

The corpus is the shipped Shakespeare text (5 MB) unless --corpus says; the samples are made by
the shipped model (seeds 0.., --length characters each). The cache goes to a temporary
directory, so your own is untouched. Medians (min-max) of --runs runs.

    python benchmarks/bench_novelty.py
    python benchmarks/bench_novelty.py --corpus big.txt --length 5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common
import torch

from charrnn.checkpoint import load_model
from charrnn.config import SampleConfig
from charrnn.data import read_corpus
from charrnn.novelty import NoveltyIndex, suffix_array
from charrnn.resources import default_corpus_path
from charrnn.sampling import Generation


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="[default: the shipped corpus]")
    parser.add_argument("--length", type=int, default=500, help="sample length [500]")
    parser.add_argument("--samples", type=int, default=5, help="samples measured [5]")
    parser.add_argument("--runs", type=int, default=3, help="runs of each timing [3]")
    parser.add_argument("--device", default="cpu", help="[cpu]: the index is numpy's anyway")
    return parser.parse_args()


def seconds(fn, runs: int) -> list[float]:
    taken = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        taken.append(time.perf_counter() - start)
    return taken


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    corpus_path = args.corpus or default_corpus_path()
    text = read_corpus([corpus_path]).text
    common.log(f"corpus {corpus_path}: {len(text):,} characters")
    loaded = load_model(None, "cpu")
    samples = [
        Generation(loaded.model, loaded.vocab, SampleConfig(length=args.length, seed=seed)).run()[0]
        for seed in range(args.samples)
    ]
    build = seconds(lambda: suffix_array(text), args.runs)
    with tempfile.TemporaryDirectory() as cache:
        NoveltyIndex.for_text(text, Path(cache))  # builds and caches
        cached = seconds(lambda: NoveltyIndex.for_text(text, Path(cache)), args.runs)
        index = NoveltyIndex.for_text(text, Path(cache))
        measure = seconds(lambda: [index.measure(s.text) for s in samples], args.runs)
        per_sample = [t / len(samples) for t in measure]
        found = [index.measure(s.text) for s in samples]
    rows = [
        ["index build (once per corpus)", common.format_spread(common.spread(build), "{:.2f} s".format)],
        ["index read from the cache", common.format_spread(common.spread(cached), "{:.3f} s".format)],
        [f"measure one {args.length}-char sample", common.format_spread(common.spread(per_sample), "{:.4f} s".format)],
    ]  # fmt: skip
    common.print_table(["step", "seconds"], rows)
    common.print_table(
        ["seed", "longest span", "windows found"],
        [[s.seed, len(n.longest_span), f"{n.windows_found}/{n.windows}"] for s, n in zip(samples, found, strict=True)],
    )  # fmt: skip
    path = common.write_results(
        "novelty",
        common.describe_device(torch.device("cpu")),
        {
            "corpus": str(corpus_path),
            "corpus_chars": len(text),
            "sample_length": args.length,
            "build_s": common.spread(build),
            "cached_read_s": common.spread(cached),
            "measure_per_sample_s": common.spread(per_sample),
            "samples": [
                {"seed": s.seed, **n.to_dict()} for s, n in zip(samples, found, strict=True)
            ],
        },
    )
    common.log(f"wrote {path}")


if __name__ == "__main__":
    main()
