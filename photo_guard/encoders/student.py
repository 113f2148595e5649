"""A small face-identity student distilled from SFace on this project's data: a second face model that installs offline.

Why it exists: SFace is the only face-identity model that installs offline, so there was no face model to measure
transfer against (or to add to the ensemble). The student is trained to give SFace's embedding of each aligned face
(:mod:`photo_guard.encoders.distill`; optionally with Adversarially Robust Distillation, Goldblum et al. 2020). It is
not SFace: a compact ResNet of its own, trained on 8,509 faces, that identifies the people of ``lfw10`` it never saw at
0.953 1-NN accuracy (SFace 0.996).

The weights are too big for the repository: train them with :mod:`photo_guard.encoders.distill` (22 min here) and put
``face_student.safetensors`` in the user cache (``photo_guard.cache.cache_dir()``); plain tensors, loading them runs no
code. The file carries its own reference mean (tensor ``reference_mean``: the student's mean embedding over the faces it
was trained on), so every locally trained student is centred by the mean of its own weights.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from ..cache import cache_dir
from ..faces import warp_faces
from .base import Encoder, EncoderUnavailable

__all__ = ["FaceStudent", "FaceStudentEncoder", "WEIGHTS", "REFERENCE"]

log = logging.getLogger(__name__)

WEIGHTS = "face_student.safetensors"
REFERENCE = "reference_mean"  # the tensor in the weights file that is not a parameter


class _Block(nn.Module):
    """Pre-activation basic residual block (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.act = nn.PReLU(cout)
        self.skip = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.act(self.bn1(x)) if isinstance(self.skip, nn.Identity) else x)
        return self.skip(x) + self.conv2(self.act(self.bn2(h)))


class FaceStudent(nn.Module):
    """Aligned face ``[B, 3, 112, 112]`` RGB in [0, 1] -> ``[B, dim]`` embedding.

    A compact ResNet (stem at 56², stages at 56/28/14/7 with ``width``·1/2/4/8 channels) whose 7×7 map is flattened
    into the embedding, as face models do (the position of a feature on the face matters)."""

    def __init__(self, width: int = 32, dim: int = 128) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.PReLU(w))
        self.stages = nn.Sequential(
            _Block(w, w, 1), _Block(w, 2 * w, 2), _Block(2 * w, 4 * w, 2), _Block(4 * w, 8 * w, 2)
        )
        self.head = nn.Sequential(nn.BatchNorm2d(8 * w), nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * w * 49, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem((x - 0.5) / 0.5)))


class FaceStudentEncoder(Encoder):
    """The trained :class:`FaceStudent` as an :class:`Encoder` (sees the same aligned 112×112 face as SFace).
    ``weights``: a ``.safetensors`` file of another student (trained with :mod:`~photo_guard.encoders.distill`)."""

    name = "face_student"
    input_size = (112, 112)
    face = True

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        from safetensors.torch import load_file

        try:
            state = load_file(weights or cache_dir() / WEIGHTS)
        except FileNotFoundError:
            raise EncoderUnavailable(
                f"no trained face student weights ({weights or cache_dir() / WEIGHTS}); train them with "
                "'python -m photo_guard.encoders.distill' (docs/photo_guard.md)"
            ) from None
        reference = state.pop(REFERENCE, None)
        width, dim = state["stem.0.weight"].shape[0], state["head.3.weight"].shape[0]
        self.net = FaceStudent(width, dim)
        self.net.load_state_dict(state)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        if reference is None:
            log.warning("face student weights without a %s; embeddings are not centred", REFERENCE)
        else:
            self.reference_mean = reference.float()

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        if align is None:
            from ..faces import _fallback

            h, w = images.shape[-2:]
            align = torch.from_numpy(_fallback(h, w)).expand(images.shape[0], 2, 3)
        return warp_faces(images, align)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)
