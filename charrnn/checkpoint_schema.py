"""The structure a checkpoint file must have, checked once, when it is read.

Everything later code takes from a checkpoint (the configs, the vocabulary, the weights, the info
`charrnn info` shows, and through resume_schema the training state `--resume` restores) is
checked here against what `save_checkpoint` and the training loop write. A damaged or hand-edited
file is then refused with one line saying what is wrong, instead of failing deep inside sampling,
scoring or training. The checks of single values are in schema_values.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import schema_values as check
from .config import ModelConfig, TrainConfig, from_dict
from .errors import CheckpointError, ConfigError
from .model import parameter_shapes
from .resume_schema import check_training_state
from .vocab import Vocab

FORMAT_NAME = "charrnn"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Contents:
    """A checkpoint's parts, checked: what `load_checkpoint` builds its Checkpoint from."""

    model_config: ModelConfig
    train_config: TrainConfig | None
    vocab: Vocab
    weights: dict[str, torch.Tensor]
    info: dict[str, Any]
    training_state: dict[str, Any] | None


def damaged(path: Path | str | None, what: str) -> CheckpointError:
    return CheckpointError(f"{path} is a damaged charrnn checkpoint ({what})")


def check_header(payload: Any, path: Path) -> None:
    """Refuse what is not a charrnn checkpoint at all, or was written by a newer charrnn."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a charrnn checkpoint")
    if "version" not in payload:  # tolerated, as it always was: read as the first format
        return
    version = payload["version"]
    if not check.is_kind(version, int) or version < 1:
        raise damaged(
            path, f"format version {check.describe(version)}, expected a positive integer"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer charrnn (format {version}); upgrade charrnn"
        )


def check_contents(payload: dict[str, Any], path: Path) -> Contents:
    """The checked parts of a payload that passed check_header; CheckpointError if any is wrong."""
    try:
        contents = _contents(payload)
    except check.Damaged as problem:
        raise damaged(path, str(problem)) from None
    for name, tensor in contents.weights.items():
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path} has non-finite weights (NaN or inf in {name})")
    return contents


def _contents(payload: dict[str, Any]) -> Contents:
    model_config = _config(ModelConfig, check.required(payload, "model_config"), "model_config")
    saved_train = payload.get("train_config")
    empty = saved_train is None or (isinstance(saved_train, dict) and not saved_train)
    train_config = None if empty else _config(TrainConfig, saved_train, "train_config")
    return Contents(
        model_config=model_config,
        train_config=train_config,
        vocab=_vocab(check.required(payload, "vocab"), model_config.vocab_size),
        weights=_weights(check.required(payload, "model"), model_config),
        info=_info(payload.get("info")),
        training_state=check_training_state(payload.get("training"), model_config),
    )


# --- configs, vocabulary, weights, info -----------------------------------------------------


def _config(cls: type, value: Any, where: str) -> Any:
    """A config from its saved dict: each field of its annotated type, then its own checks."""
    values = check.mapping(value, where)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in values:
            check.expect(values[field.name], hints[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING:
            raise check.Damaged(f"no {where}.{field.name}")
    try:
        return from_dict(cls, values)
    except ConfigError as problem:
        raise check.Damaged(f"{where}: {problem}") from None


def _vocab(value: Any, size: int) -> Vocab:
    """The saved characters: distinct, sorted (ids are positions in that order), one per id."""
    if isinstance(value, str):
        chars = list(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(char, str) for char in value):
        chars = list(value)
    else:
        raise check.Damaged(f"vocab is {check.describe(value)}, expected a string of characters")
    if any(len(char) != 1 for char in chars):
        raise check.Damaged("vocab holds entries that are not single characters")
    if len(set(chars)) != len(chars):
        raise check.Damaged("vocab repeats characters")
    if chars != sorted(chars):
        raise check.Damaged("vocab is not in sorted order, so its ids would not match the weights")
    if len(chars) != size:
        raise check.Damaged(f"vocab has {len(chars)} characters, model_config.vocab_size is {size}")
    return Vocab(chars)


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _weights(value: Any, config: ModelConfig) -> dict[str, torch.Tensor]:
    """Exactly the model's parameters, each a floating-point tensor of its shape."""
    weights = check.mapping(value, "model")
    # Bound the layer count by the file first: a damaged config may claim a billion layers.
    if config.num_layers > len(weights):
        raise check.Damaged(
            f"model_config.num_layers is {config.num_layers}, "
            f"but the file holds {len(weights)} weight tensors"
        )
    expected = parameter_shapes(config)
    missing = [name for name in expected if name not in weights]
    if missing:
        raise check.Damaged(f"no weights for {_names(missing)}")
    unknown = [str(name) for name in weights if name not in expected]
    if unknown:
        raise check.Damaged(f"weights {_names(unknown)} are not the model's")
    for name, shape in expected.items():
        check.tensor(weights[name], f"weight {name}", shape=shape, floating=True)
    return weights


def _lineage(value: Any, where: str) -> None:
    """info.init_from: {source, corpus_sha256, step} of the model a fine-tuning run started from
    (the last two None where the source did not record them)."""
    lineage = check.mapping(value, where)
    check.string(check.required(lineage, "source", f"{where}."), f"{where}.source")
    for key, check_field in (("corpus_sha256", check.string), ("step", check.count)):
        if lineage.get(key) is not None:
            check_field(lineage[key], f"{where}.{key}")


# What training writes into `info`; other keys are kept and not looked at.
_INFO_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "step": check.count,
    "val_loss": check.loss,
    "best_val_loss": check.loss,
    "elapsed_s": check.seconds,
    "corpus": check.strings,
    "corpus_sha256": check.string,
    "corpus_chars": check.count,
    "device": check.string,
    "precision": check.string,
    "num_parameters": check.count,
    "charrnn_version": check.string,
    "saved_at": check.string,
    "init_from": _lineage,
}


def _info(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    info = check.mapping(value, "info")
    for key, check_field in _INFO_FIELDS.items():
        if key in info:
            check_field(info[key], f"info.{key}")
    return info
