"""Choosing the torch device and describing it in result records."""

from __future__ import annotations

import functools
import platform
import re
import warnings
from pathlib import Path

import torch

from mvbench.errors import MvbenchError

PRECISIONS = ("fp32", "bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MvbenchError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MvbenchError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MvbenchError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA "
                               f"device(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise MvbenchError("device 'mps' requested but MPS is not available; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise MvbenchError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def check_precision(precision: str, device: torch.device | None = None) -> str:
    if precision not in PRECISIONS:
        raise MvbenchError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device is not None and device.type == "cpu" and not cpu_has_bf16():
        warnings.warn("this CPU has no native bf16 instructions (avx512_bf16/amx_bf16): bf16 is "
                      "emulated and several times slower than fp32 here; use --precision fp32",
                      RuntimeWarning, stacklevel=2)
    return precision


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bf16 natively (x86 flags; other platforms are assumed to)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_bf16" in flags or "amx_bf16" in flags or "flags" not in flags


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_name(device: torch.device) -> str:
    """The model of the hardware ``device`` runs on: the GPU's name, or the CPU's model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_model()


def device_name(device: torch.device) -> str:
    """A human-readable name of the hardware, for provenance: on CPU the model and the torch
    thread count, the two things besides the code that decide how floats round."""
    name = hardware_name(device)
    return f"{name} ({torch.get_num_threads()} threads)" if device.type == "cpu" else name


def hardware_of(recorded_device_name: str) -> str:
    """The hardware model in a record's ``device_name`` (:func:`device_name`'s thread count cut off)."""
    return re.sub(r" \(\d+ threads\)$", "", recorded_device_name)
