"""Device-aware defaults: a user's option always wins, then the device's default, then the dataclass's."""

import pytest

from charrnn.config import DEVICE_DEFAULTS, ModelConfig, TrainConfig, build_configs, resume_config
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


def test_cli_train_uses_cpu_defaults(tmp_path, tiny_corpus):
    from typer.testing import CliRunner

    from charrnn.checkpoint import load_checkpoint
    from charrnn.cli import app

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
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    loaded = load_checkpoint(out / "best.pt")
    assert loaded.model_config.hidden_size == DEVICE_DEFAULTS["cpu"]["model"]["hidden_size"]
    assert loaded.train_config.lr == DEVICE_DEFAULTS["cpu"]["train"]["lr"]


def test_resume_config_keeps_saved_values_and_takes_allowed_changes():
    saved = TrainConfig(seq_len=32, batch_size=8, lr=1e-3, max_steps=100, seed=7)
    resumed = resume_config(saved, {}, {"max_steps": 300, "lr": 5e-4})
    assert (resumed.seq_len, resumed.batch_size, resumed.seed) == (32, 8, 7)
    assert (resumed.max_steps, resumed.lr) == (300, 5e-4)


def test_resume_config_refuses_changes_that_make_another_run():
    saved = TrainConfig()
    with pytest.raises(ConfigError, match="--hidden"):
        resume_config(saved, {"hidden_size": 64}, {})
    with pytest.raises(ConfigError, match="--batch-size, --seq-len"):
        resume_config(saved, {}, {"seq_len": 16, "batch_size": 4, "lr": 1e-3})
