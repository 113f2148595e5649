"""photo_guard for osxphotos: protect every file osxphotos exports, right after it is written.
Usage: osxphotos export DEST --post-function /path/to/photo_guard_post.py::protect
"""

from __future__ import annotations

import os
from pathlib import Path


def protect(photo, results, verbose=print, **kwargs):
    """osxphotos post-function: the exported files are copies, so they are protected in place, without backups."""
    from photo_guard.batch import protect_files
    from photo_guard.protect import ProtectConfig

    files = [Path(p) for p in getattr(results, "exported", [])]
    if not files:
        return
    steps = int(os.environ.get("PHOTO_GUARD_STEPS", "40"))
    report = protect_files(files, None, ProtectConfig(steps=steps), in_place=True, backup=False)
    for path in report.protected:
        verbose(f"photo_guard: protected {path}")
    for _, message in report.failed:
        verbose(f"photo_guard: failed {message}")
