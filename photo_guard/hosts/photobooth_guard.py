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
        from ..batch import protect_files
        from ..protect import ProtectConfig

        photos = [Path(f) for f in files if Path(f).suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
        by_folder: dict[Path, list[Path]] = {}
        for f in photos:
            by_folder.setdefault(f.parent, []).append(f)
        for folder, group in by_folder.items():
            report = protect_files(group, folder / "protected", ProtectConfig(strength=self.strength, steps=self.steps))
            for _, message in report.failed:
                log.error("photo_guard: %s", message)
