"""scripts/model_card.py writes the shipped model's card from checkpoints: the held-out loss
re-scored from the file, samples drawn with the seeds it shows, and the comparison with the
previous model and its fine-tuning figures."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from conftest import TINY_TEXT, make_checkpoint

from charrnn import load_checkpoint, sample_text, score
from charrnn.checkpoint import save_checkpoint

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "model_card.py"


@pytest.fixture
def model_card(monkeypatch):
    spec = importlib.util.spec_from_file_location("model_card", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The tiny models know only the tiny text's characters: a prime from it.
    monkeypatch.setattr(module, "SAMPLES", ((0.8, 1, ""), (0.5, 2, "To be")))
    return module


def _finetune_results(median: float) -> dict:
    loss = {"median": median, "low": median - 0.01, "high": median + 0.02, "count": 3}
    return {"variants": {"known": {"summary": {
        "fine-tuned@180": {"best_val_loss": loss},
        "fine-tuned@60": {"best_val_loss": loss},
        "scratch@60": {"best_val_loss": {**loss, "median": 9.0}},
    }}}}  # fmt: skip


def test_the_card_is_made_from_the_checkpoints(tmp_path, model_card):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    folder = tmp_path / "shipped"
    folder.mkdir()
    this = make_checkpoint(folder / "shakespeare.pt", cell="gru", seed=1)
    previous = make_checkpoint(tmp_path / "old.pt", cell="lstm", seed=2)
    for path in (this, previous):  # as training records them
        loaded = load_checkpoint(path)
        loaded.info.update(best_val_loss=2.5, elapsed_s=600.0, corpus_chars=len(TINY_TEXT),
                           corpus_sha256="ab" * 32, device="cpu", precision="fp32")  # fmt: skip
        save_checkpoint(path, loaded.model, loaded.vocab, loaded.train_config, loaded.info)
    results = tmp_path / "finetune.json"
    results.write_text(json.dumps(_finetune_results(1.2345)), encoding="utf-8")
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps([{"model": "GRU 2x16", "steps": 1200, "minutes": 3.0,
                                  "val_loss": 2.3456, "note": "the winner"}]), encoding="utf-8")  # fmt: skip

    assert model_card.main([
        str(this), "--previous", str(previous), "--corpus", str(corpus),
        "--finetune", f"previous={results}", "--sweep", str(sweep), "--hardware", "a test box",
    ]) == 0  # fmt: skip

    card = (folder / "README.md").read_text(encoding="utf-8")
    tail = TINY_TEXT[int(len(TINY_TEXT) * 0.9) :]
    for path in (this, previous):
        scored = score(load_checkpoint(path), tail, device="cpu")
        nats = -scored.logprob / scored.chars
        assert f"{nats:.4f} nats ({nats / math.log(2):.4f} bits)" in card
    assert "GRU, 2 layers x 16 hidden" in card and "LSTM, 2 layers x 16 hidden" in card
    assert "60 s: 1.2345 (1.2245-1.2545), 3 runs; 180 s: 1.2345" in card  # fine-tuned rows only
    assert "| GRU 2x16 | 1,200 | 3 | 2.3456 | the winner |" in card
    assert "a test box" in card
    # Each sample is what `charrnn sample` draws with the seed and prime the card shows.
    for temperature, seed, prime in model_card.SAMPLES:
        for path in (this, previous):
            text = sample_text(load_checkpoint(path), length=model_card.SAMPLE_CHARS,
                               temperature=temperature, seed=seed, prime=prime, device="cpu")  # fmt: skip
            assert f"```\n{prime}{text.rstrip()}\n```" in card
        assert (
            f"charrnn sample --seed {seed} -n {model_card.SAMPLE_CHARS} --temperature {temperature}"
            in card
        )


def test_without_a_previous_model_there_is_no_comparison(tmp_path, model_card):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    this = make_checkpoint(tmp_path / "shakespeare.pt")
    loaded = load_checkpoint(this)
    loaded.info.update(best_val_loss=2.5, elapsed_s=60.0, corpus_chars=1, corpus_sha256="0",
                       device="cpu", precision="fp32")  # fmt: skip
    save_checkpoint(this, loaded.model, loaded.vocab, loaded.train_config, loaded.info)
    model_card.main([str(this), "--corpus", str(corpus)])
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Against the previous shipped model" not in card and "(previous)" not in card
    assert card.count("```\n") >= 2 * len(model_card.SAMPLES)
