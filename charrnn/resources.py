"""Where the shipped corpus and models live: inside the installed package (copied there at build
time) or, in a source checkout, at the repository's top level."""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, DataError

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "shipped"
REPO_DIR = PACKAGE_DIR.parent

# The shipped models by short name (`--init-from shakespeare`): file name and what it is.
# The first is the default model of `sample`, `score` and `info`.
SHIPPED_MODELS: dict[str, tuple[str, str]] = {
    "shakespeare": ("shakespeare.pt", "LSTM 2x384 trained on the complete works of Shakespeare"),
}
DEFAULT_MODEL = "shakespeare"


def _find(name: str, repo_subdir: str) -> Path | None:
    for candidate in (SHIPPED_DIR / name, REPO_DIR / repo_subdir / name):
        if candidate.is_file():
            return candidate
    return None


def shipped_model_names() -> str:
    """The short names of the shipped models, for messages: 'shakespeare'."""
    return ", ".join(SHIPPED_MODELS)


def shipped_model_path(name: str) -> Path:
    """The checkpoint of a shipped model by its short name; CheckpointError if unknown or absent."""
    if name not in SHIPPED_MODELS:
        raise CheckpointError(
            f"no shipped model is called {name!r} (shipped models: {shipped_model_names()}); "
            "or give a checkpoint file or run directory"
        )
    file_name = SHIPPED_MODELS[name][0]
    path = _find(file_name, "checkpoints")
    if path is None:
        raise CheckpointError(
            f"the shipped model checkpoints/{file_name} is missing from this install; "
            "pass --checkpoint PATH (a checkpoint file or run directory)"
        )
    return path


def default_checkpoint_path() -> Path:
    return shipped_model_path(DEFAULT_MODEL)


def default_corpus_path() -> Path:
    path = _find("shakespeare.txt", "corpora")
    if path is None:
        raise DataError(
            "the shipped corpus corpora/shakespeare.txt is missing from this install; "
            "give a CORPUS file or directory"
        )
    return path
