"""The training state a last.pt holds for --resume, checked against what training restores.

training._Run._restore reads it: AdamW's state_dict, the CPU, CUDA and data RNG states (and under
torchrun those of ranks 1 and up), the hidden state carried between stateful windows, and the
counters, and --ema's average of the weights. Each is checked deeply enough that a
damaged one is refused at load, in one line, instead of failing inside torch on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import schema_values as check
from .config import ModelConfig
from .model import decays, parameter_shapes
from .schema_values import Shape

_TRAINING_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "step": check.count,
    "best_val_loss": check.loss,
    "last_val_loss": check.loss,
    "evals_since_best": check.count,
    "elapsed_s": check.seconds,
    "schedule_progress": lambda value, where: check.finite(value, where, 0.0, 1.0),
}


def check_training_state(value: Any, config: ModelConfig) -> dict[str, Any] | None:
    """The saved training state (None when there is none); Damaged says what is wrong."""
    if value is None:
        return None
    state = check.mapping(value, "training")
    if not state:
        return None  # nothing to resume from; training says so when asked to resume
    for key in ("optimizer", "rng_cpu", "rng_data", "step"):
        check.required(state, key, "training.")
    for key, check_field in _TRAINING_FIELDS.items():
        if key in state:
            check_field(state[key], f"training.{key}")
    _optimizer(state["optimizer"], list(parameter_shapes(config).values()))
    _generator_state(state["rng_cpu"], "training.rng_cpu")
    _generator_state(state["rng_data"], "training.rng_data")
    if state.get("rng_cuda") is not None:
        _cuda_generator_state(state["rng_cuda"], "training.rng_cuda")
    if "rng_ranks" in state:
        _rank_generator_states(state["rng_ranks"])
    _carried_state(state.get("carried_state"), config)
    if "average" in state:
        _average(state["average"], parameter_shapes(config))
    return state


def _average(value: Any, shapes: dict[str, Shape]) -> None:
    """--ema's average of the weights (averaging.py): one tensor per parameter, and a count."""
    where = "training.average"
    average = check.mapping(value, where)
    check.count(check.required(average, "updates", f"{where}."), f"{where}.updates")
    weights = check.mapping(check.required(average, "weights", f"{where}."), f"{where}.weights")
    if set(weights) != set(shapes):
        raise check.Damaged(
            f"{where}.weights does not hold the model's {len(shapes)} parameters by name"
        )
    for name, shape in shapes.items():
        check.tensor(weights[name], f"{where}.weights.{name}", shape=shape, floating=True)


def _rank_generator_states(value: Any) -> None:
    """A torchrun run's RNG states of ranks 1 and up: per rank, its CPU and CUDA states."""
    where = "training.rng_ranks"
    if not isinstance(value, (list, tuple)):
        raise check.Damaged(f"{where} is {check.describe(value)}, expected a list")
    for index, item in enumerate(value):
        entry = check.mapping(item, f"{where}[{index}]")
        cpu = check.required(entry, "cpu", f"{where}[{index}].")
        _generator_state(cpu, f"{where}[{index}].cpu")
        if entry.get("cuda") is not None:
            _cuda_generator_state(entry["cuda"], f"{where}[{index}].cuda")


def _generator_state(value: Any, where: str) -> None:
    tensor = check.tensor(value, where, dtype=torch.uint8)
    # Setting it on a throwaway generator is torch's own check (size, and a valid Mersenne
    # Twister state), and leaves the global one alone.
    try:
        torch.Generator().set_state(tensor)
    except RuntimeError as problem:
        reason = str(problem).splitlines()[0] if str(problem) else "refused by torch"
        raise check.Damaged(f"{where} is not a random generator state ({reason})") from None


def _cuda_generator_state(value: Any, where: str) -> None:
    # A CUDA generator's state is its seed then its Philox offset, 8 bytes each (the offset may be
    # left out), and torch requires the offset to be a multiple of 4. Checked by hand: trying it
    # on a CUDA generator would start CUDA just to read a file.
    tensor = check.tensor(value, where, dtype=torch.uint8)
    if tensor.dim() != 1 or tensor.numel() not in (8, 16):
        raise check.Damaged(f"{where} has shape {tuple(tensor.shape)}, expected (16,)")
    if tensor.numel() == 16 and int(tensor[8]) % 4:
        raise check.Damaged(f"{where} has a Philox offset that is not a multiple of 4")


def _carried_state(value: Any, config: ModelConfig) -> None:
    """The hidden state carried between stateful windows: (layers, streams, hidden) tensors."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return
    where, count = "training.carried_state", 2 if config.cell == "lstm" else 1
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise check.Damaged(
            f"{where} is {check.describe(value)}, expected {count} tensor(s) for {config.cell}"
        )
    layers, hidden = config.num_layers, config.hidden_size
    streams = None  # depends on the corpus, so training checks it; here: the same in each tensor
    for index, item in enumerate(value):
        tensor = check.tensor(item, f"{where}[{index}]", floating=True)
        streams = streams or (tensor.shape[1] if tensor.dim() == 3 else None)
        if tensor.dim() != 3 or tuple(tensor.shape) != (layers, streams, hidden) or not streams:
            raise check.Damaged(
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
    optimizer = check.mapping(value, where)
    groups = check.required(optimizer, "param_groups", f"{where}.")
    # AdamW numbers the parameters group by group: the decayed matrices, then the rest.
    expected = [[s for s in shapes if decays(s)], [s for s in shapes if not decays(s)]]
    if not isinstance(groups, (list, tuple)):
        raise check.Damaged(f"{where}.param_groups is {check.describe(groups)}, expected a list")
    if len(groups) != len(expected):
        raise check.Damaged(
            f"{where}.param_groups has {len(groups)} groups, expected {len(expected)}"
        )
    by_id: list[tuple[Shape, bool]] = []  # each parameter's shape, and whether amsgrad is on
    for index, (group, group_shapes) in enumerate(zip(groups, expected, strict=True)):
        ids = range(len(by_id), len(by_id) + len(group_shapes))
        amsgrad = _param_group(group, ids, f"{where}.param_groups[{index}]")
        by_id += [(shape, amsgrad) for shape in group_shapes]
    _adam_state(check.required(optimizer, "state", f"{where}."), by_id, f"{where}.state")


def _param_group(value: Any, ids: range, where: str) -> bool:
    """Check one parameter group; whether it uses amsgrad (which keeps one more moment)."""
    group = check.mapping(value, where)
    params = check.required(group, "params", f"{where}.")
    if not (
        isinstance(params, list)
        and all(check.is_kind(i, int) for i in params)
        and params == list(ids)
    ):
        raise check.Damaged(
            f"{where}.params does not list parameters {ids.start} to {ids.stop - 1}"
        )
    for key in ("lr", "eps", "weight_decay"):
        check.finite(check.required(group, key, f"{where}."), f"{where}.{key}")
    betas = check.required(group, "betas", f"{where}.")
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2):
        raise check.Damaged(f"{where}.betas is {check.describe(betas)}, expected two numbers")
    for index, beta in enumerate(betas):
        check.finite(beta, f"{where}.betas[{index}]")
    for key, kind in _GROUP_FLAGS.items():
        if key in group:
            check.expect(group[key], kind, f"{where}.{key}")
    for key in _GROUP_OFF:
        if group.get(key, False) is not False:
            raise check.Damaged(f"{where}.{key} is {check.describe(group[key])}, expected False")
    return bool(group.get("amsgrad", False))


def _adam_state(value: Any, by_id: list[tuple[Shape, bool]], where: str) -> None:
    """Per parameter: its step count and moments, each moment of the parameter's shape."""
    state = check.mapping(value, where)
    for key, entry in state.items():
        if not check.is_kind(key, int) or not 0 <= key < len(by_id):
            raise check.Damaged(f"{where} has an entry for no parameter ({check.describe(key)})")
        shape, amsgrad = by_id[key]
        entry = check.mapping(entry, f"{where}[{key}]")
        step = check.required(entry, "step", f"{where}[{key}].")
        if isinstance(step, torch.Tensor):  # a float32 scalar; older torch saved a number
            step = check.tensor(step, f"{where}[{key}].step", shape=(), floating=True).item()
        check.finite(step, f"{where}[{key}].step", low=0.0)
        moments = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        for name in moments:
            moment = check.required(entry, name, f"{where}[{key}].")
            check.tensor(moment, f"{where}[{key}].{name}", shape=shape, floating=True)
