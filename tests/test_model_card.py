"""scripts/model_card.py writes the shipped model's card from checkpoints: the held-out loss
re-scored from the file, samples drawn with the seeds it shows, and the comparison with the
previous model and its fine-tuning figures."""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import replace
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


def _sweep_results() -> dict:
    def variant(name: str, cell: str, loss: float, parameters: int, steps: int) -> dict:
        model = {"cell": cell, "num_layers": 2, "hidden_size": 32}
        return {"name": name, "model": model, "parameters": parameters, "precision": "bf16",
                "steps": {"median": steps}, "best_val_loss": {"median": loss}}  # fmt: skip

    return {
        "options": {"corpus": "/data/tiny.txt", "max_time": 180.0},
        "device": {"name": "a 2-core box"},
        "variants": [variant("lstm 2x32", "lstm", 1.4794, 12000, 800),
                     variant("gru 2x32", "gru", 1.4625, 9000, 700)],
    }  # fmt: skip


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
        # This model was trained with --ema, the previous one without.
        config = replace(loaded.train_config, ema_decay=0.999 if path == this else 0.0)
        save_checkpoint(path, loaded.model, loaded.vocab, config, loaded.info)
    results = tmp_path / "finetune.json"
    results.write_text(json.dumps(_finetune_results(1.2345)), encoding="utf-8")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(event) + "\n" for event in (
        {"step": 400, "elapsed_s": 960.0, "train_loss": 1.5, "val_loss": 1.5495, "lr": 4e-3},
        {"step": 401, "elapsed_s": 962.0, "train_loss": 1.4, "lr": 4e-3},  # no evaluation
        {"step": 800, "elapsed_s": 1680.0, "train_loss": 1.41, "val_loss": 1.4827, "lr": 3.6e-3},
    )), encoding="utf-8")  # fmt: skip
    sizes = tmp_path / "sweep.json"
    sizes.write_text(json.dumps(_sweep_results()), encoding="utf-8")

    assert model_card.main([
        str(this), "--previous", str(previous), "--corpus", str(corpus),
        "--finetune", f"previous={results}", "--curve", str(metrics), "--sizes", str(sizes),
        "--hardware", "a test box",
    ]) == 0  # fmt: skip

    card = (folder / "README.md").read_text(encoding="utf-8")
    tail = TINY_TEXT[int(len(TINY_TEXT) * 0.9) :]
    for path in (this, previous):
        scored = score(load_checkpoint(path), tail, device="cpu")
        nats = -scored.logprob / scored.chars
        assert f"{nats:.4f} nats ({nats / math.log(2):.4f} bits)" in card
    assert "GRU, 2 layers x 16 hidden" in card and "LSTM, 2 layers x 16 hidden" in card
    assert card.count("the weights kept are their moving average (`--ema 0.999`)") == 1
    assert "60 s: 1.2345 (1.2245-1.2545), 3 runs; 180 s: 1.2345" in card  # fine-tuned rows only
    # The curve: each evaluation, none for a step without one.
    assert "| 400 | 16 | 0.004 | 1.5000 | 1.5495 |\n| 800 | 28 | 0.0036 | 1.4100 | 1.4827 |" in card
    assert "| 401 |" not in card
    # The sizes, best first, with the corpus, budget and machine they were tried on.
    assert "tiny.txt, 180 s each, a 2-core box" in card
    assert card.index("| gru 2x32 | GRU 2x32 | 9,000 | bf16 | 700 | 1.4625 |") < card.index(
        "| lstm 2x32 | LSTM 2x32 | 12,000 | bf16 | 800 | 1.4794 |"
    )
    # The recipe: the script's charrnn train commands, and the command that wrote this card.
    for command in model_card.recipe_commands().split("\ncharrnn"):
        assert command.strip() in card
    assert "python scripts/model_card.py " in card and f"--sizes {sizes}" in card
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


def test_the_recipe_is_the_scripts_three_stages(model_card):
    """The card quotes the recipe script's commands whole: stage one continues its own run if it
    died (--resume auto), stages two and three resume it with longer schedules."""
    first, second, third = model_card.recipe_commands().split("\ncharrnn train")
    assert first.startswith("charrnn train corpora/shakespeare.txt")
    assert "--resume auto" in first and "--seed 1337" in first and first.endswith('"$@"')
    assert "--force" not in first  # a rerun never throws a run away
    assert second.startswith(" --resume runs/shakespeare-default --max-steps")
    assert third.startswith(" --resume runs/shakespeare-default --max-steps") and "--ema" in third
    assert third.endswith('"$@"')
