"""Training losses: the fusion loss for the right key and the authorisation loss for every other key."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from guard_core import ops

__all__ = ["FusionLoss", "AuthorizationLoss", "degrade"]


def degrade(fused: Tensor, sigma: float = 3.0) -> Tensor:
    """The degraded fusion unauthorised outputs show outside the mark: a Gaussian low-pass (σ in pixels) that
    removes the detail a distilled student would need. ``[B, 1, H, W] -> [B, 1, H, W]``."""
    return ops.gaussian_blur(fused, sigma)


class FusionLoss(nn.Module):
    """Unsupervised fusion loss (SwinFusion / CDDFuse style) on ``fused [B,1,H,W]`` and ``image [B,2,H,W]``.

    * intensity: L1 to ``max(A, B)``;
    * gradient: L1 between Sobel magnitudes and ``max(|∇A|, |∇B|)``;
    * SSIM: ``(1 - SSIM(F, A)) + (1 - SSIM(F, B))``.

    Returns a dict with ``total`` and each term (for logging).
    """

    def __init__(self, w_intensity: float = 20.0, w_gradient: float = 100.0, w_ssim: float = 50.0) -> None:
        super().__init__()
        self.w = (w_intensity, w_gradient, w_ssim)

    def forward(self, fused: Tensor, image: Tensor) -> dict[str, Tensor]:
        a, b = image[:, :1], image[:, 1:2]
        intensity = F.l1_loss(fused, torch.maximum(a, b))
        gradient = F.l1_loss(ops.sobel_magnitude(fused), torch.maximum(ops.sobel_magnitude(a), ops.sobel_magnitude(b)))
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
        return mask * intensity + (1 - mask) * degrade(fused_auth.detach(), self.sigma)

    def forward(self, fused_unauth: Tensor, fused_auth: Tensor, mask: Tensor, intensity: Tensor) -> Tensor:
        weight = 1 + (self.mark_weight - 1) * mask
        err = (fused_unauth - self.target(fused_auth, mask, intensity)).abs() * weight
        return err.mean() / weight.mean()
