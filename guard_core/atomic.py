"""Atomic file writes: write to a temp file in the destination folder, then rename over the target.

A crash or an exception mid-write leaves either the old file or the new one, never half a file, and no temp litter.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "is_temp_name", "clean_stale_temps"]

TEMP_MARK = ".tmp-"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], suffix: str | None = None, mode: int | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` with ``mode`` (default: what a plain
    ``open()`` would give under the current umask; key files pass 0600).

    ``suffix`` defaults to the target's (``.nii.gz`` kept whole) so writers that look at the extension still work.
    """
    path = Path(path)
    if suffix is None:
        suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", suffix=suffix, dir=path.parent)  # created 0600
    except OSError as exc:  # name the file the user asked for, not our temp file
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
        _clear_earlier_temps(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _clear_earlier_temps(path: Path) -> None:
    """Remove the temps an earlier writer of ``path`` left when it was killed: the file they were for is now written
    whole, so they can only be litter (a rerun right after a crash is younger than :func:`clean_stale_temps`' age)."""
    for f in path.parent.glob(f".{glob.escape(path.name)}{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            f.unlink()


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_output`'s temp files (hidden, ``.<target>.tmp-XXXXXXXX<suffix>``)."""
    return name.startswith(".") and TEMP_MARK in name


def clean_stale_temps(folder: str | os.PathLike[str], older_than: float = 300.0) -> list[Path]:
    """Remove the temp files a killed writer left in ``folder`` (older than ``older_than`` seconds, so a writer still
    running beside us keeps its own); returns what was removed."""
    import time

    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for f in entries:
        try:
            if is_temp_name(f.name) and f.is_file() and now - f.stat().st_mtime > older_than:
                f.unlink()
                removed.append(f)
        except OSError:
            continue
    return removed
