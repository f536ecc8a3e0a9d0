"""The benchmark scripts stay in step with the library they measure: each one imports, and the
fine-tuning benchmark's own measurement runs (a change to the planned corpus once broke it, and
no test saw it until the hour-long benchmark was started)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
from conftest import TINY_TEXT, make_checkpoint

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py"))


@pytest.fixture
def on_benchmarks_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/bench_x.py` has it


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_benchmark_imports(name, on_benchmarks_path):
    module = importlib.import_module(name)
    if name != "common":
        assert callable(getattr(module, "main", None)), f"{name} has no main()"


def test_the_fine_tuning_benchmark_measures_where_fine_tuning_starts(tmp_path, on_benchmarks_path):
    bench_finetune = importlib.import_module("bench_finetune")
    corpus = tmp_path / "mine.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog.\n" * 200, encoding="utf-8")

    loss = bench_finetune.untrained_loss(corpus, threads=1)

    # The shipped model has read English: far better than guessing among its ~65 characters,
    # yet not a model of this one sentence.
    assert 0.5 < loss < math.log(65)


def test_the_fine_tuning_benchmark_starts_from_any_checkpoint(tmp_path, on_benchmarks_path):
    bench_finetune = importlib.import_module("bench_finetune")
    corpus = tmp_path / "mine.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    source = make_checkpoint(
        tmp_path / "untrained.pt"
    )  # random weights, the tiny text's vocabulary

    loss = bench_finetune.untrained_loss(corpus, threads=1, source=str(source))

    # An untrained model guesses about uniformly among its characters; the shipped model
    # (the default source) does far better on English.
    vocab_size = len(set(TINY_TEXT))
    assert abs(loss - math.log(vocab_size)) < 0.3
    assert bench_finetune.untrained_loss(corpus, threads=1) < loss - 0.5
