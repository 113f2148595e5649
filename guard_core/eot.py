"""Random, differentiable image transforms for expectation over transformation (EOT).

Each transform maps ``[B, C, H, W]`` in ``[0, 1]`` to the same shape and draws its randomness from an explicit
``torch.Generator`` so an optimisation with a seed is repeatable. They model what happens to a shared image:
re-encoding, rescaling, blurring, cropping, mirroring and re-alignment.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from . import ops

__all__ = [
    "Transform",
    "Identity",
    "RandomJPEG",
    "RandomResize",
    "RandomBlur",
    "RandomCrop",
    "RandomFlip",
    "RandomAlign",
    "default_transforms",
]


class Transform(Protocol):
    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * torch.rand((), generator=generator).item()


class Identity:
    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return image

    def __repr__(self) -> str:
        return "Identity()"


class RandomJPEG:
    """JPEG at a quality drawn uniformly from ``[low, high]``."""

    def __init__(self, low: float = 50, high: float = 95) -> None:
        self.low, self.high = low, high

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return ops.jpeg(image, _uniform(self.low, self.high, generator))

    def __repr__(self) -> str:
        return f"RandomJPEG({self.low}, {self.high})"


class RandomResize:
    """Down-scale by a factor in ``[low, high]`` and back: the detail a re-sized copy loses."""

    def __init__(self, low: float = 0.5, high: float = 1.0) -> None:
        self.low, self.high = low, high

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h, w = image.shape[-2:]
        s = _uniform(self.low, self.high, generator)
        small = ops.resize(image, (max(8, round(h * s)), max(8, round(w * s))))
        return ops.resize(small, (h, w), antialias=False)

    def __repr__(self) -> str:
        return f"RandomResize({self.low}, {self.high})"


class RandomBlur:
    """Gaussian blur with σ in ``[low, high]`` pixels."""

    def __init__(self, low: float = 0.3, high: float = 1.5) -> None:
        self.low, self.high = low, high

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return ops.gaussian_blur(image, _uniform(self.low, self.high, generator))

    def __repr__(self) -> str:
        return f"RandomBlur({self.low}, {self.high})"


class RandomCrop:
    """Crop a window of side fraction in ``[low, 1]`` at a random place and resize it back."""

    def __init__(self, low: float = 0.8) -> None:
        self.low = low

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h, w = image.shape[-2:]
        s = _uniform(self.low, 1.0, generator)
        ch, cw = max(8, round(h * s)), max(8, round(w * s))
        top = int(torch.randint(0, h - ch + 1, (), generator=generator))
        left = int(torch.randint(0, w - cw + 1, (), generator=generator))
        return ops.resize(ops.crop(image, top, left, ch, cw), (h, w))

    def __repr__(self) -> str:
        return f"RandomCrop({self.low})"


class RandomFlip:
    """Horizontal mirror with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return image.flip(-1) if torch.rand((), generator=generator).item() < self.p else image

    def __repr__(self) -> str:
        return f"RandomFlip({self.p})"


class RandomAlign:
    """Small similarity jitter (shift, rotation, scale), as a face recogniser's re-detection and re-alignment gives."""

    def __init__(self, shift: float = 0.05, degrees: float = 8.0, scale: float = 0.08) -> None:
        self.shift, self.degrees, self.scale = shift, degrees, scale

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, _, h, w = image.shape
        angle = math.radians(_uniform(-self.degrees, self.degrees, generator))
        s = 1.0 + _uniform(-self.scale, self.scale, generator)
        tx, ty = (_uniform(-self.shift, self.shift, generator) * 2 for _ in range(2))
        theta = torch.tensor(
            [[s * math.cos(angle), -s * math.sin(angle), tx], [s * math.sin(angle), s * math.cos(angle), ty]],
            dtype=image.dtype,
            device=image.device,
        )
        grid = torch.nn.functional.affine_grid(theta.expand(b, 2, 3), list(image.shape), align_corners=False)
        return torch.nn.functional.grid_sample(
            image, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def __repr__(self) -> str:
        return f"RandomAlign({self.shift}, {self.degrees}, {self.scale})"


def default_transforms() -> list[Transform]:
    """What a shared photo meets: JPEG 50-95, resize 0.4-0.75, blur, crop, flip (and no change at all).

    The resize draw sits around the half size a shared copy is usually cut to, not up to 1: a factor near 1 changes
    almost nothing, and photo_guard's perturbation drawn from 0.4-0.75 lost 14-17 points of protection to resize 0.5
    instead of 18-23 (docs/photo_guard.md, "The resize draw pulled toward the half size")."""
    return [Identity(), RandomJPEG(50, 95), RandomResize(0.4, 0.75), RandomBlur(), RandomCrop(0.8), RandomFlip()]
