"""Image quality with explicit data ranges: PSNR and SSIM per image."""

from __future__ import annotations

import torch
from torch import Tensor

from . import ops

__all__ = ["psnr", "ssim", "linf"]


def psnr(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Peak signal-to-noise ratio in dB per image; ``inf`` for identical images.

    Args:
        x, y: ``[B, C, H, W]`` on the same scale, whose span is ``data_range`` (1 or 255, say).
    Returns:
        ``[B]``.
    """
    # A norm, not a mean of squares: accurate in float32 (it scales internally), no double copy of a 12-MP photo.
    d = (x.float() - y.float()).flatten(1)
    mse = torch.linalg.vector_norm(d, dim=1).double().pow(2) / d.shape[1]
    return (10 * torch.log10(data_range**2 / mse)).to(x.dtype if x.is_floating_point() else torch.float32)


def ssim(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Mean SSIM per image (Gaussian window 11, σ 1.5, valid region), ``[B]``; colour channels are averaged."""
    # One image at a time: the five moment maps of a whole batch of 512-px tiles leave the cache
    # (3x slower for 16 tiles of 512 px; benchmarks/ops_speed.py).
    return torch.cat([ops.ssim(a[None].float(), b[None].float(), data_range) for a, b in zip(x, y)])


def linf(x: Tensor, y: Tensor) -> Tensor:
    """Largest absolute difference per image, ``[B]``."""
    return (x - y).abs().flatten(1).amax(1)
