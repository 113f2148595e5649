"""Black-box attack 2: clean the mark off unauthorised outputs.

The thief knows the mark (its template ships with the model) and the degradation (a Gaussian blur, σ in the model
card), so each cleaner gets them:

* :func:`invert_template`: undo ``y = M·W + (1 - M)·blur(F)`` arithmetically: keep the unmarked pixels, fill the
  marked ones from their neighbours (normalised convolution), then deconvolve the blur (Richardson-Lucy);
* :func:`inpaint`: OpenCV's Telea inpainting over the (slightly dilated) mask, optionally deconvolved;
* :func:`median` / :func:`gaussian`: plain filters;
* :class:`RemovalNet` trained by :func:`train_removal_net` on the mark and blur rendered onto *other* images
  (max-rule fusions of the training pairs: the thief has no authorised outputs).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from monai.networks.nets import BasicUNet
from skimage.restoration import richardson_lucy
from torch import Tensor, nn

from guard_core import ops

from ..losses import degrade
from ..mark import compose_mark
from .base import Attack, Stages, Target, register
from .common import fit, quality, random_crops

__all__ = ["invert_template", "inpaint", "median", "gaussian", "RemovalNet", "train_removal_net", "cleaners", "Removal"]


def _gaussian_psf(sigma: float) -> np.ndarray:
    r = int(np.ceil(3 * sigma))
    x = np.arange(-r, r + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    psf = np.outer(g, g)
    return psf / psf.sum()


def _deconvolve(x: Tensor, sigma: float, iterations: int = 30) -> Tensor:
    psf = _gaussian_psf(sigma)
    out = [richardson_lucy(i[0].double().numpy().clip(1e-4, 1), psf, num_iter=iterations, clip=True) for i in x]
    return torch.from_numpy(np.stack(out))[:, None].float()


def _fill_holes(y: Tensor, mask: Tensor, sigma: float = 2.0, iterations: int = 10) -> Tensor:
    """Marked pixels replaced by the Gaussian-weighted mean of the unmarked pixels around them, then diffused."""
    keep = 1 - mask.expand_as(y)
    num, den = ops.gaussian_blur(y * keep, sigma), ops.gaussian_blur(keep, sigma)
    x = keep * y + (1 - keep) * num / den.clamp_min(1e-3)
    for _ in range(iterations):  # strokes wider than the window: keep diffusing from the known pixels
        x = keep * y + (1 - keep) * ops.gaussian_blur(x, sigma)
    return x


def invert_template(y: Tensor, mask: Tensor, intensity: Tensor, sigma: float = 3.0) -> Tensor:
    """``y [N, 1, H, W]`` -> estimate of the authorised output: drop ``M·W``, fill the strokes, undo the blur."""
    del intensity  # strokes are opaque: M·W carries nothing of F, so inverting means dropping the marked pixels
    return _deconvolve(_fill_holes(y, mask), sigma)


def inpaint(y: Tensor, mask: Tensor, deblur_sigma: float | None = None, radius: int = 3) -> Tensor:
    """OpenCV Telea inpainting of ``y [N, 1, H, W]`` under ``mask`` dilated by one pixel (anti-aliased edges)."""
    m = cv2.dilate((mask[0, 0].numpy() > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
    out = []
    for img in y:
        u8 = np.round(img[0].numpy() * 255).clip(0, 255).astype(np.uint8)
        out.append(cv2.inpaint(u8, m, radius, cv2.INPAINT_TELEA).astype(np.float32) / 255)
    res = torch.from_numpy(np.stack(out))[:, None]
    return _deconvolve(res, deblur_sigma) if deblur_sigma else res


def median(y: Tensor, size: int) -> Tensor:
    """Median filter of odd ``size`` (OpenCV)."""
    out = [cv2.medianBlur(np.round(i[0].numpy() * 255).clip(0, 255).astype(np.uint8), size) for i in y]
    return torch.from_numpy(np.stack(out))[:, None].float() / 255


def gaussian(y: Tensor, sigma: float) -> Tensor:
    """Gaussian filter."""
    return ops.gaussian_blur(y, sigma)


class RemovalNet(nn.Module):
    """A small U-Net (MONAI ``BasicUNet``) predicting the clean image from a marked one plus the mark mask:
    ``[N, 1, H, W]`` (+ mask) -> ``[N, 1, H, W]``; residual, so it starts as the identity."""

    def __init__(self, features: tuple[int, ...] = (16, 16, 32, 64, 64, 16)) -> None:
        super().__init__()
        self.unet = BasicUNet(spatial_dims=2, in_channels=2, out_channels=1, features=features)

    def forward(self, y: Tensor, mask: Tensor) -> Tensor:
        return (y + self.unet(torch.cat([y, mask.expand_as(y)], 1))).clamp(0, 1)


def _render(clean: Tensor, mask: Tensor, intensity: Tensor, sigma: float) -> Tensor:
    return compose_mark(mask, intensity, degrade(clean, sigma))


def train_removal_net(
    images: Tensor,
    mask: Tensor,
    intensity: Tensor,
    steps: int = 600,
    crop: int = 128,
    batch: int = 8,
    sigma: float = 3.0,
    seed: int = 0,
) -> tuple[RemovalNet, dict]:
    """Train :class:`RemovalNet` on max-rule fusions of ``images [N, 2, H, W]`` with the mark (random crops of the
    template, so it never sees the test layout as such) and the blur rendered on. Returns the net and its log."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = RemovalNet()
    clean = images.amax(1, keepdim=True)
    template = torch.cat([mask, intensity], 1)

    def loss(_: int) -> Tensor:
        x, t = random_crops([clean, template], crop, batch, g)
        y = _render(x, t[:, :1], t[:, 1:], sigma)
        return (net(y, t[:, :1]) - x).abs().mean()

    log = fit(list(net.parameters()), loss, steps, lr=2e-3)
    return net.eval(), log


def cleaners(
    mask: Tensor, intensity: Tensor, sigma: float, net: RemovalNet | None = None
) -> dict[str, Callable[[Tensor], Tensor]]:
    """Every cleaner by name, each ``y [N, 1, H, W] -> [N, 1, H, W]``."""
    out: dict[str, Callable[[Tensor], Tensor]] = {
        "template inversion + deblur": lambda y: invert_template(y, mask, intensity, sigma),
        "inpaint (Telea)": lambda y: inpaint(y, mask),
        "inpaint (Telea) + deblur": lambda y: inpaint(y, mask, deblur_sigma=sigma),
        "median 3": lambda y: median(y, 3),
        "median 7": lambda y: median(y, 7),
        "gaussian σ1": lambda y: gaussian(y, 1.0),
        "gaussian σ2": lambda y: gaussian(y, 2.0),
    }
    if net is not None:
        out["removal network"] = lambda y: _batched(net, y, mask)
    return out


@torch.inference_mode()
def _batched(net: RemovalNet, y: Tensor, mask: Tensor, batch: int = 8) -> Tensor:
    return torch.cat([net(c, mask) for c in y.split(batch)])


@register
class Removal(Attack):
    """Threat model: a black-box thief with unauthorised outputs, the mark template and the degradation's σ, who
    cleans the mark off with filters, inpainting, template inversion and a trained removal network. Goal: every
    cleaner leaves the mark or stays far (``FAR_PSNR``) from the licensed output."""

    name, goal_name = "removal", "removal leaves the mark or stays far"

    def run(self, target: Target, stage: Stages) -> dict:
        c, refs = target.cfg, target.refs
        rnet, rlog = stage(
            "removal_net_training",
            train_removal_net,
            target.train.images,
            refs.mask,
            refs.intensity,
            c.removal_steps,
            target.crop,
            seed=c.seed,
            sigma=target.sigma,
        )
        target.shared["removal_net"] = rnet
        rows = {}
        for name, clean in cleaners(refs.mask, refs.intensity, target.sigma, rnet).items():
            out = clean(refs.unauthorised)
            rows[name] = quality(out, refs)
            target.examples[f"removal: {name}"] = out[target.ex, 0]
        return {"cleaners": rows, "removal_net": {"steps": c.removal_steps, **rlog}}

    def goal(self, section: dict, results: dict) -> dict:
        bad = {n: r["escaped"] for n, r in section["cleaners"].items() if r["escaped"] > 0}
        return {
            "met": not bad,
            "detail": "every cleaner"
            if not bad
            else "escaped on " + ", ".join(f"{n} ({100 * e:.0f}% of pairs)" for n, e in bad.items()),
        }
