"""A tiny differentiable encoder and small photos, so photo_guard's engine is tested in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from photo_guard import encoders as registry
from photo_guard.encoders.base import Encoder


class TinyEncoder(Encoder):
    """A fixed random conv net: enough structure for a perturbation to move its embedding."""

    name = "tiny"
    input_size = (64, 64)

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = torch.nn.Conv2d(3, 16, 5, stride=2)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, stride=2)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.3
            p.requires_grad_(False)
        # Centre on the mean embedding of random smooth images, as the shipped encoders are centred.
        ref = torch.nn.functional.interpolate(torch.rand(32, 3, 6, 8, generator=g), size=(48, 64), mode="bicubic")
        with torch.no_grad():
            self.reference_mean = self(ref.clamp(0, 1)).mean(0)

    def preprocess(self, images, align=None):
        return torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False) - 0.5

    def features(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3))


@pytest.fixture
def tiny_encoder(monkeypatch):
    monkeypatch.setitem(registry.ENCODERS, "tiny", TinyEncoder)
    monkeypatch.setitem(registry.ENCODERS, "tiny2", lambda: _named(TinyEncoder(1), "tiny2"))
    registry._CACHE.pop("tiny", None)
    registry._CACHE.pop("tiny2", None)
    return TinyEncoder()


def _named(enc, name):
    enc.name = name
    return enc


def make_photo(path, seed=0, size=(48, 64), fmt=None, **save):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3)).astype(np.uint8)
    im = Image.fromarray(base).resize((size[1], size[0]), Image.BICUBIC)
    im.save(path, format=fmt, **save)
    return path


def smooth_photos(n: int = 4, size: tuple[int, int] = (48, 64)) -> list[torch.Tensor]:
    """``n`` smooth random photos ``[3, H, W]`` in [0, 1] (bicubic from an eighth of the size), the same every call."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(n, 3, size[0] // 8, size[1] // 8, generator=g)
    return list(torch.nn.functional.interpolate(base, size=size, mode="bicubic", align_corners=False).clamp(0, 1))
