"""The face where an attacker's pipeline finds it again on a resized copy (issue 14, goal 3).

An attacker who resizes a shared photo before training finds and aligns the face anew on the smaller copy, a few
pixels from where it sits on the full photo (on the evaluation's photos a median 5.6 px at the 112-px template's
corners after resize 0.5, docs/photo_guard.md). A protection optimised with the full photo's alignment never meets
that displacement in its resize draw. :class:`Redetected` adds it: after the draw each photo is warped by its own
``inv(A_full) · A_small · S`` (source to output), so the encoder, aligned as on the full photo, sees the face where
the attacker's pipeline will put it.
"""

from __future__ import annotations

import torch
from kornia.geometry.conversions import convert_affinematrix_to_homography
from kornia.geometry.transform import warp_affine
from torch import Tensor

from guard_core import ops
from guard_core.eot import Transform

from .faces import face_alignments

__all__ = ["Redetected", "redetected_warps"]


def redetected_warps(images: Tensor, align: Tensor, scale: float = 0.5) -> Tensor:
    """Per-photo warps ``[B, 2, 3]`` in pixels (``kornia.geometry.transform.warp_affine``'s source-to-output matrix,
    as :func:`.faces.warp_faces` uses) that move each face from its alignment ``align`` ``[B, 2, 3]`` (pixels onto
    the template) to where :func:`.faces.face_alignments` finds it on the photo resized by ``scale`` and stored in
    8 bits; the identity where no face is found there.

    Args:
        images: ``[B, 3, H, W]`` RGB in [0, 1], the clean photos.
    """
    h, w = images.shape[-2:]
    small = (ops.resize(images, (round(h * scale), round(w * scale))) * 255).round() / 255
    found_small, found = face_alignments(small)
    a_full = convert_affinematrix_to_homography(align.double().cpu())
    a_small = convert_affinematrix_to_homography(found_small.double().cpu())
    shrink = torch.diag(torch.tensor([scale, scale, 1.0], dtype=torch.float64))
    m = (torch.linalg.inv(a_full) @ a_small @ shrink)[:, :2]  # a pixel of the photo -> where it goes
    identity = torch.eye(3, dtype=torch.float64)[:2]
    keep = torch.tensor(found)[:, None, None]
    return torch.where(keep, m, identity).to(images)


class Redetected:
    """``transform``, then each photo's fixed warp ``matrix [B, 2, 3]`` from :func:`redetected_warps`."""

    def __init__(self, transform: Transform, matrix: Tensor) -> None:
        self.transform, self.matrix = transform, matrix

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> Tensor:
        y = self.transform(image, generator)
        size = (y.shape[-2], y.shape[-1])
        return warp_affine(y, self.matrix.to(y), size, padding_mode="reflection", align_corners=False)

    def __repr__(self) -> str:
        return f"Redetected({self.transform!r})"
