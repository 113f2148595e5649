"""photo_guard for osxphotos: protect every file osxphotos exports, right after it is written.
Usage: osxphotos export DEST --post-function /path/to/photo_guard_post.py::protect
"""

from __future__ import annotations

import os
from pathlib import Path


def protect(photo, results, verbose=print, **kwargs):
    """osxphotos post-function: the exported files are copies, so they are protected in place, without backups."""
    from photo_guard.errors import PhotoGuardError
    from photo_guard.plugins import load_plugins

    files = [str(p) for p in getattr(results, "exported", [])]
    if not files:
        return
    context = {"config": {"steps": int(os.environ.get("PHOTO_GUARD_STEPS", "40"))}, "host": "osxphotos"}
    try:
        for done in load_plugins().hook.photo_on_export(
            photos=files, destination=str(Path(files[0]).parent), context=context
        ):
            for path in done or []:
                verbose(f"photo_guard: protected {path}")
    except PhotoGuardError as exc:
        verbose(f"photo_guard: failed {exc}")
