"""The encoder contract: a differentiable vision model with its own preprocessing done in torch."""

from __future__ import annotations

import copy
import logging
from importlib import resources

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import PhotoGuardError

__all__ = ["Encoder", "EncoderUnavailable"]

log = logging.getLogger(__name__)


class EncoderUnavailable(PhotoGuardError):
    """An encoder cannot be built here (weights or a package missing); the message says what is missing."""


class Encoder(nn.Module):
    """Base of every encoder photo_guard optimises against or evaluates with.

    Subclasses set ``name``, ``input_size`` (H, W the model sees) and ``face`` (True for face-identity models, which
    see an aligned face crop), and implement :meth:`preprocess` and :meth:`features`. ``away_stop``: the cosine to the
    person's centroid at which protection stops pushing a photo away from its person (0: orthogonal); an encoder
    whose embeddings move easily sets it above 0, so the photos do not land past orthogonal, where a head reads the
    person back as its least likely class. ``loss_weight``: the encoder's share of the protection objective beside
    the others in the ensemble (an encoder that is hard to move asks for more of each step). ``term_every``: the
    encoder's term is taken on every n-th protection step only (an encoder that moves easily needs fewer of them;
    Adam's running moments carry its pull through the steps between).

    ``embed`` returns features centred by a *reference mean* shipped with the package (the mean embedding of a diverse
    photo set): pooled ReLU features are never negative, so without centring the antithetical target ``-c`` would be
    unreachable.
    """

    name: str = "encoder"
    input_size: tuple[int, int] = (224, 224)
    face: bool = False
    away_stop: float = 0.0
    loss_weight: float = 1.0
    term_every: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("reference_mean", torch.zeros(0), persistent=False)

    def load_reference_mean(self) -> None:
        try:
            data = resources.files("photo_guard.encoders.reference").joinpath(f"{self.name}.npy").read_bytes()
        except (FileNotFoundError, ModuleNotFoundError):
            log.warning("no reference mean shipped for encoder %s; embeddings are not centred", self.name)
            return
        import io

        self.reference_mean = torch.from_numpy(np.load(io.BytesIO(data))).float()

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        """``[B, 3, H, W]`` RGB in [0, 1] (+ optional ``[B, 2, 3]`` face alignment in pixels) -> model input."""
        raise NotImplementedError

    def features(self, x: Tensor) -> Tensor:
        """Model input -> ``[B, D]`` raw features."""
        raise NotImplementedError

    def forward(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        return self.features(self.preprocess(images, align))

    def centred(self, features: Tensor) -> Tensor:
        """Raw :meth:`features` ``[B, D]`` minus the reference mean (unchanged where none is shipped)."""
        return features - self.reference_mean.to(features) if self.reference_mean.numel() else features

    def published_copy(self) -> Encoder:
        """A copy with the network's layers as published, for an attacker who fine-tunes its weights (an encoder that
        folds layers together for speed rebuilds itself unfolded: folding changes what training moves)."""
        return copy.deepcopy(self)

    def embed(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        """Centred features ``[B, D]`` (raw features minus the reference mean)."""
        return self.centred(self(images, align))
