"""What the encoders see of the clean photos: each photo's working copy at its own aspect ratio, its face alignment
and its embeddings, computed once and shared by protecting (:func:`photo_guard.protect.protect_set`) and measuring
the result (:func:`photo_guard.measure.measure`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from guard_core import ops
from guard_core.parallel import side_by_side

from .encoders import Encoder
from .faces import face_alignments

__all__ = ["CleanView", "clean_view", "embed_all"]


@dataclass
class CleanView:
    """What the encoders see of the clean photos, computed once for protecting and for measuring the result: each
    photo's working copy, the indices grouped by working shape, each copy's face alignment, and the clean embeddings
    ``{encoder: [N, D]}``."""

    works: list[Tensor]
    groups: dict[tuple[int, int], list[int]]
    aligns: list[Tensor]
    embeddings: dict[str, Tensor]


def clean_view(
    images: Sequence[Tensor], encoders: Sequence[Encoder], work_size: int, device: torch.device
) -> CleanView:
    """The :class:`CleanView` of ``images`` (``[3, H, W]`` each) through ``encoders``."""
    works, groups, aligns = _working_copies(images, work_size, device)
    return CleanView(works, groups, aligns, embed_all(encoders, works, aligns, groups))


def _work_size(h: int, w: int, work: int) -> tuple[int, int]:
    s = min(1.0, work / max(h, w))
    return max(16, round(h * s)), max(16, round(w * s))


def _working_copies(
    images: Sequence[Tensor], work_size: int, device: torch.device
) -> tuple[list[Tensor], dict[tuple[int, int], list[int]], list[Tensor]]:
    """Each photo resized to fit ``work_size`` at its own aspect ratio, the indices grouped by working shape (photos
    of one shape are batched together), and each working copy's face alignment."""
    works = [ops.resize(img[None].to(device), _work_size(img.shape[-2], img.shape[-1], work_size))[0] for img in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, w in enumerate(works):
        groups.setdefault((w.shape[-2], w.shape[-1]), []).append(i)
    aligns = [face_alignments(w[None])[0][0] for w in works]
    return works, groups, aligns


def embed_all(
    encs: Sequence[Encoder], works: list[Tensor], aligns: list[Tensor], groups: dict[tuple[int, int], list[int]]
) -> dict[str, Tensor]:
    """Each encoder's embeddings ``{name: [N, D]}`` of the working copies, a batch per working shape."""
    out: dict[str, list[Tensor]] = {e.name: [torch.empty(0)] * len(works) for e in encs}
    for idx in groups.values():
        x, align = torch.stack([works[i] for i in idx]), torch.stack([aligns[i] for i in idx])
        jobs = [_embedding(e, x, align) for e in encs]
        # One photo leaves a core idle in each encoder; a batch fills both (as the objective's terms).
        zs = side_by_side(jobs) if len(idx) == 1 and x.device.type == "cpu" else [embed() for embed in jobs]
        for e, z in zip(encs, zs):
            for j, i in enumerate(idx):
                out[e.name][i] = z[j]
    return {n: torch.stack(v) for n, v in out.items()}


def _embedding(e: Encoder, x: Tensor, align: Tensor) -> Callable[[], Tensor]:
    def embed() -> Tensor:
        with torch.inference_mode():  # per thread: set in the job that may run on a worker
            return e.embed(x, align if e.face else None)

    return embed
