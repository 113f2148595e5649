"""Packing the MONAI Bundle into the versioned zip that ``monai.bundle download --url`` fetches and unpacks."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from guard_core.atomic import atomic_output

from .errors import AMIFError

__all__ = ["pack_bundle", "BUNDLE_FILES", "BundleError"]

# What a user of the bundle needs; run outputs, caches and editor files stay behind.
BUNDLE_FILES = (
    "configs/*.json",
    "configs/logging.conf",
    "models/model.pt",
    "models/model.json",
    "models/model.ts",
    "docs/*",
    "LICENSE",
    "README.md",
)
REQUIRED = ("configs/metadata.json", "configs/inference.json", "models/model.pt", "models/model.json", "LICENSE")
_FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # zip entry times fixed, so the same bundle packs to the same bytes


class BundleError(AMIFError):
    """The bundle folder cannot be packed; the message names the folder and what is missing."""


def pack_bundle(bundle_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write ``<out_dir>/<name>_v<version>.zip`` holding ``<name>/...`` (MONAI's download unpacks the top folder
    under ``bundle_dir``); ``name`` is the folder name, ``version`` the metadata's. Returns the zip's path."""
    root = Path(bundle_dir)
    missing = [f for f in REQUIRED if not (root / f).is_file()]
    if missing:
        raise BundleError(f"{root}: not a complete bundle, missing {', '.join(missing)}")
    try:
        version = json.loads((root / "configs" / "metadata.json").read_text())["version"]
    except (ValueError, KeyError):
        raise BundleError(f"{root / 'configs' / 'metadata.json'}: no readable 'version'") from None
    files = sorted({p for pattern in BUNDLE_FILES for p in root.glob(pattern) if p.is_file()})
    out = Path(out_dir) / f"{root.name}_v{version}.zip"
    with atomic_output(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{root.name}/{path.relative_to(root).as_posix()}", _FIXED_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return out
