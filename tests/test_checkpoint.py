"""Checkpoints: one self-contained file, written atomically, loaded without arbitrary unpickling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_payload,
    resolve_checkpoint_path,
    save_checkpoint,
)
from charrnn.config import ModelConfig, TrainConfig
from charrnn.errors import CheckpointError
from charrnn.model import CharRNN
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


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_round_trip_gives_identical_logits(tmp_path, cell):
    model, vocab = tiny(cell)
    train_config = TrainConfig(seq_len=16, batch_size=4, seed=7)
    training_state = {
        "step": 12,
        "rng_cpu": torch.get_rng_state(),
        "carried_state": [torch.ones(2, 1, 16)],
    }

    path = save_checkpoint(
        tmp_path / "run" / "last.pt",
        model,
        vocab,
        train_config,
        {"step": 12, "corpus": ["c.txt"]},
        training_state,
    )
    loaded = load_checkpoint(path)

    assert path == tmp_path / "run" / "last.pt"
    assert torch.equal(logits_of(loaded.model, loaded.vocab), logits_of(model, vocab))
    assert loaded.vocab == vocab
    assert loaded.model_config == model.config
    assert loaded.train_config == train_config
    assert loaded.info == {"step": 12, "corpus": ["c.txt"]}
    assert loaded.training_state["step"] == 12
    assert torch.equal(loaded.training_state["rng_cpu"], training_state["rng_cpu"])
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
