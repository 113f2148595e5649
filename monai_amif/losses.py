"""Training losses: the fusion loss for the right key and the authorisation loss for every other key."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from guard_core import ops

from .mark import compose_mark

__all__ = ["FusionLoss", "AuthorizationLoss", "degrade"]


def degrade(fused: Tensor, sigma: float = 3.0) -> Tensor:
    """The degraded fusion unauthorised outputs show outside the mark: a Gaussian low-pass (σ in pixels) that
    removes the detail a distilled student would need. ``[B, 1, H, W] -> [B, 1, H, W]``."""
    return ops.gaussian_blur(fused, sigma)


class FusionLoss(nn.Module):
    """Unsupervised fusion loss (SwinFusion / CDDFuse style) on ``fused [B,1,H,W]`` and ``image [B,2,H,W]``.

    * intensity: L1 to ``max(A, B)``, each pixel weighted ``1 + saliency·|A - B|``: where the sources disagree the
      brighter one must be kept at full brightness (the functional hot spots MI and VIF look for);
    * gradient: ``"magnitude"``: L1 between Sobel magnitudes and ``boost·max(|∇A|, |∇B|)``; ``"select"``: L1 between
      the Sobel (gx, gy) and ``boost`` times those of the source with the stronger edge at each pixel, which also
      keeps the edge's direction (what Qabf scores);
    * SSIM: ``(1 - SSIM(F, A)) + (1 - SSIM(F, B))``.

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
    ) -> None:
        super().__init__()
        if gradient not in ("magnitude", "select"):
            raise ValueError(f"gradient must be 'magnitude' or 'select', got {gradient!r}")
        self.w = (w_intensity, w_gradient, w_ssim)
        self.saliency, self.gradient, self.boost = saliency, gradient, boost

    def forward(self, fused: Tensor, image: Tensor) -> dict[str, Tensor]:
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
        return {"total": total, "intensity": intensity, "gradient": gradient, "ssim": ssim}


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
