"""charrnn: character-level RNN language models. Train, sample and score text."""

__version__ = "0.1.0"

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .config import ModelConfig, TrainConfig  # noqa: E402
from .data import Corpus, read_corpus  # noqa: E402
from .errors import CharRNNError  # noqa: E402
from .model import CharRNN  # noqa: E402
from .train import TrainResult, train  # noqa: E402
from .vocab import Vocab  # noqa: E402

__all__ = [
    "__version__",
    "CharRNN",
    "CharRNNError",
    "Checkpoint",
    "Corpus",
    "ModelConfig",
    "TrainConfig",
    "TrainResult",
    "Vocab",
    "load_checkpoint",
    "read_corpus",
    "save_checkpoint",
    "train",
]
