"""The adaptive attacker: knows how the tool works and has it.

They protect photos of people of their own (outside the shared sets) with the same tool and settings, learn a map
from protected embeddings back to clean ones (ridge regression on L2-normalised features), and train their head on
the shared photos' embeddings mapped back. Against a target with a fixed relation to the identity (the antithetical
one) such a map undoes the shift; against a per-owner anchor it must learn to undo a shift toward a point the
attacker's own photos do not share.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..photo_io import SUPPORTED_SUFFIXES, load_rgb
from .task import ImageSet, Task

__all__ = ["own_photos", "fit_inverse", "apply_inverse"]


def own_photos(data: Path, task: Task, n: int, seed: int = 0) -> ImageSet:
    """``n`` photos of people outside the task (one per person, then a second each, ...), seeded."""
    taken = set(task.identities)
    people = sorted(d for d in Path(data).iterdir() if d.is_dir() and d.name not in taken)
    rng = random.Random(seed + 1)
    files = [sorted(f for f in d.iterdir() if f.suffix.lower() in SUPPORTED_SUFFIXES) for d in people]
    for fs in files:
        rng.shuffle(fs)
    picked = [fs[i] for i in range(max(map(len, files), default=0)) for fs in files if i < len(fs)][:n]
    return [load_rgb(f) for f in picked]


def fit_inverse(protected: Tensor, clean: Tensor, ridge: float = 0.1) -> Tensor:
    """``W [D, D]`` minimising ``|P W - C|² + ridge·|W|²`` on normalised features ``[N, D]`` of the same photos."""
    p, c = F.normalize(protected.double(), dim=1), F.normalize(clean.double(), dim=1)
    eye = torch.eye(p.shape[1], dtype=p.dtype)
    return torch.linalg.solve(p.T @ p + ridge * eye, p.T @ c).float()


def apply_inverse(features: Tensor, inverse: Tensor) -> Tensor:
    """Protected features ``[N, D]`` mapped back toward their clean embeddings ``[N, D]``."""
    return F.normalize(features.float(), dim=1) @ inverse
