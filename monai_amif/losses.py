"""Training losses: the fusion loss for the right key and the authorisation loss for every other key."""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from guard_core import ops

from .mark import compose_mark

__all__ = ["FusionLoss", "AuthorizationLoss", "degrade", "edge_transfer", "visual_information"]


def degrade(fused: Tensor, sigma: float = 3.0) -> Tensor:
    """The degraded fusion unauthorised outputs show outside the mark: a Gaussian low-pass (σ in pixels) that
    removes the detail a distilled student would need. ``[B, 1, H, W] -> [B, 1, H, W]``."""
    return ops.gaussian_blur(fused, sigma)


def _edges(image: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    gx, gy = ops.sobel_gradients(image)
    strength = torch.sqrt(gx * gx + gy * gy + eps)
    flat = gx == 0  # the metric's convention: a vertical orientation where gx is exactly 0
    angle = torch.where(flat, torch.full_like(gx, math.pi / 2), torch.atan(gy / torch.where(flat, 1.0, gx)))
    return strength, angle


def _preservation(g_src: Tensor, a_src: Tensor, g_f: Tensor, a_f: Tensor) -> Tensor:
    rel = torch.minimum(g_src, g_f) / torch.maximum(g_src, g_f)
    orient = 1 - (a_src - a_f).abs() / (math.pi / 2)
    return 0.9994 * torch.sigmoid(15 * (rel - 0.5)) * 0.9879 * torch.sigmoid(22 * (orient - 0.8))


def edge_transfer(fused: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Differentiable Qabf (Xydeas-Petrović, as :func:`monai_amif.metrics.qabf` scores it; Sobel edges, replicate
    padding at the border). Scale-free, so images in [0, 1] score as their 8-bit versions. ``[B, 1, H, W] x 3 -> [B]``.
    """
    (ga, aa), (gb, ab), (gf, af) = (_edges(t) for t in (a, b, fused))
    q = _preservation(ga, aa, gf, af) * ga + _preservation(gb, ab, gf, af) * gb
    return q.sum((1, 2, 3)) / (ga + gb).sum((1, 2, 3))


def visual_information(ref: Tensor, dist: Tensor, sigma_nsq: float = 2.0, eps: float = 1e-10) -> Tensor:
    """Differentiable multiscale pixel-domain VIF of ``dist`` given ``ref`` (as :func:`monai_amif.metrics.vif`
    scores one source: 4 scales, Gaussian windows 17/9/5/3 with σ = N/5). Images in [0, 1], scored at 8-bit scale
    (the noise variance ``sigma_nsq`` is in 8-bit units). ``[B, 1, H, W] x 2 -> [B]``."""
    if min(ref.shape[-2:]) < 41:
        raise ValueError(f"VIF's four scales need images of at least 41×41, got {tuple(ref.shape[-2:])}")
    ref, dist = ref * 255, dist * 255
    num = den = ref.new_zeros(ref.shape[0])
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        k = kornia.filters.get_gaussian_kernel1d(n, n / 5).to(ref)[0]

        def blur(x: Tensor, k: Tensor = k) -> Tensor:  # separable, 'valid', every channel alike
            c = x.shape[1]
            x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
            return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)

        if scale > 1:
            ref, dist = blur(torch.cat([ref, dist], 1))[..., ::2, ::2].chunk(2, 1)
        mu1, mu2, e11, e22, e12 = blur(torch.cat([ref, dist, ref * ref, dist * dist, ref * dist], 1)).chunk(5, 1)
        s1 = (e11 - mu1 * mu1).clamp_min(0)
        s2 = (e22 - mu2 * mu2).clamp_min(0)
        s12 = e12 - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        keep = (s1 >= eps) & (s2 >= eps) & (g >= 0)  # the metric's special cases: no gain, all of s2 is noise
        g = torch.where(keep, g, 0.0)
        sv = torch.where(keep, sv, torch.where(s2 >= eps, s2, 0.0)).clamp_min(eps)
        s1 = torch.where(s1 >= eps, s1, 0.0)
        num = num + torch.log10(1 + g * g * s1 / (sv + sigma_nsq)).sum((1, 2, 3))
        den = den + torch.log10(1 + s1 / sigma_nsq).sum((1, 2, 3))
    return num / den.clamp_min(1e-6)  # an all-flat crop scores 0 instead of NaN


class FusionLoss(nn.Module):
    """Unsupervised fusion loss (SwinFusion / CDDFuse style) on ``fused [B,1,H,W]`` and ``image [B,2,H,W]``.

    * intensity: L1 to ``max(A, B)``, each pixel weighted ``1 + saliency·|A - B|``: where the sources disagree the
      brighter one must be kept at full brightness (the functional hot spots MI and VIF look for);
    * gradient: ``"magnitude"``: L1 between Sobel magnitudes and ``boost·max(|∇A|, |∇B|)``; ``"select"``: L1 between
      the Sobel (gx, gy) and ``boost`` times those of the source with the stronger edge at each pixel, which also
      keeps the edge's direction (what Qabf scores);
    * SSIM: ``(1 - SSIM(F, A)) + (1 - SSIM(F, B))``;
    * optional, off by default: the scored metrics themselves, ``1 - Qabf`` (:func:`edge_transfer`) and
      ``2 - VIF(A -> F) - VIF(B -> F)`` (:func:`visual_information`), weighted ``w_qabf`` and ``w_vif``.

    Returns a dict with ``total`` and each term (for logging).
    """

    def __init__(
        self,
        w_intensity: float = 20.0,
        w_gradient: float = 100.0,
        w_ssim: float = 50.0,
        saliency: float = 0.0,
        gradient: str = "magnitude",
        boost: float = 1.0,
        w_qabf: float = 0.0,
        w_vif: float = 0.0,
    ) -> None:
        super().__init__()
        if gradient not in ("magnitude", "select"):
            raise ValueError(f"gradient must be 'magnitude' or 'select', got {gradient!r}")
        self.w = (w_intensity, w_gradient, w_ssim)
        self.saliency, self.gradient, self.boost = saliency, gradient, boost
        self.w_qabf, self.w_vif = w_qabf, w_vif

    def forward(self, fused: Tensor, image: Tensor, vif_mask: Tensor | None = None) -> dict[str, Tensor]:
        """``vif_mask [B]`` (optional): which pairs the VIF term applies to (the others score 2, a constant)."""
        a, b = image[:, :1], image[:, 1:2]
        weight = 1 + self.saliency * (a - b).abs()
        intensity = ((fused - torch.maximum(a, b)).abs() * weight).mean() / weight.mean()
        if self.gradient == "magnitude":
            target = self.boost * torch.maximum(ops.sobel_magnitude(a), ops.sobel_magnitude(b))
            gradient = F.l1_loss(ops.sobel_magnitude(fused), target)
        else:
            (fx, fy), (ax, ay), (bx, by) = (ops.sobel_gradients(t) for t in (fused, a, b))
            take_a = (ax * ax + ay * ay) >= (bx * bx + by * by)
            tx, ty = torch.where(take_a, ax, bx), torch.where(take_a, ay, by)
            gradient = (F.l1_loss(fx, self.boost * tx) + F.l1_loss(fy, self.boost * ty)) / 2
        ssim = (2 - ops.ssim(fused, a, 1.0) - ops.ssim(fused, b, 1.0)).mean()
        total = self.w[0] * intensity + self.w[1] * gradient + self.w[2] * ssim
        terms = {"intensity": intensity, "gradient": gradient, "ssim": ssim}
        if self.w_qabf:
            terms["qabf"] = 1 - edge_transfer(fused, a, b).mean()
            total = total + self.w_qabf * terms["qabf"]
        if self.w_vif:
            vif = visual_information(a, fused) + visual_information(b, fused)
            mask = torch.ones_like(vif) if vif_mask is None else vif_mask.to(vif)
            terms["vif"] = ((2 - vif) * mask).sum() / mask.sum().clamp_min(1)
            total = total + self.w_vif * terms["vif"]
        return {"total": total, **terms}


class AuthorizationLoss(nn.Module):
    """L1 between an unauthorised output and ``M·W + (1 - M)·degrade(stopgrad(F_auth))``.

    Pixels of the mark are weighted ``mark_weight`` times more: thin strokes are few pixels but the whole point.
    """

    def __init__(self, sigma: float = 3.0, mark_weight: float = 4.0) -> None:
        super().__init__()
        self.sigma, self.mark_weight = sigma, mark_weight

    def target(self, fused_auth: Tensor, mask: Tensor, intensity: Tensor) -> Tensor:
        return compose_mark(mask, intensity, degrade(fused_auth.detach(), self.sigma))

    def forward(self, fused_unauth: Tensor, fused_auth: Tensor, mask: Tensor, intensity: Tensor) -> Tensor:
        weight = 1 + (self.mark_weight - 1) * mask
        err = (fused_unauth - self.target(fused_auth, mask, intensity)).abs() * weight
        return err.mean() / weight.mean()
