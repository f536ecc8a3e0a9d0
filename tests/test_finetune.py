"""Weight transfer and vocabulary growth for fine-tuning (charrnn.finetune), and its planning."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import make_checkpoint, write

from charrnn.checkpoint import load_checkpoint, save_checkpoint
from charrnn.config import FINETUNE_DEFAULTS, TrainConfig
from charrnn.errors import CheckpointError, ConfigError
from charrnn.finetune import (
    NEW_CHAR_BIAS_GAP,
    grown_vocab,
    initial_weights,
    load_source,
    transfer_weights,
)
from charrnn.model import CharRNN
from charrnn.plan import plan_run
from charrnn.vocab import Vocab

OLD_TEXT = "the cat sat on the mat. a hat, a bat!\n" * 20
# 'B', 'é', 'Ω' and '0' sort before, between and after the old characters: ids move.
NEW_TEXT = "the Bat sat on 0 mats; é Ω.\n" * 20


def source_checkpoint(tmp_path: Path, cell: str = "lstm") -> Path:
    return make_checkpoint(tmp_path / f"source-{cell}.pt", cell=cell, text=OLD_TEXT, seed=3)


def grown_model(source: Path, text: str = NEW_TEXT) -> tuple[CharRNN, Vocab]:
    loaded = load_source(source)
    initial = initial_weights(loaded, Vocab.from_text(text))
    model = CharRNN(replace(loaded.checkpoint.model_config, vocab_size=len(initial.vocab)))
    model.load_state_dict(initial.weights)
    return model.eval(), initial.vocab


def test_the_vocabulary_keeps_every_old_character_and_adds_the_new_ones_sorted():
    old, new = Vocab.from_text(OLD_TEXT), Vocab.from_text(NEW_TEXT)
    vocab = grown_vocab(old, new)

    assert set(vocab.chars) == set(OLD_TEXT) | set(NEW_TEXT)
    assert vocab.chars == sorted(vocab.chars)
    assert "c" in vocab and "c" not in new  # known to the source, absent from the new text


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_shared_characters_keep_their_rows_and_the_core_is_copied(tmp_path, cell):
    source = load_checkpoint(source_checkpoint(tmp_path, cell))
    old = source.vocab
    vocab = grown_vocab(old, Vocab.from_text(NEW_TEXT))
    before = source.model.state_dict()

    after = transfer_weights(before, old, vocab)

    for name in before:
        if name.startswith("core."):
            assert torch.equal(after[name], before[name]), name
    for char in old.chars:
        new_id, old_id = vocab.index[char], old.index[char]
        for name in ("embedding.weight", "head.weight", "head.bias"):
            assert torch.equal(after[name][new_id], before[name][old_id]), (name, char)
    for char in ("B", "é", "Ω", "0"):
        new_id = vocab.index[char]
        assert torch.allclose(after["embedding.weight"][new_id], before["embedding.weight"].mean(0))
        assert not after["head.weight"][new_id].any()
        assert after["head.bias"][new_id] == before["head.bias"].min() - NEW_CHAR_BIAS_GAP
    assert after["embedding.weight"].data_ptr() != before["embedding.weight"].data_ptr()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_old_characters_keep_their_log_probabilities_after_growth(tmp_path, cell):
    path = source_checkpoint(tmp_path, cell)
    source = load_checkpoint(path)
    model, vocab = grown_model(path)
    text = OLD_TEXT[:200]

    with torch.no_grad():
        old_logp = F.log_softmax(source.model(source.vocab.encode_tensor(text)[None])[0], -1)
        new_logp = F.log_softmax(model(vocab.encode_tensor(text)[None])[0], -1)

    old_ids = torch.tensor([vocab.index[c] for c in source.vocab.chars])
    assert (new_logp[..., old_ids] - old_logp).abs().max() < 1e-6
    new_ids = torch.tensor([vocab.index[c] for c in vocab.chars if c not in source.vocab])
    assert new_logp[..., new_ids].exp().max() < 1e-8


def test_the_lineage_names_the_source_its_corpus_and_its_step(tmp_path):
    path = tmp_path / "trained.pt"
    source = load_checkpoint(source_checkpoint(tmp_path))
    info = {"step": 42, "corpus": ["old.txt"], "corpus_sha256": "ab" * 32}
    save_checkpoint(path, source.model, source.vocab, None, info)

    initial = initial_weights(load_source(path), Vocab.from_text(NEW_TEXT))

    assert initial.lineage == {"source": str(path), "corpus_sha256": "ab" * 32, "step": 42}
    assert initial.new_chars == sorted(set(NEW_TEXT) - set(OLD_TEXT))


def test_a_shipped_model_is_found_by_its_short_name():
    source = load_source("shakespeare")
    assert source.name == "shakespeare"
    assert source.checkpoint.model_config.shape == "GRU 2x512"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("nosuch", "no shipped model is called 'nosuch' (shipped models: shakespeare)"),
        ("runs/nope", "--init-from runs/nope: no such checkpoint file or run directory"),
        ("missing.pt", "--init-from missing.pt: no such checkpoint file or run directory"),
    ],
)
def test_an_unknown_source_is_one_clear_error(tmp_path, monkeypatch, given, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        CheckpointError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        load_source(given)


# --- planning ------------------------------------------------------------------------------------


def plan(tmp_path: Path, source: Path | str, **train_options):
    corpus = write(tmp_path / "new.txt", NEW_TEXT)
    options = {"device": "cpu", "seq_len": 8, "batch_size": 2, **train_options}
    return plan_run([corpus], {}, options, out=tmp_path / "run", init_from=source)


def test_a_fine_tuning_run_takes_the_source_shape_and_the_fine_tuning_defaults(tmp_path):
    source = source_checkpoint(tmp_path, "gru")
    planned = plan(tmp_path, source)

    shape = load_checkpoint(source).model_config
    assert planned.model_config.shape == shape.shape == "GRU 2x16"
    assert planned.model_config.dropout == shape.dropout
    assert planned.model_config.vocab_size == len(set(OLD_TEXT) | set(NEW_TEXT))
    assert planned.train_config.lr == 5e-3  # the CPU default: no lower for fine-tuning
    assert planned.train_config.warmup_steps == FINETUNE_DEFAULTS["warmup_steps"]
    assert planned.init_from is not None and planned.resume is None
    assert any(note.startswith(f"fine-tuning {source} (GRU 2x16") for note in planned.notes)


def test_options_the_user_sets_win_over_the_fine_tuning_defaults(tmp_path):
    planned = plan(tmp_path, source_checkpoint(tmp_path), lr=0.02, warmup_steps=3, eval_every=7)
    assert (planned.train_config.lr, planned.train_config.warmup_steps) == (0.02, 3)
    assert planned.train_config.eval_every == 7
    assert "fine-tuning defaults" not in " ".join(planned.notes)


def test_a_small_text_is_evaluated_once_per_pass(tmp_path):
    """A small text overfits within a few passes: the run evaluates each pass over its training
    text, so the best point is caught; a large text keeps the usual cadence."""
    source = source_checkpoint(tmp_path)
    planned = plan(tmp_path, source)  # NEW_TEXT in windows of 2 x 8 characters
    per_pass = int(len(NEW_TEXT) * 0.9) // (2 * 8)
    assert 1 <= per_pass < 250
    assert planned.train_config.eval_every == per_pass
    assert f"--eval-every {per_pass}" in " ".join(planned.notes)

    big = plan(tmp_path, source, batch_size=1, seq_len=1, val_fraction=0.001)
    assert big.train_config.eval_every == TrainConfig().eval_every  # more than 250 steps a pass
    assert "--eval-every" not in " ".join(big.notes)


def test_without_init_from_the_usual_defaults_apply(tmp_path):
    corpus = write(tmp_path / "new.txt", NEW_TEXT)
    planned = plan_run([corpus], {}, {"device": "cpu"}, out=tmp_path / "run")
    assert planned.train_config.warmup_steps != FINETUNE_DEFAULTS["warmup_steps"]
    assert planned.init_from is None


def test_init_from_and_resume_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--init-from starts a new run .* give one"):
        plan_run([tmp_path / "x.txt"], {}, {}, resume=tmp_path / "last.pt", init_from="shakespeare")
