"""State that belongs to the photo owner and never goes into a folder meant to be shared.

The owner secret (32 random bytes, mode 0600) lives in ``$PHOTO_GUARD_STATE`` or ``~/.local/state/photo_guard``. The
output manifest identifies a source photo only by an HMAC of its bytes under this secret: enough to tell on a rerun
that the same photo was already protected, useless to anyone who wants to match a shared photo to an original.
The same secret fixes the owner's *anchor*: the point in each encoder's embedding space that every protected photo of
this owner is pushed toward, whichever call protects it (one photo at a time or a whole set).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import torch
import torch.nn.functional as F

from guard_core.atomic import atomic_output

__all__ = ["state_dir", "owner_secret", "keyed_digest", "anchor_direction", "photo_seed", "STATE_ENV"]

STATE_ENV = "PHOTO_GUARD_STATE"


def state_dir() -> Path:
    """Where the owner's private state lives (created 0700 on first use)."""
    env = os.environ.get(STATE_ENV)
    base = (
        Path(env) if env else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "photo_guard"
    )
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


def owner_secret() -> bytes:
    """The owner's secret, made on first use."""
    path = state_dir() / "owner.key"
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_bytes(32)
    with atomic_output(path, mode=0o600) as tmp:
        tmp.write_bytes(data)
    return data


def keyed_digest(path: str | os.PathLike) -> str:
    """HMAC-SHA256 of a file's bytes under the owner secret (hex)."""
    mac = hmac.new(owner_secret(), digestmod=hashlib.sha256)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            mac.update(chunk)
    return mac.hexdigest()


def anchor_direction(encoder: str, dim: int, secret: bytes | None = None) -> torch.Tensor:
    """The owner's anchor for ``encoder``: a unit vector ``[dim]`` drawn from a seed derived from the owner secret
    (``secret`` overrides it: the evaluation simulates many owners). It depends on nothing about the photos, so it
    carries no label, and it stays the same across calls, so photos protected one at a time move coherently."""
    seed = hmac.new(secret or owner_secret(), f"anchor:{encoder}".encode(), hashlib.sha256).digest()
    g = torch.Generator().manual_seed(int.from_bytes(seed[:8], "little") & (2**63 - 1))
    return F.normalize(torch.randn(dim, generator=g), dim=0)


def photo_seed(pixels: torch.Tensor, seed: int = 0, secret: bytes | None = None) -> int:
    """A seed for the optimiser's random start and transform draws, from the photos ``pixels`` (any shape, in [0, 1])
    under the owner secret: the same photo gets the same protection on a rerun, different photos different draws.

    One fixed seed for every call gave each photo protected on its own the same starting noise and the same transform
    sequence; drawing them per photo lowered what an SFace head learns from one-by-one photos from 59 % to 46 %
    (issue 14, goal 5; docs/photo_guard.md)."""
    data = (pixels.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy().tobytes()
    mac = hmac.new(secret or owner_secret(), f"seed:{seed}:".encode() + data, hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "little") & (2**63 - 1)
