"""Differentiable image ops shared by losses, metrics and attacks.

Thin, typed wrappers over kornia where kornia has the op, so every caller gets one convention:
images are float tensors ``[B, C, H, W]``; intensities are in ``[0, 1]`` unless a ``data_range`` says otherwise.
Functions only: the module twins nobody used are gone (kornia ships modules where a pipeline needs one).
"""

from __future__ import annotations

from collections.abc import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .jpeg_codec import jpeg_round_trip

__all__ = [
    "to_uint8",
    "from_uint8",
    "sobel_gradients",
    "sobel_magnitude",
    "ssim",
    "ssim_map",
    "ssim_to",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "jpeg",
    "gaussian_blur",
    "resize",
    "crop",
    "center_crop",
]


def sobel_gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Horizontal and vertical 3×3 Sobel responses (unnormalised, replicate padding).

    Args:
        image: ``[B, C, H, W]``.
    Returns:
        ``(gx, gy)``, each ``[B, C, H, W]``.
    """
    grads = kornia.filters.spatial_gradient(image, mode="sobel", order=1, normalized=False)
    return grads[:, :, 0], grads[:, :, 1]


def sobel_magnitude(image: Tensor, eps: float = 1e-6) -> Tensor:
    """Sobel gradient magnitude ``sqrt(gx² + gy² + eps)``; ``eps`` keeps the gradient finite on flat areas.

    Args:
        image: ``[B, C, H, W]``.
    Returns:
        ``[B, C, H, W]``.
    """
    gx, gy = sobel_gradients(image)
    return torch.sqrt(gx * gx + gy * gy + eps)


def ssim_map(x: Tensor, y: Tensor, data_range: float, window_size: int = 11) -> Tensor:
    """Local SSIM with a Gaussian window (σ 1.5), valid region only (as scikit-image reports it).

    The same numbers as ``kornia.metrics.ssim(..., padding="valid")`` (the tests hold them equal), computed with one
    separable filtering of the five moments stacked, channels-last, and no padding: kornia filters each moment on its
    own with reflect padding it then crops away, which made SSIM, forward and backward, 37-41 ms of a ~150 ms
    protection step on a 250×250 photo (11-14 ms this way; benchmarks/ops_speed.py, docs/photo_guard.md).

    Args:
        x, y: ``[B, C, H, W]`` with the same ``data_range``.
        data_range: max - min of the intensity scale (1 for ``[0, 1]``, 255 for 8-bit), always explicit.
    Returns:
        ``[B, C, H - window_size + 1, W - window_size + 1]``.
    """
    mu1, mu2, xx, yy, xy = _local_means(torch.cat([x, y, x * x, y * y, x * y], 1), window_size).chunk(5, 1)
    return _ssim_of_moments(mu1, mu2, xx, yy, xy, data_range)


def ssim(x: Tensor, y: Tensor, data_range: float, window_size: int = 11) -> Tensor:
    """Mean SSIM per image (Gaussian 11, σ 1.5).

    Args:
        x, y: ``[B, C, H, W]``.
    Returns:
        ``[B]``.
    """
    return ssim_map(x, y, data_range, window_size).flatten(1).mean(1)


def ssim_to(y: Tensor, data_range: float, window_size: int = 11) -> Callable[[Tensor], Tensor]:
    """:func:`ssim` against a fixed reference, whose two moments are filtered once, here, instead of on every call.

    A protection measures each step's photo against the same clean photo: filtering three moments a call instead of
    five, forward and backward, takes ×0.64 of :func:`ssim`'s time on a 250×250 face on one core (as a protection's
    branch runs it) and ×0.75 on two (benchmarks/ops_speed.py), with the same value and gradient to the last bit
    (tests/guard_core/test_ops.py).

    Args:
        y: the reference ``[B, C, H, W]`` (its gradient is not followed: the moments are taken without autograd).
    Returns:
        a function ``x [B, C, H, W]`` -> mean SSIM ``[B]``, equal to ``ssim(x, y, data_range, window_size)``.
    """
    with torch.no_grad():
        mu2, yy = _local_means(torch.cat([y, y * y], 1), window_size).chunk(2, 1)

    def against(x: Tensor) -> Tensor:
        mu1, xx, xy = _local_means(torch.cat([x, x * x, x * y], 1), window_size).chunk(3, 1)
        return _ssim_of_moments(mu1, mu2, xx, yy, xy, data_range).flatten(1).mean(1)

    return against


def _local_means(moments: Tensor, window_size: int) -> Tensor:
    """Each channel filtered by the Gaussian window (σ 1.5), valid region only: one separable pass, channels-last."""
    kernel = kornia.filters.get_gaussian_kernel1d(window_size, 1.5, device=moments.device, dtype=moments.dtype)
    moments = moments.contiguous(memory_format=torch.channels_last)
    n = moments.shape[1]
    moments = F.conv2d(moments, kernel.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
    moments = F.conv2d(moments, kernel.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)
    return moments.contiguous()


def _ssim_of_moments(mu1: Tensor, mu2: Tensor, xx: Tensor, yy: Tensor, xy: Tensor, data_range: float) -> Tensor:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu12, mu1_sq, mu2_sq = mu1 * mu2, mu1 * mu1, mu2 * mu2
    num = (2.0 * mu12 + c1) * (2.0 * (xy - mu12) + c2)
    den = (mu1_sq + mu2_sq + c1) * ((xx - mu1_sq) + (yy - mu2_sq) + c2)
    return num / (den + 1e-12)


def rgb_to_ycbcr(image: Tensor) -> Tensor:
    """Full-range BT.601 (JPEG) RGB -> YCbCr, ``[B, 3, H, W]`` in ``[0, 1]``; Cb/Cr centred on 0.5."""
    return kornia.color.rgb_to_ycbcr(image)


def ycbcr_to_rgb(image: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr`, ``[B, 3, H, W]``."""
    return kornia.color.ycbcr_to_rgb(image)


def jpeg(image: Tensor, quality: float | Tensor) -> Tensor:
    """Differentiable JPEG round trip as libjpeg codes it at 4:2:0 (:mod:`guard_core.jpeg_codec`; straight-through
    rounding).

    Any size is accepted: the image is replicate-padded to a multiple of 16 (the 4:2:0 macro-block) and cropped back,
    as an encoder pads the last block row/column.

    Args:
        image: ``[B, 3, H, W]`` RGB in ``[0, 1]``; grey ``[B, 1, H, W]`` is coded as RGB and averaged back.
        quality: JPEG quality 1-100, a float or a ``[B]`` tensor.
    Returns:
        ``[B, C, H, W]`` in ``[0, 1]``.
    """
    grey = image.shape[1] == 1
    rgb = image.expand(-1, 3, -1, -1) if grey else image
    h, w = rgb.shape[-2:]
    ph, pw = (-h) % 16, (-w) % 16
    if ph or pw:
        rgb = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
    q = torch.as_tensor(quality, dtype=rgb.dtype, device=rgb.device).expand(rgb.shape[0]).contiguous()
    out = jpeg_round_trip(rgb * 255, q)[..., :h, :w] / 255
    return out.mean(1, keepdim=True) if grey else out


def gaussian_blur(image: Tensor, sigma: float, kernel_size: int | None = None) -> Tensor:
    """Gaussian blur with reflect padding; ``kernel_size`` defaults to the odd size covering ±3σ.

    Args:
        image: ``[B, C, H, W]``.
    """
    if kernel_size is None:
        kernel_size = 2 * max(1, int(round(3 * sigma))) + 1
    return kornia.filters.gaussian_blur2d(
        image, (kernel_size, kernel_size), (float(sigma), float(sigma)), border_type="reflect"
    )


def resize(image: Tensor, size: tuple[int, int], antialias: bool = True) -> Tensor:
    """Bilinear resize to ``size = (H, W)``, antialiased when shrinking (PIL's triangle filter widened by the scale).

    torch's own kernel, not kornia's Gaussian pre-blur: × 0.04 of the time bringing a 12-MP photo to the working size,
    × 0.18 forward+backward halving a 250-px face, and closer to PIL's ``BILINEAR`` (0.24 against 0.83 levels of 255
    on average; benchmarks/ops_speed.py).

    Args:
        image: ``[B, C, H, W]``. Returns ``[B, C, *size]``.
    """
    h, w = int(size[0]), int(size[1])
    # Growing, the antialiased kernel gives plain bilinear's numbers (to 1e-7) at 2.5x the time forward+backward.
    antialias = antialias and (h < image.shape[-2] or w < image.shape[-1])
    return F.interpolate(image, size=(h, w), mode="bilinear", antialias=antialias)


def crop(image: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """Crop a window (gradients flow to the cropped pixels only). Returns ``[B, C, height, width]``."""
    if top < 0 or left < 0 or top + height > image.shape[-2] or left + width > image.shape[-1]:
        raise ValueError(f"crop window {(top, left, height, width)} lies outside the image {tuple(image.shape[-2:])}")
    return image[..., top : top + height, left : left + width]


def center_crop(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Central window of ``size = (H, W)`` at integer offsets ``(dim - size) // 2``, as image processors crop."""
    h, w = size
    return crop(image, (image.shape[-2] - h) // 2, (image.shape[-1] - w) // 2, h, w)


def to_uint8(image: Tensor) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] -> ``[H, W, C]`` uint8 (rounded), what an 8-bit file holds; ``C = 1`` gives
    ``[H, W]``."""
    u8 = image.detach().mul(255).round_().clamp_(0, 255).to(torch.uint8).cpu()  # one float copy (12-MP photos)
    return u8[0].numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()


def from_uint8(array: np.ndarray) -> Tensor:
    """``[H, W(, C)]`` uint8 (or 16-bit, scaled by its dtype's maximum) -> ``[C, H, W]`` float32 in [0, 1]."""
    scale = float(np.iinfo(array.dtype).max) if array.dtype.kind == "u" else 1.0
    # Channels first in the source's own dtype (a cheap copy), then one float copy divided in place: a 12-MP photo
    # is not copied as floats two or three times.
    x = np.ascontiguousarray(np.moveaxis(array, -1, 0) if array.ndim == 3 else array[None]).astype(np.float32)
    x /= scale
    return torch.from_numpy(x)
