"""Sizes that cannot fit are refused in one line before anything is allocated."""

from __future__ import annotations

import json
import time

import pytest
from conftest import cli, make_checkpoint

from charrnn import memory, sampling
from charrnn.config import ModelConfig
from charrnn.model import CharRNN

TINY = ["--model", "gru", "--layers", "1", "--hidden", "8", "--embedding", "4", "--seq-len", "8",
        "--batch-size", "2", "--sample-chars", "0", "--device", "cpu", "--threads", "1"]  # fmt: skip


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 3])
def test_the_parameter_count_from_the_config_is_the_models(cell, layers):
    config = ModelConfig(
        vocab_size=37, cell=cell, num_layers=layers, hidden_size=24, embedding_size=5
    )
    assert memory.parameter_count(config) == CharRNN(config).num_parameters()


def test_the_training_estimate_counts_weights_gradients_and_both_adam_moments():
    config = ModelConfig(vocab_size=65, hidden_size=256, num_layers=2)
    weights = memory.parameter_count(config) * 4
    assert memory.training_bytes(config, 1, 1) >= 4 * weights
    # Activations grow with the batch and the window.
    assert memory.training_bytes(config, 64, 128) > memory.training_bytes(config, 64, 64)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--hidden", "40000"), ("--embedding", "1000000000")],
)
def test_a_model_too_big_for_the_machine_is_refused_at_once(tmp_path, tiny_corpus, option, value):
    started = time.perf_counter()
    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, option, value)

    assert time.perf_counter() - started < 20  # refused, not built
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: this model (") and " needs about " in line
    assert " free; try a smaller --hidden" in line
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_batch_too_big_for_the_machine_is_refused(tmp_path, tiny_corpus):
    result = cli(
        "train", tiny_corpus, "--out", tmp_path / "run", *TINY,
        "--batch-size", "100000000", "--windows", "random",
    )  # fmt: skip

    assert result.exit_code == 1
    assert "100,000,000 windows of 8 characters needs about" in result.stderr


def test_a_stack_too_deep_to_train_is_a_usage_error(tmp_path, tiny_corpus):
    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, "--layers", "100000")

    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --layers must be between 1 and 64, got 100000"


def test_many_samples_are_made_batch_after_batch_each_as_its_own_seed_makes_it(
    tmp_path, monkeypatch
):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    monkeypatch.setattr(sampling, "SAMPLE_BATCH", 4)  # 10 samples: batches of 4, 4 and 2

    result = cli("sample", "-c", checkpoint, "--num-samples", "10", "-n", "12", "--seed", "5",
                 "--json", "--device", "cpu")  # fmt: skip

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["seed"] for record in records] == list(range(5, 15))
    for record in records:
        alone = sampling.sample_text(checkpoint, length=12, seed=record["seed"], device="cpu")
        assert record["text"] == alone


def test_a_million_samples_start_at_once_in_one_bounded_batch(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    generation = sampling.generate(checkpoint, num_samples=10**6, length=5, seed=1, device="cpu")

    first = next(iter(generation))

    assert first.sample == 0
    assert generation._batch is not None and generation._batch.count == sampling.SAMPLE_BATCH
    assert (
        generation._stepper is not None and generation._stepper.batch_size == sampling.SAMPLE_BATCH
    )


def test_a_batch_of_samples_that_cannot_fit_is_refused(tmp_path, monkeypatch):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt", hidden_size=512, num_layers=3)
    monkeypatch.setattr(memory, "free_bytes", lambda device: 2**20)  # a machine with 1 MB free

    result = cli("sample", "-c", checkpoint, "--num-samples", "5000", "--device", "cpu")

    assert result.exit_code == 1
    assert "error: 1,024 samples at once needs about" in result.stderr
    assert "ask for fewer --num-samples" in result.stderr
    assert result.stdout == ""


def test_no_estimate_is_made_where_free_memory_cannot_be_told(monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda device: None)
    memory.check_fits("anything", 10**30, memory.torch.device("cpu"), "never said")
