"""The shipped model and corpus are found from a source checkout and from an installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from charrnn import resources
from charrnn.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_source_checkout_finds_shipped_files():
    assert resources.default_checkpoint_path().is_file()
    assert resources.default_corpus_path().is_file()
    loaded = load_checkpoint(resources.default_checkpoint_path())
    assert loaded.info["corpus_sha256"] == _corpus_sha256()


def _corpus_sha256() -> str:
    import hashlib

    return hashlib.sha256((REPO / "corpora" / "shakespeare.txt").read_bytes()).hexdigest()


def test_shipped_model_is_small_and_half_precision():
    path = REPO / "checkpoints" / "shakespeare.pt"
    assert path.stat().st_size <= 12 * 1024 * 1024
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert all(t.dtype == torch.float16 for t in payload["model"].values() if t.is_floating_point())
    assert payload["training"] is None  # no optimizer state shipped


@pytest.mark.slow
def test_installed_wheel_works_from_another_directory(tmp_path):
    """pip builds a wheel that carries the model and corpus; sample and score use them."""
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("charrnn-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def charrnn(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "charrnn", *args],
            cwd=elsewhere,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "from charrnn import resources as r; "
            "print(r.default_checkpoint_path()); print(r.default_corpus_path())",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where
    page = site / "charrnn" / "web"  # what `charrnn serve` shows at /
    assert {path.name for path in page.iterdir()} >= {"index.html", "app.js", "style.css"}

    sampled = charrnn("sample", "--seed", "1", "-n", "200", "-q")
    assert sampled.returncode == 0, sampled.stderr
    assert len(sampled.stdout) >= 200 and "\x1b" not in sampled.stdout

    scored = charrnn("score", "--json", "-q", stdin="To be, or not to be, that is the question.\n")
    assert scored.returncode == 0, scored.stderr
    assert '"bits_per_char"' in scored.stdout
