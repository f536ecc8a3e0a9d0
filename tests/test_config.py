"""Device-aware defaults: a user's option always wins, then the device's default, then the dataclass's."""

import dataclasses

import pytest
import torch

from charrnn.config import (
    CPU_MULTITHREAD_MODEL,
    DEVICE_DEFAULTS,
    ModelConfig,
    TrainConfig,
    build_configs,
    resume_config,
)
from charrnn.errors import ConfigError


def test_cpu_defaults_replace_dataclass_defaults():
    model, train = build_configs("cpu", {}, {})
    cpu = DEVICE_DEFAULTS["cpu"]
    for name, value in cpu["model"].items():
        assert getattr(model, name) == value
    for name, value in cpu["train"].items():
        assert getattr(train, name) == value
    # The CPU table really differs from the GPU defaults, or it would be pointless.
    assert model.hidden_size != ModelConfig(vocab_size=1).hidden_size


def test_gpu_uses_dataclass_defaults():
    model, train = build_configs("cuda", {}, {})
    assert model == ModelConfig(vocab_size=1)
    assert train == TrainConfig()


def test_user_options_win_over_device_defaults():
    model, train = build_configs(
        "cpu", {"hidden_size": 48, "dropout": 0.3}, {"lr": 1e-4, "seq_len": 32}
    )
    assert (model.hidden_size, model.dropout) == (48, 0.3)
    assert (train.lr, train.seq_len) == (1e-4, 32)


def test_bad_options_still_rejected():
    with pytest.raises(ConfigError, match="--hidden"):
        build_configs("cpu", {"hidden_size": 0}, {})
    with pytest.raises(ConfigError, match="--dropout"):
        build_configs("cuda", {"dropout": 1.0}, {})


@pytest.mark.parametrize("seed", [-1, 2**63, 10**30])
def test_a_seed_torch_cannot_take_is_refused(seed):
    with pytest.raises(ConfigError, match="--seed must be between 0 and 2"):
        TrainConfig(seed=seed)


def test_more_cpu_threads_pick_a_wider_model():
    one, _ = build_configs("cpu", {}, {}, cpu_threads=1)
    two, _ = build_configs("cpu", {}, {}, cpu_threads=2)
    assert one.hidden_size == DEVICE_DEFAULTS["cpu"]["model"]["hidden_size"]
    assert two.hidden_size == CPU_MULTITHREAD_MODEL["hidden_size"] > one.hidden_size
    assert (two.cell, two.num_layers) == (one.cell, one.num_layers)
    # The user's option still wins, and a GPU ignores CPU threads.
    assert build_configs("cpu", {"hidden_size": 64}, {}, cpu_threads=2)[0].hidden_size == 64
    assert build_configs("cuda", {}, {}, cpu_threads=2)[0] == ModelConfig(vocab_size=1)


@pytest.mark.parametrize("threads", [1, 2])
def test_cli_train_uses_cpu_defaults_for_its_threads(tmp_path, tiny_corpus, threads):
    from typer.testing import CliRunner

    from charrnn.checkpoint import load_checkpoint
    from charrnn.cli import app

    # --threads pins the count: left to choose, a busy machine would pick fewer (tested elsewhere).
    torch.set_num_threads(threads)  # the autouse fixture restores the previous count
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(tiny_corpus),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--max-steps",
            "2",
            "--eval-every",
            "2",
            "--seq-len",
            "16",
            "--sample-chars",
            "0",
            "--threads",
            str(threads),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    loaded = load_checkpoint(out / "best.pt")
    expected_model, expected_train = build_configs("cpu", {}, {}, cpu_threads=threads)
    assert loaded.model_config.hidden_size == expected_model.hidden_size
    assert loaded.model_config.cell == expected_model.cell
    assert loaded.train_config.lr == expected_train.lr == DEVICE_DEFAULTS["cpu"]["train"]["lr"]


def test_resume_config_keeps_saved_values_and_takes_allowed_changes():
    saved = TrainConfig(seq_len=32, batch_size=8, lr=1e-3, max_steps=100, seed=7)
    resumed = resume_config(saved, ModelConfig(vocab_size=5), {}, {"max_steps": 300, "lr": 5e-4})
    assert (resumed.seq_len, resumed.batch_size, resumed.seed) == (32, 8, 7)
    assert (resumed.max_steps, resumed.lr) == (300, 5e-4)


def test_resume_config_refuses_changes_that_make_another_run():
    saved, shape = TrainConfig(), ModelConfig(vocab_size=5)
    with pytest.raises(ConfigError, match="--hidden 512 -> 64"):
        resume_config(saved, shape, {"hidden_size": 64}, {})
    with pytest.raises(ConfigError, match="--seq-len 128 -> 16, --batch-size 128 -> 4"):
        resume_config(saved, shape, {}, {"seq_len": 16, "batch_size": 4, "lr": 1e-3})


def test_resume_config_accepts_the_checkpoints_own_values():
    saved, shape = TrainConfig(seq_len=32), ModelConfig(vocab_size=5, hidden_size=64)
    resumed = resume_config(saved, shape, {"hidden_size": 64, "cell": "lstm"}, {"seq_len": 32})
    assert resumed == saved


def test_every_flag_named_in_messages_is_a_real_option_of_train():
    from typer.main import get_command

    from charrnn.cli import app
    from charrnn.config import flag

    train = get_command(app).commands["train"]
    options = {opt for param in train.params for opt in param.opts}
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "min_lr_ratio"]
    fields += [f.name for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"]
    for name in fields:
        assert flag(name) in options, name
