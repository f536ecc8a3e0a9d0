"""Picking the device: CUDA, then Apple MPS, then CPU; asking for an absent one is an error."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys

import torch

from .config import CPU_BF16_MIN_HIDDEN, ModelConfig
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


# Native bf16 matrix units: AVX512-BF16 or AMX on x86 (Linux /proc/cpuinfo flags), BF16 on Arm
# (the "bf16" feature; on macOS the sysctl below). Where the CPU lacks them, oneDNN emulates bf16
# and it runs slower than fp32, so bf16 on such a CPU is refused rather than silently slow.
_X86_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware and torch's oneDNN can use it.

    CHARRNN_CPU_BF16=0 or 1 overrides the detection (for tests, and for a CPU it gets wrong).
    """
    forced = os.environ.get("CHARRNN_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    return bool(flags & _X86_BF16_FLAGS) or "bf16" in flags
    except OSError:
        pass
    if sys.platform == "darwin":
        probe = subprocess.run(
            ["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True
        )
        return probe.stdout.strip() == "1"
    return False


def use_bf16(device: torch.device, precision: str, model: ModelConfig | None = None) -> bool:
    """Whether to run in bf16 autocast: 'bf16' asks for it (CUDA, or a CPU with bf16 matrix
    units), 'auto' takes it on CUDA, and on such a CPU for a model whose layers are at least
    CPU_BF16_MIN_HIDDEN[cell] wide (None: no size rule), where it was measured faster."""
    if precision == "bf16":
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
            return True
        if device.type == "cpu":
            raise DeviceError(
                "--precision bf16 needs a CPU with bf16 matrix units (AVX512-BF16 or AMX on x86, "
                "BF16 on Arm), and this one has none; use fp32"
            )
        raise DeviceError(f"--precision bf16 needs a CUDA device or such a CPU, not {device.type}")
    if precision != "auto":
        return False
    if device.type == "cuda":
        return True
    big_enough = model is None or model.hidden_size >= CPU_BF16_MIN_HIDDEN[model.cell]
    return device.type == "cpu" and big_enough and cpu_has_bf16()


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for, else nothing (fp32)."""
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
