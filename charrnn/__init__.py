"""charrnn: character-level RNN language models. Train, sample and score text.

The public names below are imported on first use (PEP 562), so `import charrnn` and
`charrnn --help` stay fast: only what touches a model imports torch. No module is named like a
function it exports (`charrnn.train` is the function, `charrnn.training` its module), so
importing a module never shadows a function.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("charrnn")  # one source: pyproject.toml, through the installed metadata
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

# Public name -> the module that defines it.
_EXPORTS = {
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "ModelConfig": "config",
    "SampleConfig": "config",
    "ScoreConfig": "config",
    "TrainConfig": "config",
    "Corpus": "data",
    "read_corpus": "data",
    "CharRNNError": "errors",
    "TrainResult": "events",
    "CharRNN": "model",
    "Generation": "sampling",
    "Piece": "sampling",
    "Sample": "sampling",
    "generate": "sampling",
    "sample_text": "sampling",
    "sample_texts": "sampling",
    "stream_text": "sampling",
    "LinesScore": "scoring",
    "ScoreSummary": "scoring",
    "ScoredText": "scoring",
    "TextScore": "scoring",
    "score": "scoring",
    "score_lines": "scoring",
    "score_stream": "scoring",
    "train": "training",
    "TokenCorpus": "token_cache",
    "open_corpus": "token_cache",
    "Vocab": "vocab",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> object:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'charrnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__
