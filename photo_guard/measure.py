"""What protecting did to each photo: the change's size (L-inf, PSNR, SSIM at full resolution) and how far each
encoder's embedding moved (cosine to the clean photo's, and the set's centroid cosine)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from guard_core import ops, quality

from .clean_view import CleanView, clean_view, embed_all
from .encoders import Encoder

__all__ = ["measure"]


def measure(
    clean: Sequence[Tensor],
    protected: Sequence[Tensor],
    encoders: Sequence[Encoder],
    work_size: int = 320,
    device: torch.device | str = "cpu",
    view: CleanView | None = None,
) -> list[dict]:
    """Per photo: L-inf (in 1/255), PSNR and SSIM at full resolution, and per encoder the cosine between protected and
    clean embeddings plus the set's centroid cosine (< 0: moved away from the set). ``view``: the clean photos'
    :class:`CleanView` from protecting them (else computed here)."""
    device = torch.device(device)
    stats = [_photo_stats(c.to(device), p.to(device)) for c, p in zip(clean, protected)]
    view = view or clean_view(clean, encoders, work_size, device)
    works, groups, aligns, before = view.works, view.groups, view.aligns, view.embeddings
    pworks = [ops.resize(p[None].to(device), (w.shape[-2], w.shape[-1]))[0] for p, w in zip(protected, works)]
    after = embed_all(encoders, pworks, aligns, groups)
    for e in encoders:
        cos = F.cosine_similarity(after[e.name], before[e.name], dim=-1)
        centroid = F.normalize(F.normalize(before[e.name], dim=-1).mean(0), dim=-1)
        centroid_cos = float(F.cosine_similarity(F.normalize(after[e.name], dim=-1).mean(0), centroid, dim=0))
        for i, st in enumerate(stats):
            st.setdefault("encoders", {})[e.name] = {"cos_to_clean": float(cos[i]), "set_centroid_cos": centroid_cos}
    return stats


SSIM_TILE, SSIM_TILES = 512, 16


def _photo_stats(clean: Tensor, protected: Tensor) -> dict:
    """L-inf and PSNR over every pixel; SSIM too up to 4 MP, above that the mean over 16 seeded random 512×512 tiles
    (an unbiased estimate of the same mean that costs a fraction: full-image SSIM of a 12-MP photo took 7 s here)."""
    a, b = clean[None].float(), protected[None].float()
    h, w = a.shape[-2:]
    if h * w <= 4_000_000 or min(h, w) < SSIM_TILE:
        ssim = float(quality.ssim(a, b, 1.0)[0])
    else:
        g = torch.Generator().manual_seed(0)
        tops = torch.randint(0, h - SSIM_TILE + 1, (SSIM_TILES,), generator=g).tolist()
        lefts = torch.randint(0, w - SSIM_TILE + 1, (SSIM_TILES,), generator=g).tolist()
        tiles = [
            (a[..., t : t + SSIM_TILE, c : c + SSIM_TILE], b[..., t : t + SSIM_TILE, c : c + SSIM_TILE])
            for t, c in zip(tops, lefts)
        ]
        ssim = float(quality.ssim(torch.cat([x for x, _ in tiles]), torch.cat([y for _, y in tiles]), 1.0).mean())
    return {"linf_255": float(quality.linf(a, b)[0] * 255), "psnr": float(quality.psnr(a, b, 1.0)[0]), "ssim": ssim}
