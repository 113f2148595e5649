"""What the attacker does to the shared photos before training: JPEG, resizing, blur, screenshots."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter
from torch import Tensor

from guard_core import ops

from ..errors import PhotoGuardError
from .task import ImageSet

__all__ = ["POSTPROCESS", "postprocess", "postprocess_sets", "to_pil"]


def to_pil(x: Tensor) -> Image.Image:
    return Image.fromarray(ops.to_uint8(x))


def _tensor(im: Image.Image) -> Tensor:
    return ops.from_uint8(np.asarray(im.convert("RGB")))


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def f(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue()))

    return f


def _resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)


POSTPROCESS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg50": _jpeg(50),
    "jpeg75": _jpeg(75),
    "jpeg90": _jpeg(90),
    "resize0.5": _resize(0.5),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(1.0)),
    # a phone screenshot of the photo shown smaller, shared again as JPEG
    "screenshot": lambda im: _jpeg(85)(_resize(0.8)(im)),
}


def postprocess(images: ImageSet, name: str | None) -> ImageSet:
    if not name:
        return images
    if name not in POSTPROCESS:
        raise PhotoGuardError(f"unknown post-processing {name!r}; known: {', '.join(POSTPROCESS)}")
    return [_tensor(POSTPROCESS[name](to_pil(x))) for x in images]


def postprocess_sets(sets: list[ImageSet], name: str) -> list[ImageSet]:
    return [postprocess(s, name) for s in sets]
