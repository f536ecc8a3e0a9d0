"""Picking the device: CUDA, then Apple MPS, then CPU; asking for an absent one is an error."""

from __future__ import annotations

import contextlib

import torch

from .errors import DeviceError


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """The torch.device for 'auto', 'cpu', 'cuda' (or 'cuda:N') or 'mps'."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name} was asked for, but no CUDA GPU is available")
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise DeviceError("--device mps was asked for, but Apple MPS is not available")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or mps")


def use_bf16(device: torch.device, precision: str) -> bool:
    """bf16 autocast on CUDA by default ('auto'); fp32 elsewhere unless asked."""
    if precision == "bf16":
        if device.type != "cuda":
            raise DeviceError("--precision bf16 needs a CUDA device")
        return True
    return precision == "auto" and device.type == "cuda"


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for, else nothing (fp32)."""
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
