"""charrnn: character-level RNN language models. Train, sample and score text."""

__version__ = "0.1.0"

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .config import ModelConfig, SampleConfig, TrainConfig  # noqa: E402
from .data import Corpus, read_corpus  # noqa: E402
from .errors import CharRNNError  # noqa: E402
from .events import TrainResult  # noqa: E402
from .model import CharRNN  # noqa: E402
from .sampling import (  # noqa: E402
    Generation,
    Piece,
    Sample,
    generate,
    sample_text,
    sample_texts,
    stream_text,
)
from .score import LinesScore, ScoreConfig, ScoreSummary, TextScore, score, score_lines  # noqa: E402
from .train import train  # noqa: E402
from .vocab import Vocab  # noqa: E402

__all__ = [
    "__version__",
    "CharRNN",
    "CharRNNError",
    "Checkpoint",
    "Corpus",
    "Generation",
    "LinesScore",
    "ModelConfig",
    "Piece",
    "Sample",
    "SampleConfig",
    "ScoreConfig",
    "ScoreSummary",
    "TextScore",
    "TrainConfig",
    "TrainResult",
    "Vocab",
    "load_checkpoint",
    "generate",
    "read_corpus",
    "sample_text",
    "sample_texts",
    "save_checkpoint",
    "score",
    "score_lines",
    "stream_text",
    "train",
]
