"""The training loop through the Python API: learning, checkpoints, exact resume, stopping."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import load_checkpoint
from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import Corpus, read_corpus
from charrnn.errors import CheckpointError, ConfigError, TrainingDiverged
from charrnn.events import EvalReport, StepReport, TrainStart
from charrnn.training import learning_rate, train

# The module, for monkeypatching (charrnn.train is the function).
train_module = importlib.import_module("charrnn.training")
run_progress = importlib.import_module("charrnn.run_progress")

METRIC_KEYS = {"step", "elapsed_s", "train_loss", "val_loss", "chars_per_s", "lr"}


@pytest.fixture
def corpus(tiny_corpus: Path) -> Corpus:
    return read_corpus([tiny_corpus])


def tiny_model(cell: str = "lstm", dropout: float = 0.0) -> ModelConfig:
    return ModelConfig(
        vocab_size=1, cell=cell, num_layers=2, hidden_size=16, embedding_size=8, dropout=dropout
    )


def fast(**options) -> TrainConfig:
    """A few-steps CPU training config; `options` override it."""
    defaults = dict(
        seq_len=16,
        batch_size=4,
        max_steps=10,
        eval_every=5,
        warmup_steps=2,
        lr=1e-2,
        sample_chars=0,
        device="cpu",
    )
    return TrainConfig(**{**defaults, **options})


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def stop_after(steps: int):
    """A should_stop callback that asks the loop to stop once `steps` steps have run."""
    polls = {"count": 0}

    def should_stop() -> bool:
        polls["count"] += 1
        return polls["count"] > steps  # polled once before each step

    return should_stop


@pytest.mark.slow
def test_loss_decreases_on_a_repetitive_text(tmp_path):
    corpus = Corpus("the cat sat on the mat.\n" * 60, ("cats.txt",))

    result = train(
        corpus, tiny_model("gru"), fast(max_steps=80, eval_every=20, lr=2e-2), tmp_path / "run"
    )

    val_losses = [m["val_loss"] for m in read_metrics(tmp_path / "run")]
    assert len(val_losses) == 4
    assert val_losses[0] < math.log(14)  # already better than uniform over the 14 characters
    assert val_losses[-1] < 0.5 * val_losses[0]
    assert result.best_val_loss == min(val_losses)


def test_training_writes_best_last_and_metrics(tmp_path, corpus):
    events = []
    out = tmp_path / "run"

    result = train(
        corpus,
        tiny_model("lstm"),
        fast(max_steps=12, eval_every=5, sample_chars=20),
        out,
        on_event=events.append,
    )

    assert result.stop_reason == "max_steps"
    assert result.step == 12
    assert (result.best_path, result.last_path, result.out_dir) == (
        out / "best.pt",
        out / "last.pt",
        out,
    )
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [5, 10, 12]  # every eval_every, and at the end
    for line in metrics:
        assert METRIC_KEYS <= line.keys()
        assert math.isfinite(line["train_loss"]) and math.isfinite(line["val_loss"])
        assert line["chars_per_s"] > 0 and line["lr"] > 0 and line["elapsed_s"] > 0
    assert result.best_val_loss == min(m["val_loss"] for m in metrics)

    best, last = load_checkpoint(out / "best.pt"), load_checkpoint(out / "last.pt")
    assert best.info["val_loss"] == result.best_val_loss
    assert best.training_state is None  # best.pt holds weights only
    assert last.info["step"] == 12 and last.training_state["step"] == 12
    assert last.info["corpus"] == list(corpus.sources)
    assert last.info["corpus_sha256"] == corpus.sha256
    assert last.model_config.vocab_size == len(set(corpus.text))

    start = events[0]
    assert isinstance(start, TrainStart)
    assert (start.device, start.precision, start.max_steps, start.start_step) == (
        "cpu",
        "fp32",
        12,
        0,
    )
    assert start.train_chars + start.val_chars == len(corpus.text)
    assert [e.step for e in events if isinstance(e, StepReport)] == list(range(1, 13))
    evals = [e for e in events if isinstance(e, EvalReport)]
    assert [e.step for e in evals] == [5, 10, 12]
    assert all(len(e.sample) == 20 and set(e.sample) <= set(corpus.text) for e in evals)


@pytest.mark.slow
@pytest.mark.parametrize("windows", ["stateful", "random"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_resume_continues_exactly(tmp_path, corpus, cell, windows):
    # Dropout draws from the global RNG, so equal weights prove the RNG states were restored.
    config = fast(windows=windows, max_steps=14, eval_every=5)
    model_config = tiny_model(cell, dropout=0.2)

    train(corpus, model_config, config, tmp_path / "whole")
    stopped = train(corpus, model_config, config, tmp_path / "split", should_stop=stop_after(7))

    assert stopped.stop_reason == "interrupted"
    assert stopped.step == 7
    assert load_checkpoint(tmp_path / "split" / "last.pt").training_state["step"] == 7
    resumed = train(
        corpus,
        None,
        config,
        tmp_path / "split",
        resume=load_checkpoint(tmp_path / "split" / "last.pt"),
    )

    assert resumed.step == 14
    assert_same_weights(
        weights(tmp_path / "whole" / "last.pt"), weights(tmp_path / "split" / "last.pt")
    )
    assert_same_weights(
        weights(tmp_path / "whole" / "best.pt"), weights(tmp_path / "split" / "best.pt")
    )
    whole, split = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "split")
    assert [m["step"] for m in split] == [m["step"] for m in whole] == [5, 10, 14]
    assert [m["val_loss"] for m in split] == [m["val_loss"] for m in whole]
    assert [m["train_loss"] for m in split] == [m["train_loss"] for m in whole]
    assert resumed.best_val_loss == min(m["val_loss"] for m in whole)


def test_last_pt_is_saved_on_the_clock_between_evaluations(tmp_path, corpus):
    out = tmp_path / "run"
    saved_steps = []

    def look(event) -> None:
        if isinstance(event, StepReport):
            saved_steps.append(load_checkpoint(out / "last.pt").training_state["step"])

    train(
        corpus,
        tiny_model("gru"),
        fast(max_steps=6, eval_every=5, save_every_s=0.0),
        out,
        on_event=look,
    )

    # From the first step on, before the first evaluation (at 5, which saves after its report).
    assert saved_steps[:4] == [1, 2, 3, 4]
    assert [m["step"] for m in read_metrics(out)] == [5, 6]  # saving logs no evaluation


def test_a_run_resumed_from_a_clock_save_continues_exactly(tmp_path, corpus):
    config = fast(max_steps=14, eval_every=5, save_every_s=0.0)
    model_config = tiny_model("lstm", dropout=0.2)
    crashed = tmp_path / "crashed"

    def crash_copy(event) -> None:
        # What a SIGTERM at step 7 leaves behind: the files as they are after that step.
        if isinstance(event, StepReport) and event.step == 7:
            crashed.mkdir()
            for name in ("best.pt", "last.pt", "metrics.jsonl"):
                (crashed / name).write_bytes((tmp_path / "whole" / name).read_bytes())

    train(corpus, model_config, config, tmp_path / "whole", on_event=crash_copy)
    train(corpus, model_config, fast(max_steps=14, eval_every=5), tmp_path / "unsaved")
    resumed = train(corpus, None, config, crashed, resume=load_checkpoint(crashed / "last.pt"))

    assert resumed.step == 14
    whole = weights(tmp_path / "whole" / "last.pt")
    assert_same_weights(whole, weights(tmp_path / "unsaved" / "last.pt"))  # saving changes nothing
    assert_same_weights(whole, weights(crashed / "last.pt"))
    assert_same_weights(weights(tmp_path / "whole" / "best.pt"), weights(crashed / "best.pt"))
    for key in ("step", "val_loss", "train_loss"):
        assert [m[key] for m in read_metrics(crashed)] == [
            m[key] for m in read_metrics(tmp_path / "whole")
        ]


def test_resume_from_an_evaluation_step_drops_nothing_and_repeats_nothing(tmp_path, corpus):
    config = fast(max_steps=12, eval_every=4)
    model_config = tiny_model("lstm", dropout=0.3)
    train(corpus, model_config, config, tmp_path / "whole")
    train(corpus, model_config, config, tmp_path / "split", should_stop=stop_after(8))

    train(
        corpus,
        None,
        config,
        tmp_path / "split",
        resume=load_checkpoint(tmp_path / "split" / "last.pt"),
    )

    assert_same_weights(
        weights(tmp_path / "whole" / "last.pt"), weights(tmp_path / "split" / "last.pt")
    )
    assert [m["step"] for m in read_metrics(tmp_path / "split")] == [4, 8, 12]


class _Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, no handler catches it."""


def test_a_death_right_after_an_evaluation_saves_last_pt_loses_no_metrics_line(
    tmp_path, corpus, monkeypatch
):
    # An evaluation writes a metrics line and last.pt. A kill right after last.pt is written
    # must find the step's metrics line already on disk: resuming from that last.pt keeps the
    # lines up to its step and never writes this one again (a kill-9 chain in CI lost it).
    config, model_config = fast(max_steps=12, eval_every=4), tiny_model("gru")
    train(corpus, model_config, config, tmp_path / "whole")
    save_last = train_module._Run.save_last

    def die_after_saving_at_step_8(run):
        save_last(run)
        if run.step == 8:
            raise _Killed

    monkeypatch.setattr(train_module._Run, "save_last", die_after_saving_at_step_8)
    with pytest.raises(_Killed):
        train(corpus, model_config, config, tmp_path / "split")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "split" / "last.pt").training_state["step"] == 8
    train(corpus, None, config, tmp_path / "split",
          resume=load_checkpoint(tmp_path / "split" / "last.pt"))  # fmt: skip

    assert [(m["step"], m["val_loss"]) for m in read_metrics(tmp_path / "split")] == [
        (m["step"], m["val_loss"]) for m in read_metrics(tmp_path / "whole")
    ]


def test_resume_may_extend_a_finished_run(tmp_path, corpus):
    out = tmp_path / "run"
    train(corpus, tiny_model("gru"), fast(max_steps=6, eval_every=3), out)

    result = train(
        corpus, None, fast(max_steps=9, eval_every=3), out, resume=load_checkpoint(out / "last.pt")
    )

    assert result.step == 9
    assert [m["step"] for m in read_metrics(out)] == [3, 6, 9]


def test_same_seed_gives_the_same_weights_and_another_seed_does_not(tmp_path, corpus):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train(
            corpus,
            tiny_model("rnn", dropout=0.1),
            fast(seed=seed, windows="random", max_steps=6),
            tmp_path / name,
        )

    assert_same_weights(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    a, c = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "c" / "last.pt")
    assert any(not torch.equal(a[name], c[name]) for name in a)


def test_patience_stops_after_evaluations_without_a_new_best(tmp_path, corpus, monkeypatch):
    val_losses = iter([3.0, 2.5, 2.6, 2.7, 2.4, 2.3])
    monkeypatch.setattr(train_module, "evaluate", lambda *args: next(val_losses))

    result = train(
        corpus, tiny_model("gru"), fast(max_steps=50, eval_every=2, patience=2), tmp_path / "run"
    )

    assert result.stop_reason == "patience"
    assert result.step == 8  # best at step 4, then 6 and 8 bring no improvement
    assert result.best_val_loss == 2.5
    assert [m["val_loss"] for m in read_metrics(tmp_path / "run")] == [3.0, 2.5, 2.6, 2.7]
    assert load_checkpoint(tmp_path / "run" / "best.pt").info["step"] == 4
    assert load_checkpoint(tmp_path / "run" / "last.pt").info["step"] == 8


def test_max_time_stops_the_run_and_still_writes_checkpoints(tmp_path, corpus):
    out = tmp_path / "run"

    result = train(
        corpus, tiny_model("lstm"), fast(max_steps=1_000_000, eval_every=1_000, max_time=0.3), out
    )

    assert result.stop_reason == "max_time"
    assert 0 < result.step < 1_000_000
    assert 0.3 <= result.elapsed_s < 10
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [result.step]  # evaluated once more on the way out
    assert load_checkpoint(out / "last.pt").training_state["step"] == result.step


def test_a_huge_learning_rate_is_caught_as_divergence_before_any_checkpoint(tmp_path, corpus):
    # Not only NaN: a finite loss far above guessing (ln V) is divergence too. Such weights
    # must never be saved, let alone as best.pt.
    out = tmp_path / "run"

    with pytest.raises(TrainingDiverged) as raised:
        train(corpus, tiny_model("lstm"), fast(lr=1e30, warmup_steps=0, max_steps=10), out)

    message = str(raised.value)
    assert "--lr" in message and "no checkpoint was written" in message
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()


def test_divergence_after_good_evaluations_keeps_the_last_good_checkpoint(
    tmp_path, corpus, monkeypatch
):
    # Train well for 6 steps (3 evaluations), then blow the learning rate up.
    real_learning_rate = train_module._Run.learning_rate

    def blown_up_after_step_6(run):
        return 1e6 if run.step >= 6 else real_learning_rate(run)

    monkeypatch.setattr(train_module._Run, "learning_rate", blown_up_after_step_6)
    out = tmp_path / "run"

    with pytest.raises(TrainingDiverged) as raised:
        train(corpus, tiny_model("lstm"), fast(max_steps=40, eval_every=2), out)

    message = str(raised.value)
    assert str(out / "last.pt") in message
    diverged_at = int(message.split(" at step ")[1].split(" ")[0].rstrip(";"))
    ceiling = 3 * math.log(len(set(corpus.text)))
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [2, 4, 6]
    assert all(m["val_loss"] < ceiling for m in metrics)
    best, last = load_checkpoint(out / "best.pt"), load_checkpoint(out / "last.pt")
    assert best.info["val_loss"] == min(m["val_loss"] for m in metrics)
    assert last.info["step"] == 6 < diverged_at
    for loaded in (best, last):
        assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_a_non_finite_training_loss_is_caught_before_any_checkpoint(tmp_path, corpus, monkeypatch):
    real_cross_entropy = train_module.F.cross_entropy
    calls = {"count": 0}

    def cross_entropy_turning_nan(*args, **kwargs):
        calls["count"] += 1
        loss = real_cross_entropy(*args, **kwargs)
        return loss * float("nan") if calls["count"] >= 3 else loss

    monkeypatch.setattr(train_module.F, "cross_entropy", cross_entropy_turning_nan)

    with pytest.raises(
        TrainingDiverged,
        match=r"the training loss became nan nats per char at step 3.*no checkpoint was written",
    ):
        train(corpus, tiny_model("gru"), fast(max_steps=20, eval_every=10), tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_existing_run_is_not_overwritten_without_permission(tmp_path, corpus):
    out = tmp_path / "run"
    train(corpus, tiny_model("gru"), fast(max_steps=4, eval_every=2), out)
    before = (out / "last.pt").read_bytes()

    with pytest.raises(ConfigError, match=r"already holds a run.*--resume.*--force"):
        train(corpus, tiny_model("gru"), fast(max_steps=4, eval_every=2), out)
    assert (out / "last.pt").read_bytes() == before

    result = train(
        corpus, tiny_model("gru"), fast(max_steps=3, eval_every=3, seed=9), out, overwrite=True
    )
    assert result.step == 3
    assert [m["step"] for m in read_metrics(out)] == [3]  # the old run's metrics are gone
    assert load_checkpoint(out / "last.pt").info["step"] == 3


def test_overwriting_leaves_nothing_of_the_old_run(tmp_path, corpus):
    out = tmp_path / "run"
    train(corpus, tiny_model("gru"), fast(max_steps=4, eval_every=2), out)

    result = train(
        corpus,
        tiny_model("gru"),
        fast(max_steps=4, eval_every=2),
        out,
        overwrite=True,
        should_stop=stop_after(1),
    )

    assert result.stop_reason == "interrupted"
    assert result.best_path is None  # no evaluation yet in this run: no best.pt from the old one
    assert not (out / "best.pt").exists()
    assert load_checkpoint(out / "last.pt").info["step"] == 1


def test_resuming_with_a_different_corpus_is_refused(tmp_path, corpus):
    out = tmp_path / "run"
    train(corpus, tiny_model("lstm"), fast(max_steps=3, eval_every=3), out)
    other = Corpus(corpus.text.replace("question", "answer!!"), ("other.txt",))

    with pytest.raises(CheckpointError, match="the corpus differs"):
        train(
            other,
            None,
            fast(max_steps=6, eval_every=3),
            out,
            resume=load_checkpoint(out / "last.pt"),
        )


def test_resuming_from_a_weights_only_checkpoint_is_refused(tmp_path, corpus):
    out = tmp_path / "run"
    train(corpus, tiny_model("lstm"), fast(max_steps=3, eval_every=3), out)

    with pytest.raises(CheckpointError, match="no training state"):
        train(corpus, None, fast(max_steps=6), out, resume=load_checkpoint(out / "best.pt"))


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    config = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)

    warmup = [learning_rate(config, step, 0.0) for step in range(10)]
    decay = [learning_rate(config, step, 0.0) for step in range(10, 111)]

    assert warmup == pytest.approx([(step + 1) / 10 for step in range(10)])
    assert decay[0] == pytest.approx(1.0)
    assert decay[50] == pytest.approx(0.55)  # halfway: midway between peak and floor
    assert decay[25] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert decay[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(decay[:-1], decay[1:], strict=True))
    assert learning_rate(config, 500, 0.0) == pytest.approx(0.1)  # never below the floor


def test_learning_rate_fits_the_schedule_to_max_time():
    config = TrainConfig(
        lr=1.0, warmup_steps=0, max_steps=1_000_000, max_time=100.0, min_lr_ratio=0.0
    )

    assert learning_rate(config, 5, 0.0) == pytest.approx(1.0, abs=1e-6)
    assert learning_rate(config, 5, 50.0) == pytest.approx(0.5, abs=1e-6)
    assert learning_rate(config, 5, 100.0) == pytest.approx(0.0, abs=1e-9)


def test_learning_rate_on_resume_continues_from_where_the_schedule_stood():
    config = TrainConfig(
        lr=1.0, warmup_steps=0, max_steps=1_000_000, max_time=100.0, min_lr_ratio=0.0
    )

    assert learning_rate(config, 5, 0.0, start_progress=0.5) == pytest.approx(0.5, abs=1e-6)
    assert learning_rate(config, 5, 50.0, start_progress=0.5) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.75)), abs=1e-6
    )
    assert learning_rate(config, 5, 100.0, start_progress=0.5) == pytest.approx(0.0, abs=1e-9)


class FakeClock:
    """Stands in for `time` in the training modules: one second passes per reported step."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def tick(self, event) -> None:
        if isinstance(event, StepReport):
            self.now += 1.0


def test_max_time_is_the_budget_of_each_invocation_and_the_schedule_carries_on(
    tmp_path, corpus, monkeypatch
):
    clock = FakeClock()
    monkeypatch.setattr(train_module, "time", clock)
    monkeypatch.setattr(run_progress, "time", clock)  # the run's clock
    config = fast(
        max_steps=1_000_000, eval_every=1_000_000, warmup_steps=0, max_time=10.0, min_lr_ratio=0.0
    )
    out = tmp_path / "run"
    first, resumed = [], []

    stopped = train(
        corpus,
        tiny_model("gru"),
        config,
        out,
        on_event=lambda e: (first.append(e), clock.tick(e)),
        should_stop=stop_after(4),
    )
    assert stopped.step == 4
    assert load_checkpoint(out / "last.pt").training_state["schedule_progress"] == 0.4
    result = train(
        corpus,
        None,
        config,
        out,
        resume=load_checkpoint(out / "last.pt"),
        on_event=lambda e: (resumed.append(e), clock.tick(e)),
    )

    # 10 more seconds for this invocation, though the run has already trained for 4.
    assert (result.stop_reason, result.step) == ("max_time", 14)
    steps = [e for e in first + resumed if isinstance(e, StepReport)]
    assert [e.step for e in steps] == list(range(1, 15))
    # The cosine goes on from 0.4 (where the first session stopped) and ends with the budget.
    progress = [s / 10 for s in range(4)] + [0.4 + 0.6 * s / 10 for s in range(10)]
    expected = [0.5 * 1e-2 * (1 + math.cos(math.pi * p)) for p in progress]
    assert [e.lr for e in steps] == pytest.approx(expected, rel=1e-9)
    assert steps[-1].eta_s == pytest.approx(1.0)


def test_the_metrics_lr_follows_the_schedule(tmp_path, corpus):
    config = fast(max_steps=8, eval_every=2, warmup_steps=4, lr=0.01)

    train(corpus, tiny_model("rnn"), config, tmp_path / "run")

    lines = read_metrics(tmp_path / "run")
    assert [line["step"] for line in lines] == [2, 4, 6, 8]
    for line in lines:
        assert line["lr"] == pytest.approx(learning_rate(config, line["step"] - 1, 0.0))


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_training_on_cuda_uses_bf16_and_the_checkpoint_loads_on_cpu(tmp_path, corpus, cell):
    events = []
    config = dataclasses.replace(fast(max_steps=30, eval_every=10), device="cuda")

    result = train(
        corpus, tiny_model(cell, dropout=0.1), config, tmp_path / "run", on_event=events.append
    )

    start = events[0]
    assert (start.device.split(":")[0], start.precision) == ("cuda", "bf16")
    assert result.step == 30 and math.isfinite(result.best_val_loss)
    loaded = load_checkpoint(tmp_path / "run" / "last.pt", device="cpu")
    assert loaded.model.head.weight.device.type == "cpu"
    assert loaded.info["device"].startswith("cuda") and loaded.info["precision"] == "bf16"
    ids = loaded.vocab.encode_tensor(corpus.text[:64])[None]
    with torch.no_grad():
        logits, _ = loaded.model(ids)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # The loaded weights are the trained ones, bit for bit, whatever device they came from.
    trained = load_checkpoint(tmp_path / "run" / "last.pt", device="cuda").model.state_dict()
    assert_same_weights({k: v.cpu() for k, v in trained.items()}, loaded.model.state_dict())
    # A CUDA run resumes on the GPU and carries on from where it stopped.
    resumed = train(
        corpus,
        None,
        dataclasses.replace(config, max_steps=40),
        tmp_path / "run",
        resume=load_checkpoint(tmp_path / "run" / "last.pt"),
    )
    assert resumed.step == 40


def test_the_speed_counts_the_windows_really_made_not_the_batch_asked_for(tmp_path, corpus):
    # A short text holds far fewer streams than --batch-size 100000: the speed must count those.
    events = []
    result = train(
        corpus,
        tiny_model("gru"),
        fast(batch_size=100_000, max_steps=4, eval_every=4),
        tmp_path / "run",
        on_event=events.append,
    )
    start = next(e for e in events if isinstance(e, TrainStart))
    streams = (start.train_chars - 1) // 16
    assert streams < 100_000
    session_s = events[-1].elapsed_s
    most_chars = result.step * streams * 16
    assert result.chars_per_second * session_s <= most_chars * 1.01
    assert result.chars_per_second * session_s >= most_chars * 0.5
