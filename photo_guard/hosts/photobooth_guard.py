"""photo_guard for photobooth-app: each photo added to the booth's collection gets a protected copy for sharing.

photobooth-app discovers plugins in its ``photobooth11`` entry-point group and instantiates the class named after the
module (``photobooth_guard`` -> ``PhotoboothGuard``). Protected copies go to a ``protected`` folder beside each file;
the booth's originals are left as they are.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pluggy

hookimpl = pluggy.HookimplMarker("photobooth-app")
log = logging.getLogger(__name__)


class PhotoboothGuard:
    """The plugin object photobooth-app registers."""

    def __init__(self, strength: str = "default", steps: int = 40) -> None:
        self.strength, self.steps = strength, steps

    @hookimpl
    def collection_files_added(self, files: list[Path], priority_modifier: int) -> None:
        from ..photo_io import SUPPORTED_SUFFIXES
        from .share import share_photo

        config = {"strength": self.strength, "steps": self.steps}
        for f in map(Path, files):
            if f.suffix.lower() in SUPPORTED_SUFFIXES:
                share_photo(f, {"out_dir": f.parent / "protected", "config": config, "host": "photobooth-app"})
