"""bf16 on a CPU with bf16 matrix units: training, resume and scoring agree with fp32, `auto`
picks it for wide layers only, and a CPU without such units refuses it in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import cli

from charrnn import device as device_module
from charrnn.checkpoint import load_checkpoint
from charrnn.config import CPU_BF16_MIN_HIDDEN, ModelConfig, TrainConfig
from charrnn.data import read_corpus
from charrnn.errors import DeviceError
from charrnn.scoring import score_lines
from charrnn.training import train

needs_cpu_bf16 = pytest.mark.skipif(
    not device_module.cpu_has_bf16(), reason="this CPU has no bf16 matrix units"
)

TINY = ["--model", "lstm", "--layers", "1", "--hidden", "32", "--embedding", "8", "--seq-len",
        "16", "--batch-size", "4", "--sample-chars", "0", "--device", "cpu", "--threads", "1"]  # fmt: skip


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set whether the CPU has bf16 units, whatever this one has: cpu_bf16(False)."""

    def force(present: bool) -> None:
        monkeypatch.setenv("CHARRNN_CPU_BF16", "1" if present else "0")
        device_module.cpu_has_bf16.cache_clear()

    yield force
    device_module.cpu_has_bf16.cache_clear()


def test_a_cpu_without_bf16_units_refuses_bf16_in_one_line(tmp_path, tiny_corpus, cpu_bf16):
    cpu_bf16(False)

    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, "--precision", "bf16")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --precision bf16 needs a CPU with bf16 matrix units (AVX512-BF16 or AMX on x86, "
        "BF16 on Arm), and this one has none; use fp32"
    ]
    assert not (tmp_path / "run").exists()


def test_auto_takes_bf16_on_such_a_cpu_for_wide_layers_only(cpu_bf16):
    cpu = torch.device("cpu")
    wide = ModelConfig(vocab_size=10, cell="gru", hidden_size=1024)
    cpu_bf16(True)
    for cell in ("lstm", "gru", "rnn"):
        width = CPU_BF16_MIN_HIDDEN[cell]
        assert device_module.use_bf16(cpu, "auto", ModelConfig(10, cell=cell, hidden_size=width))
        narrow = ModelConfig(vocab_size=10, cell=cell, hidden_size=width - 1)
        assert not device_module.use_bf16(cpu, "auto", narrow)
    # The GRU's bf16 path gains nothing at 128 (measured), the LSTM's fused one does.
    assert device_module.use_bf16(cpu, "auto", ModelConfig(10, cell="lstm", hidden_size=128))
    assert not device_module.use_bf16(cpu, "auto", ModelConfig(10, cell="gru", hidden_size=128))
    assert not device_module.use_bf16(cpu, "fp32", wide)
    cpu_bf16(False)
    assert not device_module.use_bf16(cpu, "auto", wide)
    with pytest.raises(DeviceError, match="bf16 matrix units"):
        device_module.use_bf16(cpu, "bf16", wide)


def test_the_flags_of_this_machine_are_read(monkeypatch):
    monkeypatch.delenv("CHARRNN_CPU_BF16", raising=False)
    device_module.cpu_has_bf16.cache_clear()
    try:
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        expected = any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16", "bf16"))
        if not Path("/proc/cpuinfo").exists():
            pytest.skip("no /proc/cpuinfo here")
        assert device_module.cpu_has_bf16() == (expected and torch.backends.mkldnn.is_available())
    finally:
        device_module.cpu_has_bf16.cache_clear()


def _run(tmp_path: Path, name: str, corpus, precision: str, **options):
    model = ModelConfig(vocab_size=1, cell="lstm", num_layers=2, hidden_size=32,
                        embedding_size=8, dropout=0.1)  # fmt: skip
    config = TrainConfig(seq_len=16, batch_size=4, max_steps=14, eval_every=7, warmup_steps=2,
                         lr=1e-2, sample_chars=0, device="cpu", precision=precision, **options)  # fmt: skip
    return train(read_corpus([corpus]), model, config, tmp_path / name)


@needs_cpu_bf16
def test_training_in_bf16_on_cpu_learns_like_fp32_and_says_so(tmp_path, tiny_corpus):
    fp32 = _run(tmp_path, "fp32", tiny_corpus, "fp32")
    bf16 = _run(tmp_path, "bf16", tiny_corpus, "bf16")

    saved = load_checkpoint(tmp_path / "bf16" / "best.pt")
    assert saved.info["precision"] == "bf16" and saved.info["device"] == "cpu"
    assert all(p.dtype == torch.float32 for p in saved.model.parameters())  # fp32 master weights
    assert bf16.best_val_loss == pytest.approx(fp32.best_val_loss, abs=0.05)
    assert bf16.best_val_loss != fp32.best_val_loss  # it really ran in another precision


@needs_cpu_bf16
def test_a_bf16_cpu_run_resumes_exactly(tmp_path, tiny_corpus):
    _run(tmp_path, "whole", tiny_corpus, "bf16")
    polls = iter(range(100))
    corpus = read_corpus([tiny_corpus])
    model = ModelConfig(vocab_size=1, cell="lstm", num_layers=2, hidden_size=32,
                        embedding_size=8, dropout=0.1)  # fmt: skip
    config = load_checkpoint(tmp_path / "whole" / "last.pt").train_config
    train(corpus, model, config, tmp_path / "split", should_stop=lambda: next(polls) >= 9)
    train(corpus, None, config, tmp_path / "split",
          resume=load_checkpoint(tmp_path / "split" / "last.pt"))  # fmt: skip

    whole = load_checkpoint(tmp_path / "whole" / "last.pt").model.state_dict()
    split = load_checkpoint(tmp_path / "split" / "last.pt").model.state_dict()
    for name, tensor in whole.items():
        assert torch.equal(split[name], tensor), name
    lines = [
        json.loads(line)["val_loss"]
        for run in ("whole", "split")
        for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
    ]
    assert lines[:2] == lines[2:]


@needs_cpu_bf16
def test_scoring_in_bf16_on_cpu_agrees_with_fp32(tmp_path, tiny_corpus, tiny_text):
    _run(tmp_path, "run", tiny_corpus, "fp32")
    loaded = load_checkpoint(tmp_path / "run" / "best.pt")
    lines = tiny_text.splitlines(keepends=True)[:20]

    fp32 = score_lines(loaded, lines)
    bf16 = score_lines(loaded, lines, precision="bf16")
    auto = score_lines(loaded, lines, precision="auto")

    assert bf16.total.bits_per_char == pytest.approx(fp32.total.bits_per_char, abs=0.02)
    assert bf16.total.logprob != fp32.total.logprob
    assert auto.total.logprob == fp32.total.logprob  # auto stays fp32 on a CPU


@needs_cpu_bf16
def test_the_cli_trains_in_bf16_on_cpu(tmp_path, tiny_corpus):
    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, "--precision", "bf16",
                 "--max-steps", "6", "--eval-every", "3")  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "training on cpu (bf16)" in result.stderr
    assert load_checkpoint(tmp_path / "run" / "best.pt").info["precision"] == "bf16"
