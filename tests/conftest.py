"""Shared fixtures: tiny texts and tiny checkpoints, made on the spot (no network, no ../shared)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import save_checkpoint
from charrnn.config import ModelConfig, TrainConfig
from charrnn.model import CharRNN
from charrnn.vocab import Vocab


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests need CUDA. Network and slow tests run in CI (CI is set there) or when asked; a
    plain local run skips them. Browser tests need Chromium; in CI they run (and fail without
    it), since .ci/run installs it."""
    skips = {}
    if not torch.cuda.is_available():
        skips["gpu"] = pytest.mark.skip(reason="needs a CUDA GPU")
    if not (os.environ.get("CI") or os.environ.get("CHARRNN_NETWORK_TESTS")):
        skips["network"] = pytest.mark.skip(
            reason="downloads from PyPI: set CHARRNN_NETWORK_TESTS=1 (CI does)"
        )
    if not os.environ.get("CI") and chromium_binary() is None:
        skips["browser"] = pytest.mark.skip(
            reason="needs Chromium (apt-get install chromium); CI installs it"
        )
    if not (os.environ.get("CI") or os.environ.get("CHARRNN_SLOW_TESTS")):
        skips["slow"] = pytest.mark.skip(
            reason="slow (a second or more): set CHARRNN_SLOW_TESTS=1 (CI does)"
        )
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)


def chromium_binary() -> str | None:
    """The headless browser for the browser tests: Debian's chromium, or another Chromium."""
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((path for path in map(shutil.which, names) if path), None)


TINY_TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die: to sleep;\n"
) * 12


@pytest.fixture
def tiny_text() -> str:
    return TINY_TEXT


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_TEXT, encoding="utf-8")
    return path


def make_checkpoint(
    path: Path,
    cell: str = "lstm",
    seed: int = 0,
    text: str = TINY_TEXT,
    hidden_size: int = 16,
    num_layers: int = 2,
) -> Path:
    """A randomly initialised tiny model over `text`'s vocabulary, saved as a checkpoint."""
    torch.manual_seed(seed)
    vocab = Vocab.from_text(text)
    config = ModelConfig(
        vocab_size=len(vocab),
        cell=cell,
        num_layers=num_layers,
        hidden_size=hidden_size,
        embedding_size=8,
        dropout=0.0,
    )
    model = CharRNN(config)
    return save_checkpoint(path, model, vocab, TrainConfig(), {"step": 0, "corpus": ["tiny.txt"]})


def make_chain_checkpoint(path: Path, cycle: str, text: str = TINY_TEXT) -> Path:
    """A model over `text`'s vocabulary that continues each character of `cycle` with the next
    one (round the cycle) and every other character with cycle[0], all but certainly: a
    1-layer RNN whose state is the last character (one-hot) and whose head maps it on."""
    vocab = Vocab.from_text(text + cycle)
    size = len(vocab)
    config = ModelConfig(
        vocab_size=size, cell="rnn", num_layers=1, hidden_size=size, embedding_size=size,
        dropout=0.0,
    )  # fmt: skip
    model = CharRNN(config)
    following = torch.zeros(size, size)
    for char in vocab.chars:
        position = cycle.find(char)
        after = cycle[(position + 1) % len(cycle)] if position >= 0 else cycle[0]
        following[vocab.index[after], vocab.index[char]] = 1.0
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.embedding.weight.copy_(torch.eye(size))
        model.core.weight_ih_l0.copy_(10 * torch.eye(size))  # h = tanh(10 e_c), about e_c
        model.head.weight.copy_(20 * following)  # the next character: p > 0.9999
    return save_checkpoint(path, model, vocab, TrainConfig(), {"step": 0, "corpus": ["chain"]})


def make_run(out_dir: Path, corpus: Path, cell: str = "lstm", steps: int = 2) -> Path:
    """A tiny run trained for `steps` on `corpus` (stateful windows, 4 streams); its last.pt."""
    from charrnn.data import read_corpus
    from charrnn.training import train

    model = ModelConfig(
        vocab_size=1, cell=cell, num_layers=2, hidden_size=16, embedding_size=8, dropout=0.0
    )
    config = TrainConfig(
        seq_len=16, batch_size=4, max_steps=steps, eval_every=steps, sample_chars=0, device="cpu"
    )
    train(read_corpus([corpus]), model, config, out_dir)
    return out_dir / "last.pt"


@pytest.fixture(params=["lstm", "gru", "rnn"])
def tiny_checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A tiny untrained checkpoint for each cell type."""
    return make_checkpoint(tmp_path / f"{request.param}.pt", cell=request.param)


@pytest.fixture
def lstm_checkpoint(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "lstm.pt", cell="lstm")


@pytest.fixture(autouse=True, scope="session")
def token_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Token files (and the processes tests start) use a temporary cache, never ~/.cache."""
    path = tmp_path_factory.mktemp("token-cache")
    previous = os.environ.get("CHARRNN_CACHE_DIR")
    os.environ["CHARRNN_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("CHARRNN_CACHE_DIR", None)
    else:
        os.environ["CHARRNN_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """Tiny models run fastest on one thread; more threads thrash on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write(path: Path, data: str | bytes) -> Path:
    """Write a test file (text as UTF-8, or raw bytes), making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def cli(*args: str | Path, input: str | bytes | None = None, expect_bug: bool = False):
    """Run the `charrnn` CLI in-process. A traceback, an exception escaping the CLI or the CLI's
    own "internal error" line (an unexpected exception it caught) fails the test: under
    CliRunner an exception lands in result.exception, not in the output."""
    from typer.testing import CliRunner

    from charrnn.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if not expect_bug:
        assert "error: internal error" not in result.stderr, result.stderr
    return result


def run_charrnn(
    *args: str | Path, cwd: Path | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run `python -m charrnn` as a user would, in a child process with text output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **kwargs.pop("env", {})}
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run(
        [sys.executable, "-m", "charrnn", *map(str, args)],
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        **kwargs,
    )
