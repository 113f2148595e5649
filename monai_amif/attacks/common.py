"""What every attack shares: pairs loaded once as tensors, the model's reference outputs, quality numbers, and a
small training loop on random crops."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from guard_core import ops
from guard_core.quality import psnr as psnr_db

from ..data import find_pairs, pair_transforms
from ..errors import AMIFError
from ..metrics import fusion_metrics, mark_ncc
from ..networks import AMIFNet

__all__ = [
    "MARK_VISIBLE",
    "FAR_PSNR",
    "PairSet",
    "load_pairs",
    "References",
    "references",
    "psnr",
    "quality",
    "random_crops",
    "fit",
    "grey_255",
    "fusion_scores",
    "FUSION_COLUMNS",
]

FUSION_COLUMNS = ("SF", "AG", "MI", "VIF", "Qabf", "SSIM255")
MARK_VISIBLE = 0.5  # mark_ncc at or above this: the mark is still there
FAR_PSNR = 25.0  # dB to the authorised output below this: the result is still far from what the licence buys


@dataclass
class PairSet:
    """``images [N, 2, H, W]`` (MRI, functional Y) in [0, 1], with each pair's task and name."""

    images: Tensor
    tasks: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)


def load_pairs(root: str, limit: int | None = None) -> PairSet:
    """Every pair under ``root`` (the first ``limit`` of each task when given).

    Raises:
        FileNotFoundError: naming ``root`` when it holds no pairs; ValueError when pairs differ in size.
    """
    pairs = find_pairs(root)
    if limit is not None:
        counts: Counter[str] = Counter()
        kept = []
        for p in pairs:
            if counts[p["task"]] < limit:
                kept.append(p)
                counts[p["task"]] += 1
        pairs = kept
    load = pair_transforms()
    images = [torch.as_tensor(load(p)["image"]).float()[None] for p in pairs]
    shapes = {tuple(i.shape[-2:]) for i in images}
    if len(shapes) > 1:
        raise AMIFError(f"{root}: pairs differ in size {sorted(shapes)}; the attacks need one size")
    return PairSet(torch.cat(images), [p["task"] for p in pairs], [p["name"] for p in pairs])


@dataclass
class References:
    """The stolen model's outputs on a pair set: ``authorised`` (right key), ``unauthorised`` (no key), and the mark
    ``mask``/``intensity`` at the images' size, each ``[N, 1, H, W]`` / ``[1, 1, H, W]``."""

    authorised: Tensor
    unauthorised: Tensor
    mask: Tensor
    intensity: Tensor

    def mark_ncc(self, outputs: Tensor) -> Tensor:
        """How much of the mark ``outputs [N, 1, H, W]`` show, per pair ``[N]``
        (see :func:`monai_amif.metrics.mark_ncc`)."""
        return mark_ncc(outputs, self.authorised, self.mask, self.intensity)


@torch.inference_mode()
def references(net: AMIFNet, images: Tensor, right: Tensor, batch: int = 16) -> References:
    """Authorised and unauthorised outputs of ``net`` for ``images [N, 2, H, W]`` under the key tensor
    ``right [bits]``."""
    auth = torch.cat([net(x, right.expand(len(x), -1)) for x in images.split(batch)])
    none = torch.cat([net(x) for x in images.split(batch)])
    mask, intensity = net.template_at(*images.shape[-2:]).split(1, dim=1)
    return References(auth, none, mask, intensity)


def psnr(x: Tensor, ref: Tensor) -> Tensor:
    """PSNR in dB of ``x`` against ``ref`` (both ``[N, 1, H, W]`` in [0, 1]), per image ``[N]``; identical images
    count as 100 dB so that tables and JSON stay finite."""
    return psnr_db(x, ref, 1.0).clamp_max(100.0)


def quality(x: Tensor, refs: References) -> dict[str, float]:
    """Mean and worst case of what an attacked output ``x [N, 1, H, W]`` achieved: PSNR and SSIM to the authorised
    output, the mark it still shows (``mark_ncc``; the attacker wants it low and the PSNR high), and ``escaped``: the
    fraction of pairs where the attacker won on both counts (mark_ncc < 0.5 and PSNR >= 25 dB)."""
    x = x.clamp(0, 1)
    p, s, m = psnr(x, refs.authorised), ops.ssim(x, refs.authorised, 1.0), refs.mark_ncc(x)
    return {
        "psnr": float(p.mean()),
        "psnr_max": float(p.max()),
        "ssim": float(s.mean()),
        "mark_ncc": float(m.mean()),
        "mark_ncc_min": float(m.min()),
        "escaped": float(((m < MARK_VISIBLE) & (p >= FAR_PSNR)).float().mean()),
    }


def grey_255(t: Tensor) -> np.ndarray:
    """``[H, W]`` in [0, 1] -> float32 in [0, 255], rounded as an 8-bit file would hold it (what the metrics take)."""
    return np.round(t.detach().cpu().clamp(0, 1).numpy() * 255).astype(np.float32)


def fusion_scores(x: Tensor, images: Tensor) -> dict[str, float]:
    """Mean fusion metrics (``FUSION_COLUMNS``; docs/design.md) of fused Y ``x`` against the two sources."""
    rows = [fusion_metrics(grey_255(f[0]), grey_255(img[1]), grey_255(img[0])) for f, img in zip(x, images)]
    return {c: float(np.mean([r[c] for r in rows])) for c in FUSION_COLUMNS}


def random_crops(tensors: list[Tensor], size: int, batch: int, generator: torch.Generator) -> list[Tensor]:
    """The same ``batch`` random ``size × size`` crops (with random picks of the first axis) of aligned ``[N, C, H, W]``
    tensors; a tensor with first axis 1 (a template) is cropped at the same places for every pick."""
    n, h, w = tensors[0].shape[0], *tensors[0].shape[-2:]
    idx = torch.randint(n, (batch,), generator=generator)
    top = torch.randint(h - size + 1, (batch,), generator=generator)
    left = torch.randint(w - size + 1, (batch,), generator=generator)
    out = []
    for t in tensors:
        src = [t[0 if t.shape[0] == 1 else int(i)] for i in idx]
        out.append(torch.stack([s[:, y : y + size, x : x + size] for s, y, x in zip(src, top.tolist(), left.tolist())]))
    return out


def fit(
    params: list[Tensor],
    loss_fn: Callable[[int], Tensor],
    steps: int,
    lr: float,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Adam with a cosine learning rate over ``steps`` calls of ``loss_fn(step)``; ``on_step(step)`` runs *before*
    each step and once at the end (``step == steps``), which is where callers take snapshots. Returns the final loss
    and the seconds spent."""
    opt = torch.optim.Adam(params, lr=lr)
    t0, last = time.perf_counter(), math.nan
    for step in range(steps):
        if on_step is not None:
            on_step(step)
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach())
    if on_step is not None:
        on_step(steps)
    return {"loss": last, "seconds": time.perf_counter() - t0}
