"""The manifest of an output folder (``photo_guard_manifest.json`` at its top): per protected photo, keyed by its
relative path, the source's keyed hash and the parameters it was protected with, so a re-run skips finished work. The
folder is meant to be shared, so the manifest holds nothing private (:mod:`photo_guard.batch`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from guard_core.atomic import atomic_output

__all__ = ["MANIFEST_NAME", "Manifest"]

log = logging.getLogger(__name__)
MANIFEST_NAME = "photo_guard_manifest.json"


class Manifest:
    """The JSON record of one output folder, written atomically after every photo."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self.data = self._load()

    def _load(self) -> dict:
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("version") == 2:
                    return data
            except (OSError, json.JSONDecodeError, AttributeError):
                pass
            log.warning("%s: unreadable or old manifest; starting a new one", self.path)
        return {"format": "photo_guard-manifest", "version": 2, "photos": {}}

    def done(self, rel: str, source_key: str, params: dict) -> bool:
        entry = self.data["photos"].get(rel)
        return bool(
            entry
            and not entry.get("pending")
            and entry["source_key"] == source_key
            and entry["params"] == params
            and (self.path.parent / rel).exists()
        )

    def owns(self, rel: str) -> bool:
        """Whether the file at ``rel`` was written by photo-guard (so replacing it loses nothing of the user's)."""
        return rel in self.data["photos"]

    def record(self, rel: str, entry: dict | None) -> None:
        """Add one photo: re-read, update and rewrite under a lock, so parallel workers (torchrun ranks) sharing an
        output folder never lose each other's entries."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)  # lock the folder itself: no lock file left in a shared folder
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.data = self._load()
            if entry is None:
                self.data["photos"].pop(rel, None)
            else:
                self.data["photos"][rel] = entry
            with atomic_output(self.path) as tmp:
                tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")
        finally:
            os.close(fd)
