"""Sizes that cannot fit are refused in one line before anything is allocated."""

from __future__ import annotations

import time

import pytest
from conftest import cli, make_checkpoint

from charrnn import memory
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


def test_too_many_samples_at_once_are_refused(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt", hidden_size=512, num_layers=3)

    result = cli("sample", "-c", checkpoint, "--num-samples", "100000000", "--device", "cpu")

    assert result.exit_code == 1
    assert "error: 100,000,000 samples at once needs about" in result.stderr
    assert "ask for fewer --num-samples" in result.stderr
    assert result.stdout == ""


def test_no_estimate_is_made_where_free_memory_cannot_be_told(monkeypatch):
    monkeypatch.setattr(memory, "free_bytes", lambda device: None)
    memory.check_fits("anything", 10**30, memory.torch.device("cpu"), "never said")
