"""A differentiable JPEG round trip that follows libjpeg's baseline codec step by step (4:2:0, quality tables).

Each place libjpeg rounds to an integer (colour conversion, chroma down- and upsampling, quantisation, the inverse
DCT's output) is rounded here too, with the straight-through gradient (identity); each place it clamps to 0-255 is a
clamp. Forward, the result is on average within half a level of Pillow's decoded file (0.42-0.55 levels at quality 50-90
on LFW photos carrying a protection's perturbation; libjpeg's DCTs are integer approximations of the exact ones used
here); backward, the gradient flows as if the codec kept everything it passes on (tests/guard_core/test_jpeg_codec.py,
benchmarks/ops_speed.py).

kornia's differentiable codec, which this replaces, differs from libjpeg in three places, which made a protection
optimised through it answer a JPEG that no encoder writes: its chroma is Gaussian-blurred before halving (libjpeg takes
the 2×2 mean), its rounding is ``round(x) + (x − round(x))³`` in the forward pass too, and its quantisation tables are
the integer tables ± up to 0.125 (a differentiable floor). Its backward was also 24 of its 35 ms per 250×250 photo
(scratch timing; ``benchmarks/ops_speed.py``: the whole round trip 25.9 ms against this one's 9.2).
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["jpeg_round_trip", "quality_tables"]

# ITU-T T.81 Annex K, the tables libjpeg scales by quality (luminance, chrominance).
_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
]
_CHROMA = [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99]]
_CHROMA += [[47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4

# JFIF's full-range BT.601 conversion, in 0-255 samples (chroma centred on 128).
_TO_YCBCR = [[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]]
_TO_RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136286, -0.714136286], [1.0, 1.772, 0.0]]


def quality_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """libjpeg's ``jpeg_set_quality`` tables: ``quality [B]`` (1-100, fractions allowed) -> luma, chroma ``[B, 8, 8]``.

    ``scale = 5000 / q`` below 50, ``200 − 2q`` from 50; each entry ``⌊(base · scale + 50) / 100⌋`` clamped to 1-255.
    """
    q = quality.clamp(1, 100)[:, None, None]
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    base = torch.tensor([_LUMA, _CHROMA], dtype=quality.dtype, device=quality.device)  # [2, 8, 8]
    tables = ((base[None] * scale[:, None] + 50) / 100).floor().clamp(1, 255)
    return tables[:, 0], tables[:, 1]


def jpeg_round_trip(image: Tensor, quality: Tensor) -> Tensor:
    """Encode and decode as libjpeg does at 4:2:0: ``image [B, 3, H, W]`` RGB in 0-255, H and W multiples of 16,
    ``quality [B]`` -> ``[B, 3, H, W]`` in 0-255 (differentiable; :func:`guard_core.ops.jpeg` pads and scales)."""
    if image.dim() != 4 or image.shape[1] != 3 or image.shape[-2] % 16 or image.shape[-1] % 16:
        raise ValueError(f"expected [B, 3, H, W] with H and W multiples of 16, got {list(image.shape)}")
    luma_q, chroma_q = quality_tables(quality)
    ycc = _round(_clamp(_mix(image, _TO_YCBCR) + _chroma_offset(image)))
    y, cbcr = ycc[:, :1], ycc[:, 1:]
    cbcr = _round(F.avg_pool2d(cbcr, 2))  # libjpeg's h2v2 downsampling: the 2×2 mean
    y = _code_blocks(y, luma_q)
    cbcr = _code_blocks(cbcr, chroma_q)
    # "Fancy" h2v2 upsampling: 9/16, 3/16, 3/16, 1/16 of the nearest four chroma samples, i.e. bilinear at half-pixel
    # centres with the edges replicated.
    cbcr = _round(F.interpolate(cbcr, scale_factor=2.0, mode="bilinear", align_corners=False))
    ycc = torch.cat([y, cbcr], 1) - _chroma_offset(image)
    return _round(_clamp(_mix(ycc, _TO_RGB)))


def _code_blocks(planes: Tensor, table: Tensor) -> Tensor:
    """Level shift, 8×8 DCT, quantise and dequantise by ``table [B, 8, 8]``, inverse DCT, round and clamp."""
    b, c, h, w = planes.shape
    blocks = (planes - 128).reshape(b, c, h // 8, 8, w // 8, 8).transpose(3, 4)  # [B, C, H/8, W/8, 8, 8]
    d = _dct_matrix(planes.dtype, planes.device)
    coef = d @ blocks @ d.T
    t = table[:, None, None, None]
    coef = _round(coef / t) * t
    blocks = d.T @ coef @ d
    out = blocks.transpose(3, 4).reshape(b, c, h, w) + 128
    return _round(_clamp(out))


@cache
def _dct_matrix(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The orthonormal 8-point DCT-II, which is JPEG's ``F(u, v) = ¼ C(u) C(v) Σ Σ f cos cos`` in 2-D."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None] + 1) * k[:, None] * math.pi / 16) * 0.5
    d[0] = math.sqrt(1 / 8)
    return d.to(dtype=dtype, device=device)


def _mix(image: Tensor, matrix: list[list[float]]) -> Tensor:
    m = torch.tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,bjhw->bihw", m, image)


def _chroma_offset(image: Tensor) -> Tensor:
    return torch.tensor([0.0, 128.0, 128.0], dtype=image.dtype, device=image.device).view(1, 3, 1, 1)


def _round(x: Tensor) -> Tensor:
    """Round to the nearest integer forward; the identity backward (straight-through)."""
    return x + (x.round() - x).detach()


def _clamp(x: Tensor) -> Tensor:
    return x.clamp(0, 255)
