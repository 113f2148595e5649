"""Fusion metrics with the conventions public fusion papers report, and AMIF's authorisation metrics.

Fusion metrics take grey images as float arrays in [0, 255] (``A`` = functional, ``B`` = MRI, ``F`` = fused; the
functional image converted to grey with BT.601 weights) and return one number per image. Definitions follow
``docs/design.md``; they reproduce the golden values in ``../shared/data/golden_metrics.md`` to 3 decimals (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity

from .losses import degrade

__all__ = [
    "en",
    "sd",
    "sf",
    "ag",
    "mi",
    "scd",
    "vif",
    "qabf",
    "ssim",
    "psnr",
    "cc",
    "FUSION_METRICS",
    "fusion_metrics",
    "to_grey_255",
    "mark_ncc",
    "mark_leak",
]


def to_grey_255(image: np.ndarray) -> np.ndarray:
    """8-bit image ``[H, W]`` or ``[H, W, 3]`` -> float32 grey in [0, 255] (BT.601 weights, rounded, as the
    evaluators do)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = np.round(image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114)
    return image.astype(np.float32)


def en(f: np.ndarray) -> float:
    """Shannon entropy (bits) of the 256-bin histogram over [0, 255]."""
    hist, _ = np.histogram(f, bins=256, range=(0, 255))
    p = hist / hist.sum()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def sd(f: np.ndarray) -> float:
    """Population standard deviation."""
    return float(np.std(f))


def sf(f: np.ndarray) -> float:
    """Spatial frequency: sqrt(mean squared row difference + mean squared column difference)."""
    f = f.astype(np.float64)
    return float(np.sqrt(np.mean(np.diff(f, axis=1) ** 2) + np.mean(np.diff(f, axis=0) ** 2)))


def ag(f: np.ndarray) -> float:
    """Average gradient: mean sqrt((Gx² + Gy²) / 2) with numpy-gradient differences (central, one-sided at edges)."""
    gy, gx = np.gradient(f.astype(np.float64))
    return float(np.mean(np.sqrt((gx**2 + gy**2) / 2)))


def _mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """I(X;Y) in nats, each distinct grey level a label (as sklearn's mutual_info_score)."""
    _, xi = np.unique(x.ravel(), return_inverse=True)
    _, yi = np.unique(y.ravel(), return_inverse=True)
    joint = np.bincount(xi * (yi.max() + 1) + yi, minlength=(xi.max() + 1) * (yi.max() + 1)).reshape(xi.max() + 1, -1)
    pxy = joint / joint.sum()
    px, py = pxy.sum(1, keepdims=True), pxy.sum(0, keepdims=True)
    nz = pxy > 0
    return float((pxy[nz] * (np.log(pxy[nz]) - np.log((px @ py)[nz]))).sum())


def mi(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """MI(F, A) + MI(F, B), natural log."""
    return _mutual_information(f, a) + _mutual_information(f, b)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def scd(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Sum of correlations of differences: r(F - B, A) + r(F - A, B)."""
    f, a, b = (v.astype(np.float64) for v in (f, a, b))
    return _corr(f - b, a) + _corr(f - a, b)


def cc(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Mean correlation coefficient (r(F, A) + r(F, B)) / 2."""
    f, a, b = (v.astype(np.float64) for v in (f, a, b))
    return (_corr(f, a) + _corr(f, b)) / 2


def _gaussian_window(n: int) -> np.ndarray:
    sd_ = n / 5.0
    r = (n - 1) / 2.0
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    h = np.exp(-(x * x + y * y) / (2 * sd_ * sd_))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def _vif_single(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0, eps: float = 1e-10) -> float:
    """Multiscale pixel-domain VIF of ``dist`` given ``ref`` (4 scales, Gaussian windows 17/9/5/3, σ = N/5)."""
    ref, dist = ref.astype(np.float64), dist.astype(np.float64)
    num = den = 0.0
    for scale in range(1, 5):
        win = _gaussian_window(2 ** (5 - scale) + 1)
        if scale > 1:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1, mu2 = convolve2d(ref, win, mode="valid"), convolve2d(dist, win, mode="valid")
        s1 = np.maximum(convolve2d(ref * ref, win, mode="valid") - mu1 * mu1, 0)
        s2 = np.maximum(convolve2d(dist * dist, win, mode="valid") - mu2 * mu2, 0)
        s12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        flat1 = s1 < eps
        g[flat1], sv[flat1], s1[flat1] = 0, s2[flat1], 0
        flat2 = s2 < eps
        g[flat2], sv[flat2] = 0, 0
        neg = g < 0
        sv[neg], g[neg] = s2[neg], 0
        sv[sv <= eps] = eps
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    out = num / den
    return 1.0 if math.isnan(out) else float(out)


def vif(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """VIF(A -> F) + VIF(B -> F)."""
    return _vif_single(a, f) + _vif_single(b, f)


_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
_SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)


def _edges(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx = convolve2d(img.astype(np.float64), _SOBEL_X, mode="same")
    gy = convolve2d(img.astype(np.float64), _SOBEL_Y, mode="same")
    strength = np.sqrt(gx * gx + gy * gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.where(gx == 0, math.pi / 2, np.arctan(gy / np.where(gx == 0, 1, gx)))
    return strength, angle


def _edge_preservation(g_src: np.ndarray, a_src: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(g_src > g_f, g_f / g_src, np.where(g_src == g_f, g_f, g_src / g_f))
    orient = 1 - np.abs(a_src - a_f) / (math.pi / 2)
    q_g = 0.9994 / (1 + np.exp(-15 * (rel - 0.5)))
    q_a = 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))
    return q_g * q_a


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Xydeas-Petrović edge-transfer metric with Sobel edges, weighted by the sources' edge strengths."""
    ga, aa = _edges(a)
    gb, ab = _edges(b)
    gf, af = _edges(f)
    qa, qb = _edge_preservation(ga, aa, gf, af), _edge_preservation(gb, ab, gf, af)
    return float((qa * ga + qb * gb).sum() / (ga + gb).sum())


def ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """SSIM(F, A) + SSIM(F, B), 7×7 uniform window. ``data_range`` 2 matches published tables; 255 is the honest one."""
    kw = dict(win_size=7, data_range=data_range)
    return float(structural_similarity(f, a, **kw) + structural_similarity(f, b, **kw))


def psnr(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """10·log10(max(F)² / MSE), MSE the mean of mse(A, F) and mse(B, F)."""
    f64 = f.astype(np.float64)
    mse = (np.mean((a - f64) ** 2) + np.mean((b - f64) ** 2)) / 2
    return float(10 * np.log10(f64.max() ** 2 / mse))


FUSION_METRICS: dict[str, Callable[..., float]] = {
    "EN": lambda f, a, b: en(f),
    "SD": lambda f, a, b: sd(f),
    "SF": lambda f, a, b: sf(f),
    "AG": lambda f, a, b: ag(f),
    "MI": mi,
    "SCD": scd,
    "VIF": vif,
    "Qabf": qabf,
    "SSIM2": lambda f, a, b: ssim(f, a, b, 2.0),
    "SSIM255": lambda f, a, b: ssim(f, a, b, 255.0),
    "PSNR": psnr,
    "CC": cc,
}


def fusion_metrics(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Every fusion metric for one fused image ``f`` of functional ``a`` and MRI ``b`` (grey, [0, 255])."""
    return {name: fn(f, a, b) for name, fn in FUSION_METRICS.items()}


# -- authorisation metrics (torch, [B, 1, H, W] in [0, 1]) -------------------------------------------------------
def _ncc(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
    y = y.flatten(1) - y.flatten(1).mean(1, keepdim=True)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1)).clamp_min(1e-12)


def mark_ncc(
    f_unauth: torch.Tensor, f_auth: torch.Tensor, mask: torch.Tensor, intensity: torch.Tensor, sigma: float = 3.0
) -> torch.Tensor:
    """How much of the trained mark an output shows, per image ``[B]``.

    The NCC between the output's departure from the degraded authorised output, ``F_unauth - degrade(F_auth)``, and
    the ideal departure ``M·(W - degrade(F_auth))``: 1.0 = the mark exactly as trained, about 0 = no mark.
    """
    base = degrade(f_auth, sigma)
    return _ncc(f_unauth - base, mask * (intensity - base))


def mark_leak(f_auth: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Correlation of the authorised output's departure from ``max(A, B)`` with the mark mask, per image ``[B]``
    (about 0 when the licensed output shows no trace of the mark)."""
    return _ncc(f_auth - image.amax(1, keepdim=True), mask.expand_as(f_auth))
