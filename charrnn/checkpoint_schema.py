"""The structure a checkpoint file must have, checked once, when it is read.

Everything later code takes from a checkpoint (the configs, the vocabulary, the weights, the info
`charrnn info` shows and the training state `--resume` restores) is checked here against what
`save_checkpoint` and the training loop write. A damaged or hand-edited file is then refused with
one line saying what is wrong, instead of failing deep inside sampling, scoring or training.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, TrainConfig, from_dict
from .errors import CheckpointError, ConfigError
from .model import decays, parameter_shapes
from .vocab import Vocab

FORMAT_NAME = "charrnn"
FORMAT_VERSION = 1

Shape = tuple[int, ...]


class _Damaged(Exception):
    """What is wrong, in a few words; check_contents names the file."""


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
    if not _is(version, int) or version < 1:
        raise damaged(path, f"format version {_describe(version)}, expected a positive integer")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer charrnn (format {version}); upgrade charrnn"
        )


def check_contents(payload: dict[str, Any], path: Path) -> Contents:
    """The checked parts of a payload that passed check_header; CheckpointError if any is wrong."""
    try:
        contents = _contents(payload)
    except _Damaged as problem:
        raise damaged(path, str(problem)) from None
    for name, tensor in contents.weights.items():
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path} has non-finite weights (NaN or inf in {name})")
    return contents


def _contents(payload: dict[str, Any]) -> Contents:
    model_config = _config(ModelConfig, _required(payload, "model_config"), "model_config")
    saved_train = payload.get("train_config")
    empty = saved_train is None or (isinstance(saved_train, dict) and not saved_train)
    train_config = None if empty else _config(TrainConfig, saved_train, "train_config")
    return Contents(
        model_config=model_config,
        train_config=train_config,
        vocab=_vocab(_required(payload, "vocab"), model_config.vocab_size),
        weights=_weights(_required(payload, "model"), model_config),
        info=_info(payload.get("info")),
        training_state=_training_state(payload.get("training"), model_config),
    )


# --- values --------------------------------------------------------------------------------


def _is(value: Any, kind: type) -> bool:
    """isinstance, except that True is not an integer and an integer is a float too."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _describe(value: Any) -> str:
    """A value as a message shows it: short, on one line (repr escapes newlines)."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a {dtype} tensor of shape {tuple(value.shape)}"
    if _is(value, int) and value.bit_length() > 64:
        return "a huge integer"  # its repr may be thousands of digits, or refused by Python
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _expect(value: Any, hint: Any, where: str) -> None:
    """`value` is of the annotated type `hint` (int, float, str, bool, or one of them | None)."""
    kinds = typing.get_args(hint) or (hint,)
    if not any(_is(value, kind) for kind in kinds):
        expected = " or ".join(_KIND_NAMES.get(kind, "None") for kind in kinds)
        raise _Damaged(f"{where} is {_describe(value)}, expected {expected}")


def _required(mapping: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in mapping:
        raise _Damaged(f"no {where}{key}")
    return mapping[key]


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _Damaged(f"{where} is {_describe(value)}, expected a dict")
    return value


def _count(value: Any, where: str) -> None:
    # Below 2**63: counts end up in int64 tensors and seeds (a preview's seed is seed + step).
    if not _is(value, int) or not 0 <= value < 2**63:
        raise _Damaged(f"{where} is {_describe(value)}, expected an integer >= 0")


def _finite(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> None:
    if not _is(value, float) or not math.isfinite(value) or not low <= value <= high:
        bounds = ""
        if math.isfinite(low):
            bounds = f" in [{low:g}, {high:g}]" if math.isfinite(high) else f" >= {low:g}"
        raise _Damaged(f"{where} is {_describe(value)}, expected a finite number{bounds}")


def _loss(value: Any, where: str) -> None:
    if value is not None:
        _finite(value, where)


def _seconds(value: Any, where: str) -> None:
    _finite(value, where, low=0.0)


def _string(value: Any, where: str) -> None:
    _expect(value, str, where)


def _strings(value: Any, where: str) -> None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise _Damaged(f"{where} is {_describe(value)}, expected a list of strings")


def _tensor(
    value: Any,
    where: str,
    shape: Shape | None = None,
    dtype: torch.dtype | None = None,
    floating: bool = False,
) -> torch.Tensor:
    """A plain CPU tensor (as torch.load with map_location='cpu' gives) of this shape and kind."""
    if (
        not isinstance(value, torch.Tensor)
        or value.layout != torch.strided
        or value.device.type != "cpu"
    ):
        raise _Damaged(f"{where} is {_describe(value)}, expected a tensor")
    if shape is not None and tuple(value.shape) != shape:
        raise _Damaged(f"{where} has shape {tuple(value.shape)}, expected {shape}")
    if (dtype is not None and value.dtype != dtype) or (floating and not value.is_floating_point()):
        expected = str(dtype).removeprefix("torch.") if dtype else "floating point"
        raise _Damaged(f"{where} is {_describe(value)}, expected {expected}")
    return value


# --- configs, vocabulary, weights, info -----------------------------------------------------


def _config(cls: type, value: Any, where: str) -> Any:
    """A config from its saved dict: each field of its annotated type, then its own checks."""
    values = _mapping(value, where)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in values:
            _expect(values[field.name], hints[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING:
            raise _Damaged(f"no {where}.{field.name}")
    try:
        return from_dict(cls, values)
    except ConfigError as problem:
        raise _Damaged(f"{where}: {problem}") from None


def _vocab(value: Any, size: int) -> Vocab:
    """The saved characters: distinct, sorted (ids are positions in that order), one per id."""
    if isinstance(value, str):
        chars = list(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(char, str) for char in value):
        chars = list(value)
    else:
        raise _Damaged(f"vocab is {_describe(value)}, expected a string of characters")
    if any(len(char) != 1 for char in chars):
        raise _Damaged("vocab holds entries that are not single characters")
    if len(set(chars)) != len(chars):
        raise _Damaged("vocab repeats characters")
    if chars != sorted(chars):
        raise _Damaged("vocab is not in sorted order, so its ids would not match the weights")
    if len(chars) != size:
        raise _Damaged(f"vocab has {len(chars)} characters, model_config.vocab_size is {size}")
    return Vocab(chars)


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _weights(value: Any, config: ModelConfig) -> dict[str, torch.Tensor]:
    """Exactly the model's parameters, each a floating-point tensor of its shape."""
    weights = _mapping(value, "model")
    # Bound the layer count by the file first: a damaged config may claim a billion layers.
    if config.num_layers > len(weights):
        raise _Damaged(
            f"model_config.num_layers is {config.num_layers}, "
            f"but the file holds {len(weights)} weight tensors"
        )
    expected = parameter_shapes(config)
    missing = [name for name in expected if name not in weights]
    if missing:
        raise _Damaged(f"no weights for {_names(missing)}")
    unknown = [str(name) for name in weights if name not in expected]
    if unknown:
        raise _Damaged(f"weights {_names(unknown)} are not the model's")
    for name, shape in expected.items():
        _tensor(weights[name], f"weight {name}", shape=shape, floating=True)
    return weights


# What training writes into `info`; other keys are kept and not looked at.
_INFO_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "step": _count,
    "val_loss": _loss,
    "best_val_loss": _loss,
    "elapsed_s": _seconds,
    "corpus": _strings,
    "corpus_sha256": _string,
    "corpus_chars": _count,
    "device": _string,
    "precision": _string,
    "num_parameters": _count,
    "charrnn_version": _string,
    "saved_at": _string,
}


def _info(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    info = _mapping(value, "info")
    for key, check in _INFO_FIELDS.items():
        if key in info:
            check(info[key], f"info.{key}")
    return info


# --- the training state (last.pt): what training._Run._restore reads ------------------------

_TRAINING_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "step": _count,
    "best_val_loss": _loss,
    "last_val_loss": _loss,
    "evals_since_best": _count,
    "elapsed_s": _seconds,
    "schedule_progress": lambda value, where: _finite(value, where, 0.0, 1.0),
}


def _training_state(value: Any, config: ModelConfig) -> dict[str, Any] | None:
    if value is None:
        return None
    state = _mapping(value, "training")
    if not state:
        return None  # nothing to resume from; training says so when asked to resume
    for key in ("optimizer", "rng_cpu", "rng_data", "step"):
        _required(state, key, "training.")
    for key, check in _TRAINING_FIELDS.items():
        if key in state:
            check(state[key], f"training.{key}")
    _optimizer(state["optimizer"], list(parameter_shapes(config).values()))
    _generator_state(state["rng_cpu"], "training.rng_cpu")
    _generator_state(state["rng_data"], "training.rng_data")
    if state.get("rng_cuda") is not None:
        _cuda_generator_state(state["rng_cuda"], "training.rng_cuda")
    _carried_state(state.get("carried_state"), config)
    return state


def _generator_state(value: Any, where: str) -> None:
    tensor = _tensor(value, where, dtype=torch.uint8)
    # Setting it on a throwaway generator is torch's own check (size, and a valid Mersenne
    # Twister state), and leaves the global one alone.
    try:
        torch.Generator().set_state(tensor)
    except RuntimeError as problem:
        reason = str(problem).splitlines()[0] if str(problem) else "refused by torch"
        raise _Damaged(f"{where} is not a random generator state ({reason})") from None


def _cuda_generator_state(value: Any, where: str) -> None:
    # A CUDA generator's state is its seed then its Philox offset, 8 bytes each (the offset may be
    # left out), and torch requires the offset to be a multiple of 4. Checked by hand: trying it
    # on a CUDA generator would start CUDA just to read a file.
    tensor = _tensor(value, where, dtype=torch.uint8)
    if tensor.dim() != 1 or tensor.numel() not in (8, 16):
        raise _Damaged(f"{where} has shape {tuple(tensor.shape)}, expected (16,)")
    if tensor.numel() == 16 and int(tensor[8]) % 4:
        raise _Damaged(f"{where} has a Philox offset that is not a multiple of 4")


def _carried_state(value: Any, config: ModelConfig) -> None:
    """The hidden state carried between stateful windows: (layers, streams, hidden) tensors."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return
    where, count = "training.carried_state", 2 if config.cell == "lstm" else 1
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise _Damaged(
            f"{where} is {_describe(value)}, expected {count} tensor(s) for {config.cell}"
        )
    layers, hidden = config.num_layers, config.hidden_size
    streams = None  # depends on the corpus, so training checks it; here: the same in each tensor
    for index, item in enumerate(value):
        tensor = _tensor(item, f"{where}[{index}]", floating=True)
        streams = streams or (tensor.shape[1] if tensor.dim() == 3 else None)
        if tensor.dim() != 3 or tuple(tensor.shape) != (layers, streams, hidden) or not streams:
            raise _Damaged(
                f"{where}[{index}] has shape {tuple(tensor.shape)}, "
                f"expected ({layers}, streams, {hidden})"
            )


# --- the optimizer: what AdamW.load_state_dict and its first step read -----------------------

_GROUP_FLAGS = {
    "amsgrad": bool,
    "maximize": bool,
    "decoupled_weight_decay": bool,
    "foreach": bool | None,
    "fused": bool | None,
}
# charrnn never sets these, and on CPU tensors AdamW fails at its first step when they are set.
_GROUP_OFF = ("capturable", "differentiable")


def _optimizer(value: Any, shapes: list[Shape]) -> None:
    """AdamW's state_dict over the model's parameters, grouped as training groups them."""
    where = "training.optimizer"
    optimizer = _mapping(value, where)
    groups = _required(optimizer, "param_groups", f"{where}.")
    # AdamW numbers the parameters group by group: the decayed matrices, then the rest.
    expected = [[s for s in shapes if decays(s)], [s for s in shapes if not decays(s)]]
    if not isinstance(groups, (list, tuple)):
        raise _Damaged(f"{where}.param_groups is {_describe(groups)}, expected a list")
    if len(groups) != len(expected):
        raise _Damaged(f"{where}.param_groups has {len(groups)} groups, expected {len(expected)}")
    by_id: list[tuple[Shape, bool]] = []  # each parameter's shape, and whether amsgrad is on
    for index, (group, group_shapes) in enumerate(zip(groups, expected, strict=True)):
        ids = range(len(by_id), len(by_id) + len(group_shapes))
        amsgrad = _param_group(group, ids, f"{where}.param_groups[{index}]")
        by_id += [(shape, amsgrad) for shape in group_shapes]
    _adam_state(_required(optimizer, "state", f"{where}."), by_id, f"{where}.state")


def _param_group(value: Any, ids: range, where: str) -> bool:
    """Check one parameter group; whether it uses amsgrad (which keeps one more moment)."""
    group = _mapping(value, where)
    params = _required(group, "params", f"{where}.")
    if not (isinstance(params, list) and all(_is(i, int) for i in params) and params == list(ids)):
        raise _Damaged(f"{where}.params does not list parameters {ids.start} to {ids.stop - 1}")
    for key in ("lr", "eps", "weight_decay"):
        _finite(_required(group, key, f"{where}."), f"{where}.{key}")
    betas = _required(group, "betas", f"{where}.")
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2):
        raise _Damaged(f"{where}.betas is {_describe(betas)}, expected two numbers")
    for index, beta in enumerate(betas):
        _finite(beta, f"{where}.betas[{index}]")
    for key, kind in _GROUP_FLAGS.items():
        if key in group:
            _expect(group[key], kind, f"{where}.{key}")
    for key in _GROUP_OFF:
        if group.get(key, False) is not False:
            raise _Damaged(f"{where}.{key} is {_describe(group[key])}, expected False")
    return bool(group.get("amsgrad", False))


def _adam_state(value: Any, by_id: list[tuple[Shape, bool]], where: str) -> None:
    """Per parameter: its step count and moments, each moment of the parameter's shape."""
    state = _mapping(value, where)
    for key, entry in state.items():
        if not _is(key, int) or not 0 <= key < len(by_id):
            raise _Damaged(f"{where} has an entry for no parameter ({_describe(key)})")
        shape, amsgrad = by_id[key]
        entry = _mapping(entry, f"{where}[{key}]")
        step = _required(entry, "step", f"{where}[{key}].")
        if isinstance(step, torch.Tensor):  # a float32 scalar; older torch saved a number
            step = _tensor(step, f"{where}[{key}].step", shape=(), floating=True).item()
        _finite(step, f"{where}[{key}].step", low=0.0)
        moments = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        for name in moments:
            moment = _required(entry, name, f"{where}[{key}].")
            _tensor(moment, f"{where}[{key}].{name}", shape=shape, floating=True)
