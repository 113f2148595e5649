"""Device selection, autocast policy and seeding: the same code runs on CUDA when present, CPU otherwise."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from .errors import DeviceError

__all__ = ["resolve", "autocast_dtype", "autocast", "seed_everything"]


def resolve(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:N`` into a device; ``auto`` prefers CUDA.

    Raises:
        ValueError: for an unknown spec, or CUDA asked for where none is available.
    """
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA; ``None`` (full precision) elsewhere, where bf16 is slower or less exact."""
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[object]:
    """An autocast context following :func:`autocast_dtype`, or a no-op context."""
    dtype = autocast_dtype(device)
    if not enabled or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
