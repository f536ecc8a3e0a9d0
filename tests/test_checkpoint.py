"""Checkpoints: one self-contained file, written atomically, loaded without arbitrary unpickling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from charrnn.averaging import WeightAverage
from charrnn.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_payload,
    resolve_checkpoint_path,
    save_checkpoint,
)
from charrnn.config import ModelConfig, TrainConfig
from charrnn.errors import CheckpointError
from charrnn.model import CharRNN, state_to_cpu
from charrnn.schedule import make_optimizer
from charrnn.vocab import Vocab

TEXT = "héllo — wörld 🙂\nabc"


class NotATensor:
    """A custom class: unpickling it would run arbitrary code paths, so it must be refused."""

    def __init__(self) -> None:
        self.payload = "anything"


def tiny(cell: str = "lstm", seed: int = 0) -> tuple[CharRNN, Vocab]:
    torch.manual_seed(seed)
    vocab = Vocab.from_text(TEXT)
    config = ModelConfig(
        vocab_size=len(vocab),
        cell=cell,
        num_layers=2,
        hidden_size=16,
        embedding_size=8,
        dropout=0.1,
    )
    return CharRNN(config).eval(), vocab


def logits_of(model: CharRNN, vocab: Vocab) -> torch.Tensor:
    with torch.no_grad():
        return model(vocab.encode_tensor(TEXT)[None])[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def training_state(model: CharRNN, step: int = 12, streams: int = 4) -> dict:
    """What training saves in last.pt for resuming, after one optimizer step of `model`."""
    optimizer = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    logits, state = model(torch.zeros(streams, 3, dtype=torch.long))
    logits.sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {
        "optimizer": optimizer.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": None,
        "rng_data": torch.Generator().manual_seed(7).get_state(),
        "carried_state": state_to_cpu(state),
        "step": step,
        "best_val_loss": 2.5,
        "last_val_loss": 2.75,
        "evals_since_best": 1,
        "elapsed_s": 3.5,
        "schedule_progress": 0.25,
        "average": WeightAverage(model, 0.99).state(),
    }


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_round_trip_gives_identical_logits(tmp_path, cell):
    model, vocab = tiny(cell)
    train_config = TrainConfig(seq_len=16, batch_size=4, seed=7)
    saved_state = training_state(model)

    path = save_checkpoint(
        tmp_path / "run" / "last.pt",
        model,
        vocab,
        train_config,
        {"step": 12, "corpus": ["c.txt"]},
        saved_state,
    )
    loaded = load_checkpoint(path)

    assert path == tmp_path / "run" / "last.pt"
    assert torch.equal(logits_of(loaded.model, loaded.vocab), logits_of(model, vocab))
    assert loaded.vocab == vocab
    assert loaded.model_config == model.config
    assert loaded.train_config == train_config
    assert loaded.info == {"step": 12, "corpus": ["c.txt"]}
    assert loaded.training_state["step"] == 12
    assert torch.equal(loaded.training_state["rng_cpu"], saved_state["rng_cpu"])
    assert (
        loaded.training_state["optimizer"]["param_groups"]
        == (saved_state["optimizer"]["param_groups"])
    )
    assert loaded.path == path
    assert not loaded.model.training  # loaded for inference
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_a_run_directory_means_its_best_checkpoint(tmp_path):
    model, vocab = tiny()
    save_checkpoint(tmp_path / "best.pt", model, vocab)

    assert load_checkpoint(tmp_path).path == tmp_path / "best.pt"
    with pytest.raises(CheckpointError, match=r"has no last\.pt"):
        resolve_checkpoint_path(tmp_path, "last.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*missing\.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, vocab = tiny(seed=0)
    path = save_checkpoint(tmp_path / "last.pt", model, vocab, info={"step": 1})
    before = path.read_bytes()
    real_save = torch.save

    def save_then_crash(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")  # partial bytes, as a crash mid-write would
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_crash)
    newer, _ = tiny(seed=1)
    with pytest.raises(
        CheckpointError, match="No space left on device; the previous last.pt is kept"
    ):
        save_checkpoint(path, newer, vocab, info={"step": 2})
    monkeypatch.setattr(torch, "save", real_save)

    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["last.pt"]  # no temporary file left behind
    assert load_checkpoint(path).info == {"step": 1}


def test_a_successful_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    model, vocab = tiny(seed=0)
    save_checkpoint(tmp_path / "last.pt", model, vocab, info={"step": 1})
    newer, _ = tiny(seed=1)

    save_checkpoint(tmp_path / "last.pt", newer, vocab, info={"step": 2})

    assert files_in(tmp_path) == ["last.pt"]
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert loaded.info == {"step": 2}
    assert torch.equal(logits_of(loaded.model, vocab), logits_of(newer, vocab))


def test_half_precision_stores_float16_and_loads_as_float32(tmp_path):
    model, vocab = tiny("gru")

    path = save_checkpoint(tmp_path / "half.pt", model, vocab, half=True)
    full = save_checkpoint(tmp_path / "full.pt", model, vocab)

    stored = torch.load(path, weights_only=True)["model"]
    assert {t.dtype for t in stored.values()} == {torch.float16}
    assert path.stat().st_size < full.stat().st_size * 0.7
    loaded = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    torch.testing.assert_close(
        logits_of(loaded.model, vocab), logits_of(model, vocab), rtol=1e-2, atol=1e-2
    )


def test_a_checkpoint_that_needs_unpickling_a_custom_object_is_refused(tmp_path):
    model, vocab = tiny()
    path = save_checkpoint(tmp_path / "good.pt", model, vocab)
    payload = torch.load(path, weights_only=True)
    payload["info"] = {"trap": NotATensor()}
    torch.save(payload, tmp_path / "evil.pt")

    with pytest.raises(CheckpointError, match="unpickling") as raised:
        load_checkpoint(tmp_path / "evil.pt")
    assert "evil.pt" in str(raised.value)


def test_random_bytes_are_refused_as_unreadable(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096))

    with pytest.raises(CheckpointError, match=r"noise\.pt is not a readable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 100, 0.5, -20])
def test_truncated_and_text_files_are_refused_as_unreadable(tmp_path, keep):
    model, vocab = tiny()
    data = save_checkpoint(tmp_path / "good.pt", model, vocab).read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "broken.pt"
    path.write_bytes(data[:cut] if cut else b"just some text, not a checkpoint\n")

    with pytest.raises(CheckpointError, match=r"broken\.pt is not a readable checkpoint"):
        load_checkpoint(path)


def test_a_foreign_torch_file_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"a": torch.zeros(1)}, path)

    with pytest.raises(CheckpointError, match=r"foreign\.pt is not a charrnn checkpoint"):
        load_checkpoint(path)


def test_a_bare_state_dict_is_refused(tmp_path):
    model, _ = tiny()
    path = tmp_path / "state_dict.pt"
    torch.save(model.state_dict(), path)

    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        load_checkpoint(path)


def test_a_newer_format_version_is_refused(tmp_path):
    model, vocab = tiny()
    path = save_checkpoint(tmp_path / "ckpt.pt", model, vocab)
    payload = torch.load(path, weights_only=True)
    payload["version"] = FORMAT_VERSION + 1
    torch.save(payload, path)

    with pytest.raises(CheckpointError, match=rf"newer charrnn \(format {FORMAT_VERSION + 1}\)"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_reported_as_damaged(tmp_path):
    model, vocab = tiny()
    path = save_checkpoint(tmp_path / "ckpt.pt", model, vocab)
    payload = read_payload(path)
    payload["model_config"]["hidden_size"] = 32
    torch.save(payload, path)

    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def saved_last(tmp_path: Path, cell: str = "lstm") -> tuple[Path, dict]:
    """A last.pt with a training state, and its payload to damage."""
    model, vocab = tiny(cell)
    state = training_state(model)
    info = {"step": 12, "corpus": ["c.txt"], "corpus_sha256": "ab" * 32, "best_val_loss": 2.5}
    path = save_checkpoint(tmp_path / "last.pt", model, vocab, TrainConfig(), info, state)
    return path, torch.load(path, weights_only=True)


def _set(*keys_and_value):
    """A mutation that sets payload[k1][k2]... to the last argument."""
    *keys, value = keys_and_value

    def mutate(payload):
        target = payload
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value(target[keys[-1]]) if callable(value) else value

    return mutate


def _delete(*keys):
    def mutate(payload):
        target = payload
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


OPTIMIZER = ("training", "optimizer")
GROUP = (*OPTIMIZER, "param_groups", 0)
DAMAGE = {
    "version a string": (_set("version", "1"), "format version '1', expected a positive integer"),
    "version None": (_set("version", None), "format version None"),
    "version 0": (_set("version", 0), "format version 0"),
    "model_config None": (_set("model_config", None), "model_config is None, expected a dict"),
    "no model_config": (_delete("model_config"), "no model_config"),
    "no vocab_size": (_delete("model_config", "vocab_size"), "no model_config.vocab_size"),
    "hidden a string": (
        _set("model_config", "hidden_size", "16"),
        "model_config.hidden_size is '16', expected an integer",
    ),
    "dropout a bool": (_set("model_config", "dropout", True), "dropout is True, expected a number"),
    "unknown cell": (_set("model_config", "cell", "transformer"), "model_config: --model must be"),
    "a billion layers": (
        _set("model_config", "num_layers", 10**9),
        "model_config: --layers must be between 1 and 64, got 1000000000",
    ),
    "huge hidden": (_set("model_config", "hidden_size", 10**12), "expected (4000000000000, 8)"),
    "train_config a list": (_set("train_config", [1]), "train_config is a list, expected a dict"),
    "lr a string": (_set("train_config", "lr", "fast"), "train_config.lr is 'fast'"),
    "vocab a number": (_set("vocab", 5), "vocab is 5, expected a string of characters"),
    "vocab truncated": (
        _set("vocab", lambda v: v[:-1]),
        "vocab has 14 characters, model_config.vocab_size is 15",
    ),
    "vocab repeats": (_set("vocab", lambda v: v[0] + v[1:] + v[0]), "vocab repeats characters"),
    "vocab unsorted": (_set("vocab", lambda v: v[::-1]), "vocab is not in sorted order"),
    "vocab entries": (_set("vocab", lambda v: ["ab", *v[2:]]), "not single characters"),
    "model a list": (_set("model", []), "model is a list, expected a dict"),
    "a weight missing": (_delete("model", "head.bias"), "no weights for 'head.bias'"),
    "a weight too many": (_set("model", "extra", torch.zeros(1)), "weights 'extra' are not"),
    "a weight reshaped": (
        _set("model", "head.bias", torch.zeros(3)),
        "weight head.bias has shape (3,), expected (15,)",
    ),
    "integer weights": (
        _set("model", "head.bias", lambda t: t.long()),
        "weight head.bias is a int64 tensor of shape (15,), expected floating point",
    ),
    "a weight not a tensor": (_set("model", "head.bias", [0.0]), "weight head.bias is a list"),
    "info a list": (_set("info", [1, 2]), "info is a list, expected a dict"),
    "info step a string": (_set("info", "step", "x"), "info.step is 'x', expected an integer"),
    "info step a bool": (_set("info", "step", True), "info.step is True"),
    "info best loss NaN": (
        _set("info", "best_val_loss", float("nan")),
        "info.best_val_loss is nan",
    ),
    "info corpus a number": (_set("info", "corpus", 5), "info.corpus is 5, expected a list"),
    "info corpus numbers": (_set("info", "corpus", [1]), "info.corpus is a list, expected a list"),
    "info sha a number": (_set("info", "corpus_sha256", 5), "info.corpus_sha256 is 5"),
    "info elapsed negative": (_set("info", "elapsed_s", -1.0), "info.elapsed_s is -1.0"),
    "training a list": (_set("training", []), "training is a list, expected a dict"),
    "no optimizer": (_delete("training", "optimizer"), "no training.optimizer"),
    "no rng_data": (_delete("training", "rng_data"), "no training.rng_data"),
    "step a string": (_set("training", "step", "12"), "training.step is '12', expected an integer"),
    "step negative": (_set("training", "step", -1), "training.step is -1"),
    "step huge": (_set("training", "step", 10**30), "training.step is a huge integer"),
    "progress over 1": (_set("training", "schedule_progress", 2.0), "expected a finite number in"),
    "elapsed a string": (_set("training", "elapsed_s", "x"), "training.elapsed_s is 'x'"),
    "evals a float": (_set("training", "evals_since_best", 1.5), "evals_since_best is 1.5"),
    "one param group": (
        _set(*OPTIMIZER, "param_groups", lambda groups: groups[:1]),
        "param_groups has 1 groups, expected 2",
    ),
    "group params wrong": (
        _set(*GROUP, "params", [0, 1]),
        "param_groups[0].params does not list parameters 0 to 5",
    ),
    "group params tensors": (
        _set(*GROUP, "params", [torch.zeros(2)] * 6),
        "param_groups[0].params does not list",
    ),
    "betas a string": (_set(*GROUP, "betas", "x"), "param_groups[0].betas is 'x'"),
    "eps None": (_set(*GROUP, "eps", None), "param_groups[0].eps is None"),
    "no lr": (_delete(*GROUP, "lr"), "no training.optimizer.param_groups[0].lr"),
    "capturable": (_set(*GROUP, "capturable", True), "capturable is True, expected False"),
    "foreach a string": (_set(*GROUP, "foreach", "yes"), "foreach is 'yes'"),
    "moment reshaped": (
        _set(*OPTIMIZER, "state", 0, "exp_avg", torch.zeros(3)),
        "training.optimizer.state[0].exp_avg has shape (3,), expected (15, 8)",
    ),
    "no moment": (_delete(*OPTIMIZER, "state", 0, "exp_avg_sq"), "no training.optimizer.state[0]."),
    "step of many": (
        _set(*OPTIMIZER, "state", 0, "step", torch.ones(2)),
        "state[0].step has shape (2,), expected ()",
    ),
    "state of no parameter": (
        _set(*OPTIMIZER, "state", 99, {}),
        "training.optimizer.state has an entry for no parameter (99)",
    ),
    "rng float": (
        _set("training", "rng_cpu", torch.zeros(5056)),
        "training.rng_cpu is a float32 tensor of shape (5056,), expected uint8",
    ),
    "rng short": (
        _set("training", "rng_cpu", torch.zeros(10, dtype=torch.uint8)),
        "training.rng_cpu is not a random generator state",
    ),
    "rng noise": (
        _set("training", "rng_data", lambda t: torch.full_like(t, 255)),
        "training.rng_data is not a random generator state",
    ),
    "rng_cuda size": (
        _set("training", "rng_cuda", torch.zeros(5, dtype=torch.uint8)),
        "training.rng_cuda has shape (5,), expected (16,)",
    ),
    "rng_ranks a dict": (
        _set("training", "rng_ranks", {}),
        "training.rng_ranks is a dict, expected a list",
    ),
    "rng_ranks without cpu": (
        _set("training", "rng_ranks", [{"cuda": None}]),
        "no training.rng_ranks[0].cpu",
    ),
    "rng_ranks noise": (
        _set("training", "rng_ranks", [{"cpu": torch.full((5056,), 255, dtype=torch.uint8)}]),
        "training.rng_ranks[0].cpu is not a random generator state",
    ),
    "average without a weight": (
        _delete("training", "average", "weights", "head.weight"),
        "training.average.weights does not hold the model's 11 parameters by name",
    ),
    "average reshaped": (
        _set("training", "average", "weights", "head.weight", torch.zeros(3)),
        "training.average.weights.head.weight has shape (3,), expected (15, 16)",
    ),
    "average count negative": (
        _set("training", "average", "updates", -1),
        "training.average.updates is -1, expected an integer >= 0",
    ),
    "carried three": (
        _set("training", "carried_state", [torch.zeros(2, 4, 16)] * 3),
        "training.carried_state is a list, expected 2 tensor(s) for lstm",
    ),
    "carried reshaped": (
        _set("training", "carried_state", [torch.zeros(2, 4, 16), torch.zeros(2, 4, 8)]),
        "training.carried_state[1] has shape (2, 4, 8), expected (2, streams, 16)",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_checkpoint_is_refused_in_one_line_saying_what_is_wrong(tmp_path, damage):
    mutate, message = DAMAGE[damage]
    path, payload = saved_last(tmp_path)
    mutate(payload)
    torch.save(payload, path)

    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    text = str(raised.value)
    assert text.startswith(f"{path} is a damaged charrnn checkpoint (") and text.endswith(")")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("half", [False, True])
def test_non_finite_weights_are_refused_naming_the_parameter(tmp_path, value, half):
    model, vocab = tiny("gru")
    with torch.no_grad():
        model.core.weight_hh_l1[3, 2] = value
    path = save_checkpoint(tmp_path / "bad.pt", model, vocab, half=half)

    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == (f"{path} has non-finite weights (NaN or inf in core.weight_hh_l1)")


def test_what_older_files_leave_out_still_loads(tmp_path):
    # No version, no info, no train_config, and a training state without the keys added later.
    path, payload = saved_last(tmp_path, cell="gru")
    for key in ("version", "info", "train_config"):
        del payload[key]
    for key in ("rng_cuda", "carried_state", "schedule_progress", "elapsed_s", "evals_since_best"):
        del payload["training"][key]
    torch.save(payload, path)

    loaded = load_checkpoint(path)
    assert loaded.info == {} and loaded.train_config is None
    assert loaded.training_state["step"] == 12


@pytest.mark.gpu
def test_a_checkpoint_saved_from_cuda_loads_on_cpu(tmp_path):
    model, vocab = tiny("lstm")
    expected = logits_of(model, vocab)
    path = save_checkpoint(tmp_path / "cuda.pt", model.to("cuda"), vocab)

    loaded = load_checkpoint(path, device="cpu")

    assert loaded.model.head.weight.device.type == "cpu"
    torch.testing.assert_close(logits_of(loaded.model, vocab), expected, rtol=1e-5, atol=1e-5)
    on_gpu = load_checkpoint(path, device="cuda")
    assert on_gpu.model.head.weight.device.type == "cuda"


def test_loading_leaves_the_global_rng_alone(tmp_path):
    from conftest import make_checkpoint

    path = make_checkpoint(tmp_path / "m.pt")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_checkpoint(path)
    assert torch.equal(torch.rand(3), expected)


def test_saved_checkpoint_gets_ordinary_file_permissions(tmp_path):
    from conftest import make_checkpoint

    umask = os.umask(0o022)
    try:
        path = make_checkpoint(tmp_path / "m.pt")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
