"""Where the shipped corpus and default model live: inside the installed package (copied there
at build time) or, in a source checkout, at the repository's top level."""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, DataError

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "shipped"
REPO_DIR = PACKAGE_DIR.parent


def _find(name: str, repo_subdir: str) -> Path | None:
    for candidate in (SHIPPED_DIR / name, REPO_DIR / repo_subdir / name):
        if candidate.is_file():
            return candidate
    return None


def default_checkpoint_path() -> Path:
    path = _find("shakespeare.pt", "checkpoints")
    if path is None:
        raise CheckpointError(
            "the shipped model checkpoints/shakespeare.pt is missing from this install; "
            "pass --checkpoint PATH (a checkpoint file or run directory)"
        )
    return path


def default_corpus_path() -> Path:
    path = _find("shakespeare.txt", "corpora")
    if path is None:
        raise DataError(
            "the shipped corpus corpora/shakespeare.txt is missing from this install; "
            "give a CORPUS file or directory"
        )
    return path
