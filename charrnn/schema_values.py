"""Small checks of the values read from a checkpoint, for checkpoint_schema and resume_schema.

Each raises Damaged saying in a few words what is wrong and where (`info.step is 'x', ...`);
checkpoint_schema turns that into one CheckpointError line naming the file.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import torch

Shape = tuple[int, ...]


class Damaged(Exception):
    """What is wrong, in a few words; checkpoint_schema names the file."""


def is_kind(value: Any, kind: type) -> bool:
    """isinstance, except that True is not an integer and an integer is a float too."""
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def describe(value: Any) -> str:
    """A value as a message shows it: short, on one line (repr escapes newlines)."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a {dtype} tensor of shape {tuple(value.shape)}"
    if is_kind(value, int) and value.bit_length() > 64:
        return "a huge integer"  # its repr may be thousands of digits, or refused by Python
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def expect(value: Any, hint: Any, where: str) -> None:
    """`value` is of the annotated type `hint` (int, float, str, bool, or one of them | None)."""
    kinds = typing.get_args(hint) or (hint,)
    if not any(is_kind(value, kind) for kind in kinds):
        expected = " or ".join(_KIND_NAMES.get(kind, "None") for kind in kinds)
        raise Damaged(f"{where} is {describe(value)}, expected {expected}")


def required(mapping: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in mapping:
        raise Damaged(f"no {where}{key}")
    return mapping[key]


def mapping(value: Any, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise Damaged(f"{where} is {describe(value)}, expected a dict")
    return value


def count(value: Any, where: str) -> None:
    # Below 2**63: counts end up in int64 tensors and seeds (a preview's seed is seed + step).
    if not is_kind(value, int) or not 0 <= value < 2**63:
        raise Damaged(f"{where} is {describe(value)}, expected an integer >= 0")


def finite(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> None:
    if not is_kind(value, float) or not math.isfinite(value) or not low <= value <= high:
        bounds = ""
        if math.isfinite(low):
            bounds = f" in [{low:g}, {high:g}]" if math.isfinite(high) else f" >= {low:g}"
        raise Damaged(f"{where} is {describe(value)}, expected a finite number{bounds}")


def loss(value: Any, where: str) -> None:
    if value is not None:
        finite(value, where)


def seconds(value: Any, where: str) -> None:
    finite(value, where, low=0.0)


def string(value: Any, where: str) -> None:
    expect(value, str, where)


def strings(value: Any, where: str) -> None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise Damaged(f"{where} is {describe(value)}, expected a list of strings")


def tensor(
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
        raise Damaged(f"{where} is {describe(value)}, expected a tensor")
    if shape is not None and tuple(value.shape) != shape:
        raise Damaged(f"{where} has shape {tuple(value.shape)}, expected {shape}")
    if (dtype is not None and value.dtype != dtype) or (floating and not value.is_floating_point()):
        expected = str(dtype).removeprefix("torch.") if dtype else "floating point"
        raise Damaged(f"{where} is {describe(value)}, expected {expected}")
    return value
