"""--ema: a moving average of the weights is what evaluations score and best.pt keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import cli

from charrnn.averaging import WeightAverage, weight_average
from charrnn.checkpoint import load_checkpoint
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import read_corpus
from charrnn.errors import ConfigError
from charrnn.model import CharRNN
from charrnn.token_cache import text_corpus_tokens
from charrnn.train_data import load_training_data
from charrnn.training import train
from charrnn.validation import evaluate


def tiny_model(cell: str = "gru", dropout: float = 0.1) -> ModelConfig:
    return ModelConfig(
        vocab_size=1, cell=cell, num_layers=2, hidden_size=16, embedding_size=8, dropout=dropout
    )


def fast(**options) -> TrainConfig:
    defaults = dict(
        seq_len=16, batch_size=4, max_steps=12, eval_every=4, warmup_steps=2, lr=1e-2,
        sample_chars=0, device="cpu", ema_decay=0.9,
    )  # fmt: skip
    return TrainConfig(**{**defaults, **options})


def stop_after(steps: int):
    polls = {"count": 0}

    def should_stop() -> bool:
        polls["count"] += 1
        return polls["count"] > steps

    return should_stop


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def filled(model: CharRNN, value: float) -> CharRNN:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(value)
    return model


def test_the_average_moves_towards_the_weights_by_its_warming_decay():
    live = filled(CharRNN(ModelConfig(vocab_size=5, hidden_size=4, embedding_size=2)), 0.0)
    average = WeightAverage(live, decay=0.3)
    expected = 0.0
    for update, value in enumerate([10.0, 20.0, 30.0, 40.0]):
        decay = min(0.3, (1 + update) / (10 + update))  # 0.1, 0.18, 0.25, then capped at 0.3
        expected = decay * expected + (1 - decay) * value
        average.update(filled(live, value))
        for parameter in average.model.parameters():
            assert torch.allclose(parameter, torch.full_like(parameter, expected))
    assert average.updates == 4
    assert average.step_decay() == 0.3  # warmed up: (1 + 4) / (10 + 4) is past the cap
    # The live weights are the optimizer's own: averaging never writes them.
    assert all(torch.all(p == 40.0) for p in live.parameters())


def test_no_average_without_ema():
    live = CharRNN(ModelConfig(vocab_size=5, hidden_size=4, embedding_size=2))
    assert weight_average(live, 0.0) is None
    assert weight_average(live, 0.99) is not None


def test_best_pt_holds_the_average_not_the_live_weights(tmp_path, tiny_corpus):
    corpus = read_corpus([tiny_corpus])
    result = train(corpus, tiny_model(), fast(), tmp_path / "run")
    best, last = (
        load_checkpoint(tmp_path / "run" / "best.pt"),
        load_checkpoint(tmp_path / "run" / "last.pt"),
    )
    average = last.training_state["average"]
    assert average["updates"] == 12
    live = last.model.state_dict()
    if best.info["step"] == 12:  # the last evaluation was the best: best.pt is the average now
        for name, value in best.model.state_dict().items():
            assert torch.equal(value, average["weights"][name])
            assert not torch.equal(value, live[name]), f"{name} is the live weight, not the average"
    assert result.best_val_loss == best.info["val_loss"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_resumed_run_continues_its_average_exactly(tmp_path, tiny_corpus, cell):
    corpus = read_corpus([tiny_corpus])
    config, model_config = fast(max_steps=12), tiny_model(cell)
    train(corpus, model_config, config, tmp_path / "whole")
    stopped = train(corpus, model_config, config, tmp_path / "split", should_stop=stop_after(6))
    assert stopped.step == 6
    resume = load_checkpoint(tmp_path / "split" / "last.pt")
    train(corpus, None, config, tmp_path / "split", resume=resume)

    for name in ("best.pt", "last.pt"):
        whole = load_checkpoint(tmp_path / "whole" / name)
        split = load_checkpoint(tmp_path / "split" / name)
        for key, value in whole.model.state_dict().items():
            assert torch.equal(value, split.model.state_dict()[key]), f"{name} {key}"
    whole_average = load_checkpoint(tmp_path / "whole" / "last.pt").training_state["average"]
    split_average = load_checkpoint(tmp_path / "split" / "last.pt").training_state["average"]
    assert whole_average["updates"] == split_average["updates"] == 12
    for key, value in whole_average["weights"].items():
        assert torch.equal(value, split_average["weights"][key])
    assert [m["val_loss"] for m in metrics(tmp_path / "whole")] == [
        m["val_loss"] for m in metrics(tmp_path / "split")
    ]


def test_ema_turned_on_at_resume_starts_from_the_runs_weights(tmp_path, tiny_corpus):
    corpus = read_corpus([tiny_corpus])
    out = tmp_path / "run"
    train(corpus, tiny_model(), fast(ema_decay=0.0, max_steps=8), out)
    before = load_checkpoint(out / "last.pt")
    assert "average" not in before.training_state
    config = fast(ema_decay=0.0, max_steps=8)
    resumed_config = TrainConfig(**{**config.__dict__, "ema_decay": 0.9, "max_steps": 9})
    train(corpus, None, resumed_config, out, resume=before)

    after = load_checkpoint(out / "last.pt")
    average = after.training_state["average"]
    assert average["updates"] == 1  # one step since --ema came on
    # One update from the step-8 weights: 1/10 of the way from them to the step-9 weights.
    for name, value in after.model.state_dict().items():
        start = before.model.state_dict()[name]
        assert torch.allclose(average["weights"][name], 0.1 * start + 0.9 * value, atol=1e-6)
    # And the evaluation at step 9 scored the average: best.pt is it if it was the best.
    best = load_checkpoint(out / "best.pt")
    if best.info["step"] == 9:
        for name, value in best.model.state_dict().items():
            assert torch.equal(value, average["weights"][name])


def test_evaluations_score_the_average_not_the_live_weights(tmp_path, tiny_corpus):
    # Score best.pt's and last.pt's weights on the run's own validation streams: best.pt's (the
    # average) gives the logged figure exactly; the live weights give another.
    corpus = read_corpus([tiny_corpus])
    out, config = tmp_path / "run", fast(max_steps=8, eval_every=8)
    train(corpus, tiny_model(dropout=0.0), config, out)
    best, last = load_checkpoint(out / "best.pt"), load_checkpoint(out / "last.pt")
    data = load_training_data(
        text_corpus_tokens(corpus), best.vocab, config, torch.device("cpu"), None
    )
    streams = data.val_inputs, data.val_targets
    chunk = max(config.seq_len, 256)
    (logged,) = [m["val_loss"] for m in metrics(out)]
    assert evaluate(best.model, *streams, chunk, False) == pytest.approx(logged, abs=1e-9)
    assert evaluate(last.model, *streams, chunk, False) != pytest.approx(logged, abs=1e-6)


def test_ema_must_be_below_one():
    with pytest.raises(ConfigError, match=r"--ema must be in \[0, 1\)"):
        TrainConfig(ema_decay=1.0)


def test_the_cli_trains_with_ema_and_resume_may_turn_it_off(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    tiny = ("--model", "gru", "--hidden", "16", "--layers", "1", "--embedding", "8")
    steps = ("--seq-len", "16", "--batch-size", "4", "--eval-every", "5", "--sample-chars", "0")
    result = cli("train", tiny_corpus, "--out", out, *tiny, *steps, "--max-steps", "5",
                    "--ema", "0.99")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "validation chars; val loss and best.pt: the weights' average (--ema 0.99)" in (
        result.stderr
    )
    saved = load_checkpoint(out / "last.pt")
    assert saved.train_config.ema_decay == 0.99
    assert saved.training_state["average"]["updates"] == 5

    result = cli("train", "--resume", out, "--max-steps", "10", "--ema", "0")
    assert result.exit_code == 0, result.output
    assert "resuming at step 5\n" in result.stderr and "--ema" not in result.stderr
    resumed = load_checkpoint(out / "last.pt")
    assert resumed.train_config.ema_decay == 0.0
    assert "average" not in resumed.training_state
