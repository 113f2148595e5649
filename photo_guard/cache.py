"""Where converted models are cached: ``$PHOTO_GUARD_CACHE``, else ``$XDG_CACHE_HOME/photo_guard``, else
``~/.cache/photo_guard``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    root = (
        os.environ.get("PHOTO_GUARD_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "photo_guard"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
