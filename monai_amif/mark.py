"""The copyright mark that unauthorised outputs carry.

The mark is owner text rendered with Pillow as a diagonal tiled pattern. It comes as two arrays:

* ``mask`` M in {0, 1}: where the mark is drawn (letter strokes *and* their dark outline);
* ``intensity`` W in [0, 1]: the grey level drawn there (white letters, black outline, so it reads on any tissue).

Strokes are opaque (the output equals W inside M): a semi-transparent mark with a known template could be removed
exactly by arithmetic, an opaque one leaves nothing of the fusion under it to recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = ["MarkSpec", "render_mark", "template_at", "compose_mark"]


@dataclass(frozen=True)
class MarkSpec:
    """What the mark says and how it is laid out (fixed at training time, stored with the weights)."""

    text: str = "\u00a9 AMIF demo \u00b7 unlicensed"
    size: int = 256
    font_size: int = 17
    angle: float = 30.0
    line_spacing: float = 3.2  # in font heights between tiled rows
    outline: int = 1  # dark outline width in pixels

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def render_mark(spec: MarkSpec = MarkSpec()) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``(mask, intensity)``, each ``[1, 1, size, size]`` float32.

    The text is tiled on a canvas twice the size, rotated by ``spec.angle`` and centre-cropped, so the pattern covers
    the whole image evenly whatever the text length.
    """
    big = spec.size * 2
    font = ImageFont.load_default(size=spec.font_size)
    # Two layers: "ink" (letters + outline -> mask) and "fill" (letters only -> white in W).
    ink, fill = Image.new("L", (big, big), 0), Image.new("L", (big, big), 0)
    d_ink, d_fill = ImageDraw.Draw(ink), ImageDraw.Draw(fill)
    left, top, right, bottom = d_ink.textbbox((0, 0), spec.text + "   ", font=font, stroke_width=spec.outline)
    w, h = right - left, bottom - top
    w, h, step = int(w), int(h), int(h * spec.line_spacing)
    for row, y in enumerate(range(-h, big + h, step)):
        offset = (row % 2) * w // 2  # brick layout: alternate rows shifted by half a word
        for x in range(-w + offset, big + w, w):
            d_ink.text((x, y), spec.text, font=font, fill=255, stroke_width=spec.outline, stroke_fill=255)
            d_fill.text((x, y), spec.text, font=font, fill=255)
    crop = ((big - spec.size) // 2, (big - spec.size) // 2, (big + spec.size) // 2, (big + spec.size) // 2)
    ink = ink.rotate(spec.angle, resample=Image.Resampling.NEAREST).crop(crop)
    fill = fill.rotate(spec.angle, resample=Image.Resampling.NEAREST).crop(crop)
    mask = (np.asarray(ink) > 127).astype(np.float32)
    intensity = ((np.asarray(fill) > 127) & (mask > 0)).astype(np.float32)
    return torch.from_numpy(mask)[None, None], torch.from_numpy(intensity)[None, None]


def template_at(template: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The stored ``[1, 2, S, S]`` (mask, intensity) template at ``h × w`` (nearest, so strokes stay crisp)."""
    if template.shape[-2:] == (h, w):
        return template
    return torch.nn.functional.interpolate(template, size=[h, w], mode="nearest")


def compose_mark(mask: torch.Tensor, intensity: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``M·W + (1 - M)·background``: the mark drawn, opaque, over ``background`` (all ``[B, 1, H, W]``)."""
    return mask * intensity + (1 - mask) * background
