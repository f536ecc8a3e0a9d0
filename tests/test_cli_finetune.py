"""`charrnn train CORPUS --init-from SOURCE` through the command line: fine-tuning runs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import cli, make_checkpoint, write

from charrnn.checkpoint import load_checkpoint, save_checkpoint
from charrnn.data import read_corpus
from charrnn.finetune import initial_weights, load_source
from charrnn.model import CharRNN
from charrnn.plan import plan_run
from charrnn.training import train
from charrnn.vocab import Vocab

training = importlib.import_module("charrnn.training")

OLD_TEXT = "the cat sat on the mat. a hat, a bat!\n" * 30
# 'é' and 'Z' are new; 'Z' sorts before every old letter, so the old ids move.
NEW_TEXT = "thé cat sat on the Zat mat. a hat, é bat!\n" * 30
FAST = ["--seq-len", "16", "--batch-size", "4", "--sample-chars", "0", "--device", "cpu", "-q"]


@pytest.fixture
def source(tmp_path) -> Path:
    return make_checkpoint(tmp_path / "source.pt", cell="gru", text=OLD_TEXT, seed=1)


@pytest.fixture
def new_corpus(tmp_path) -> Path:
    return write(tmp_path / "new.txt", NEW_TEXT)


def fine_tune(corpus: Path, source: Path | str, out: Path, *options: str):
    return cli("train", corpus, "--init-from", source, "--out", out, *FAST, *options)


def test_a_fine_tuning_run_starts_from_the_source_weights(
    tmp_path, source, new_corpus, monkeypatch
):
    started = {}
    loop = training._train_loop

    def spy(run, *args):
        started.update({k: v.clone() for k, v in run.model.state_dict().items()})
        return loop(run, *args)

    monkeypatch.setattr(training, "_train_loop", spy)
    result = fine_tune(new_corpus, source, tmp_path / "run", "--max-steps", "2")

    assert result.exit_code == 0, result.output
    expected = initial_weights(load_source(source), Vocab.from_text(NEW_TEXT)).weights
    assert started.keys() == expected.keys()
    assert all(torch.equal(started[name], expected[name]) for name in expected)
    tuned = load_checkpoint(tmp_path / "run" / "last.pt")
    assert tuned.vocab.chars == sorted(set(OLD_TEXT) | set(NEW_TEXT))
    assert tuned.model_config.shape == "GRU 2x16"
    for name in ("best.pt", "last.pt", "metrics.jsonl"):
        assert (tmp_path / "run" / name).exists()


def test_the_note_says_what_the_run_starts_from_and_adds(tmp_path, source, new_corpus):
    result = cli(
        "train", new_corpus, "--init-from", source, "--out", tmp_path / "run",
        *FAST[:-1], "--max-steps", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"fine-tuning {source} (GRU 2x16, vocabulary 15, step 0); added 2 characters it never "
        "saw: 'Z', 'é'; fine-tuning defaults: --warmup 20"
    ) in result.stderr.replace("\n", " ")


def mean_logprob(model: torch.nn.Module, vocab: Vocab, text: str, char: str) -> float:
    """The mean log-probability the model gives `char` where it comes next in `text`."""
    ids = vocab.encode_tensor(text)
    with torch.no_grad():
        logits, _ = model.eval()(ids[None, :-1])  # (1, T, V)
    logp = F.log_softmax(logits[0], -1)
    targets = ids[1:]
    hits = targets == vocab.index[char]
    return float(logp[hits, targets[hits]].mean())


@pytest.mark.slow
def test_new_characters_are_learnt(tmp_path, source, new_corpus):
    # A new character starts NEW_CHAR_BIAS_GAP nats down, and Adam lifts its logit by about
    # --lr x (1 + |h|) per step: a high rate for this tiny model (|h| <= 16).
    result = fine_tune(
        new_corpus, source, tmp_path / "run", "--max-steps", "100", "--eval-every", "100",
        "--lr", "0.03", "--warmup", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    tuned = load_checkpoint(tmp_path / "run" / "last.pt")
    start = initial_weights(load_source(source), Vocab.from_text(NEW_TEXT))
    untrained = CharRNN(tuned.model_config)
    untrained.load_state_dict(start.weights)
    for char in ("é", "Z"):
        assert mean_logprob(untrained, start.vocab, NEW_TEXT, char) < -15
        assert mean_logprob(tuned.model, tuned.vocab, NEW_TEXT, char) > -3, char


def test_info_shows_where_a_fine_tuned_model_came_from(tmp_path, new_corpus):
    parent = tmp_path / "parent"
    trained = cli("train", write(tmp_path / "old.txt", OLD_TEXT), "--out", parent, *FAST,
                  "--model", "gru", "--layers", "1", "--hidden", "8", "--max-steps", "3")  # fmt: skip
    assert trained.exit_code == 0, trained.output

    result = fine_tune(new_corpus, parent, tmp_path / "run", "--max-steps", "2")
    assert result.exit_code == 0, result.output

    parent_info = load_checkpoint(parent / "best.pt").info
    lineage = load_checkpoint(tmp_path / "run" / "best.pt").info["init_from"]
    assert lineage == {
        "source": str(parent / "best.pt"),
        "corpus_sha256": parent_info["corpus_sha256"],
        "step": 3,
    }
    shown = cli("info", tmp_path / "run")
    assert shown.exit_code == 0, shown.output
    row = f"fine-tuned from   {parent / 'best.pt'} (step 3, corpus sha256 "
    assert row + parent_info["corpus_sha256"][:16] + ")\n" in shown.stdout


def test_the_shipped_model_fine_tunes_by_its_short_name(tmp_path, new_corpus):
    result = cli(
        "train", new_corpus, "--init-from", "shakespeare", "--out", tmp_path / "run",
        "--seq-len", "8", "--batch-size", "2", "--max-steps", "2", "--sample-chars", "0",
        "--device", "cpu", "--model", "gru", "--hidden", "512",  # its shape: accepted
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    tuned = load_checkpoint(tmp_path / "run" / "best.pt")
    shipped = load_source("shakespeare").checkpoint
    assert tuned.info["init_from"]["source"] == "shakespeare"
    assert tuned.info["init_from"]["step"] == shipped.info["step"]
    assert set(shipped.vocab.chars) < set(tuned.vocab.chars)
    assert "é" in tuned.vocab
    assert tuned.train_config.warmup_steps == 20


@pytest.mark.slow
def test_resuming_a_fine_tuning_run_is_exact(tmp_path, source, new_corpus):
    options = ["--dropout", "0.2", "--max-steps", "8", "--eval-every", "3"]
    whole = fine_tune(new_corpus, source, tmp_path / "whole", *options)
    assert whole.exit_code == 0, whole.output

    # The first half through the library, stopped as Ctrl-C stops it; then --resume alone.
    planned = plan_run(
        [new_corpus],
        {"dropout": 0.2},
        {"seq_len": 16, "batch_size": 4, "sample_chars": 0, "device": "cpu",
         "max_steps": 8, "eval_every": 3},
        out=tmp_path / "split",
        init_from=source,
    )  # fmt: skip
    polls = iter(range(100))
    train(
        planned.corpus, planned.model_config, planned.train_config, planned.out_dir,
        init_from=planned.init_from, should_stop=lambda: next(polls) >= 5,
    )  # fmt: skip
    assert load_checkpoint(tmp_path / "split" / "last.pt").info["step"] == 5
    resumed = cli("train", "--resume", tmp_path / "split", "-q")
    assert resumed.exit_code == 0, resumed.output

    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "whole" / name)
        b = load_checkpoint(tmp_path / "split" / name)
        assert a.info["step"] == b.info["step"]
        assert a.info["init_from"] == b.info["init_from"]
        first, second = a.model.state_dict(), b.model.state_dict()
        assert all(torch.equal(first[k], second[k]) for k in first), name


# --- refused ---------------------------------------------------------------------------------


class Unpicklable:
    """torch.load(weights_only=True) refuses to rebuild an instance of a class."""


def bad_source(kind: str, tmp_path: Path) -> str:
    path = tmp_path / f"{kind}.pt"
    if kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "unsafe":
        torch.save({"format": "charrnn", "model": Unpicklable()}, path)
    elif kind == "text":
        path.write_text("hello", encoding="utf-8")
    elif kind == "name":
        return "nosuch"
    return str(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such checkpoint file or run directory (shipped models by name: shakespeare)"),
        ("name", "no shipped model is called 'nosuch' (shipped models: shakespeare); or give a "
                 "checkpoint file or run directory"),
        ("text", "is not a readable checkpoint"),
        ("foreign", "is not a charrnn checkpoint"),
        ("unsafe", "needs arbitrary unpickling, which charrnn refuses"),
    ],
)  # fmt: skip
def test_an_unusable_source_is_one_line_and_exit_1(tmp_path, new_corpus, kind, message):
    result = fine_tune(new_corpus, bad_source(kind, tmp_path), tmp_path / "run")

    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "change"),
    [
        (["--hidden", "32"], "--hidden 16 -> 32"),
        (["--model", "lstm", "--layers", "1"], "--model 'gru' -> 'lstm', --layers 2 -> 1"),
        (["--embedding", "4"], "--embedding 8 -> 4"),
    ],
)
@pytest.mark.slow
def test_a_shape_change_is_a_usage_error_naming_old_and_new(
    tmp_path, source, new_corpus, options, change
):
    result = fine_tune(new_corpus, source, tmp_path / "run", *options)

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: the model's shape comes from --init-from {source} (GRU 2x16, embedding 8) and "
        f"cannot change: {change} (leave the shape options out to fine-tune it)"
    ]


def test_init_from_with_resume_is_refused(tmp_path, source, new_corpus):
    result = cli("train", new_corpus, "--init-from", source, "--resume", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --init-from starts a new run from another model's weights and --resume continues "
        "a run: give one (a fine-tuning run is continued with --resume alone)"
    ]


def test_init_from_needs_a_corpus(source):
    result = cli("train", "--init-from", source)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: --init-from needs a CORPUS to fine-tune on"]


def test_the_help_names_the_shipped_models_and_the_fine_tuning_defaults():
    result = cli("train", "--help")
    text = " ".join(result.stdout.split())
    assert "a shipped model by name (shakespeare)" in text
    assert (
        "Defaults where not given: --warmup 20, SOURCE's --dropout, the rest as for a new run."
    ) in text


def test_a_damaged_lineage_is_refused_in_one_line(tmp_path, source):
    loaded = load_checkpoint(source)
    path = save_checkpoint(
        tmp_path / "damaged.pt", loaded.model, loaded.vocab, None, {"init_from": {"step": 1}}
    )
    result = cli("info", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {path} is a damaged charrnn checkpoint (no info.init_from.source)"
    ]


def test_the_corpus_the_source_was_trained_on_is_not_needed(tmp_path, source, new_corpus):
    # Only the source's weights and vocabulary travel: its corpus path may be long gone.
    assert not Path(load_checkpoint(source).info["corpus"][0]).exists()
    result = fine_tune(new_corpus, source, tmp_path / "run", "--max-steps", "1")
    assert result.exit_code == 0, result.output
    assert (
        read_corpus([new_corpus]).sha256
        == load_checkpoint(tmp_path / "run" / "last.pt").info["corpus_sha256"]
    )


@pytest.mark.gpu
def test_fine_tuning_on_cuda_with_bf16_loads_on_cpu(tmp_path, source, new_corpus):
    options = [o for o in FAST if o not in ("--device", "cpu")]
    result = cli(
        "train", new_corpus, "--init-from", source, "--out", tmp_path / "run", *options,
        "--max-steps", "10", "--eval-every", "5",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    tuned = load_checkpoint(tmp_path / "run" / "best.pt", device="cpu")
    assert tuned.info["precision"] == "bf16"
    assert tuned.info["init_from"]["source"] == str(source)
    assert "é" in tuned.vocab
