"""Training on a corpus read through the token cache's memory map: the same run as on the text in
memory, exact resume, validation capped at VAL_MAX_CHARS and said so."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_TEXT, cli, write

from charrnn import batches, token_cache
from charrnn.checkpoint import load_checkpoint
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import read_corpus
from charrnn.errors import DataError
from charrnn.events import TrainStart
from charrnn.plan import plan_run
from charrnn.token_cache import TokenCorpus, open_corpus
from charrnn.training import train

TINY = ["--layers", "1", "--hidden", "16", "--embedding", "8", "--batch-size", "4"]
TINY += ["--seq-len", "16", "--sample-chars", "0", "--device", "cpu", "--threads", "1"]


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


@pytest.mark.parametrize("windows", ["stateful", "random"])
def test_a_run_on_the_memory_map_is_bit_for_bit_the_run_on_the_text_in_memory(
    tmp_path, tiny_corpus, windows
):
    model = ModelConfig(vocab_size=1, cell="gru", num_layers=1, hidden_size=16, dropout=0.2)
    config = TrainConfig(
        seq_len=16, batch_size=4, windows=windows, max_steps=12, eval_every=6, sample_chars=0,
        device="cpu",
    )  # fmt: skip
    mapped = open_corpus([tiny_corpus], directory=tmp_path / "cache", min_bytes=0)
    assert mapped.cache_path is not None

    train(read_corpus([tiny_corpus]), model, config, tmp_path / "memory")
    train(mapped, model, config, tmp_path / "mapped")

    for name in ("best.pt", "last.pt"):
        memory, cached = weights(tmp_path / "memory" / name), weights(tmp_path / "mapped" / name)
        assert all(torch.equal(memory[key], cached[key]) for key in memory)


def test_the_cli_trains_and_resumes_exactly_on_a_cached_corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(token_cache, "CACHE_MIN_BYTES", 0)  # cache even a tiny text
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "cache"))
    corpus = write(tmp_path / "tiny.txt", TINY_TEXT)

    whole = cli("train", corpus, "--out", tmp_path / "whole", "--max-steps", "8", *TINY)
    half = cli("train", corpus, "--out", tmp_path / "split", "--max-steps", "4", *TINY)
    rest = cli("train", corpus, "--resume", tmp_path / "split", "--max-steps", "8", *TINY)

    for result in (whole, half, rest):
        assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cache").glob("*.tokens"))) == 1  # encoded once, then mapped
    straight, resumed = (
        weights(tmp_path / "whole" / "last.pt"),
        weights(tmp_path / "split" / "last.pt"),
    )
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_validation_reads_at_most_val_max_chars_and_says_so(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setattr(batches, "VAL_MAX_CHARS", 100)
    options = {"device": "cpu", "max_steps": 2, "eval_every": 2, "sample_chars": 0}
    options.update(seq_len=16, batch_size=4, val_fraction=0.2)
    held_out = len(TINY_TEXT) - int(len(TINY_TEXT) * 0.8)

    planned = plan_run(
        [tiny_corpus], {"hidden_size": 16, "num_layers": 1}, options, out=tmp_path / "run"
    )
    events: list = []
    train(
        planned.corpus, planned.model_config, planned.train_config, planned.out_dir,
        on_event=events.append,
    )  # fmt: skip

    assert (
        f"validation reads the first 100 of the {held_out:,} held-out characters"
        in planned.notes[-1]
    )
    start = next(event for event in events if isinstance(event, TrainStart))
    assert start.val_chars == 100


def test_an_id_outside_the_vocabulary_is_a_damaged_token_file_not_a_crash(tmp_path):
    # What a token file damaged outside its sampled blocks would give training.
    ids = np.array([0, 1, 2] * 200 + [7] + [0, 1, 2] * 200, dtype=np.uint8)
    damaged = TokenCorpus(ids, "abc", ("x.txt",), "0" * 64)
    model = ModelConfig(vocab_size=1, cell="gru", num_layers=1, hidden_size=8)
    config = TrainConfig(seq_len=16, batch_size=4, max_steps=200, sample_chars=0, device="cpu")

    with pytest.raises(DataError, match="its token file is damaged"):
        train(damaged, model, config, tmp_path / "run")
