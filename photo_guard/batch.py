"""Protecting folders of photos: output naming, a per-folder manifest, skipping finished work, surviving bad files.

The manifest (``photo_guard_manifest.json`` in each output folder) records the parameters and, per photo, the source's
content hash and the measured figures. A photo whose source hash and parameters are already in the manifest, with its
output present, is skipped, so a crash mid-batch loses nothing and a re-run does only what is left.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from guard_core.atomic import atomic_output
from guard_core.device import resolve

from .photo_io import SUPPORTED_SUFFIXES, PhotoError, codec_round_trip, is_lossy, read_photo, sha256_file, write_photo
from .encoders import build_encoder
from .protect import ProtectConfig, measure, protect_set

__all__ = ["MANIFEST_NAME", "BatchReport", "collect_photos", "protect_files", "Manifest"]

log = logging.getLogger(__name__)
MANIFEST_NAME = "photo_guard_manifest.json"


def collect_photos(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively) into photo files, in a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            out.append(p)
    return out


class Manifest:
    """The JSON record of one output folder, written atomically after every photo."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self.data = self._load()

    def _load(self) -> dict:
        if self.path.exists():
            try:
                return json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                log.warning("%s: unreadable manifest; starting a new one", self.path)
        return {"format": "photo_guard-manifest", "version": 1, "photos": {}}

    def done(self, name: str, source_hash: str, params: dict) -> bool:
        entry = self.data["photos"].get(name)
        return bool(entry and entry["source_sha256"] == source_hash and entry["params"] == params
                    and (self.path.parent / name).exists())

    def record(self, name: str, entry: dict) -> None:
        """Add one photo: re-read, update and rewrite under a lock, so parallel workers (torchrun ranks) sharing an
        output folder never lose each other's entries."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{MANIFEST_NAME}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.data = self._load()
            self.data["photos"][name] = entry
            with atomic_output(self.path) as tmp:
                tmp.write_text(json.dumps(self.data, indent=1), encoding="utf-8")


@dataclass
class BatchReport:
    protected: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def protect_files(files: list[Path], out_dir: Path | None, config: ProtectConfig, in_place: bool = False,
                  strip_gps: bool = False, set_size: int = 16, on_photo: Callable[[Path], None] | None = None,
                  backup: bool = True) -> BatchReport:
    """Protect ``files`` as one owner's set (in sets of ``set_size``), writing to ``out_dir`` (or in place)."""
    if out_dir is None and not in_place:
        raise ValueError("give an output folder, or ask for in-place protection explicitly")
    report = BatchReport()
    params = json.loads(json.dumps(config.to_dict()))  # as stored: tuples become lists
    manifests: dict[Path, Manifest] = {}

    def manifest_for(folder: Path) -> Manifest:  # one read per output folder, not one per photo
        if folder not in manifests:
            manifests[folder] = Manifest(folder)
        return manifests[folder]

    todo = []
    for f in files:
        dest_dir = f.parent if in_place else Path(out_dir)
        try:
            digest = sha256_file(f)
        except OSError as exc:
            report.failed.append((f, f"{f}: cannot read ({exc.strerror or exc})"))
            continue
        if manifest_for(dest_dir).done(f.name, digest, params):
            report.skipped.append(f)
            continue
        todo.append((f, digest, dest_dir))
    for start in range(0, len(todo), set_size):
        chunk, photos = [], []
        for f, digest, dest_dir in todo[start:start + set_size]:
            try:
                photos.append(read_photo(f))
                chunk.append((f, digest, dest_dir))
            except PhotoError as exc:
                report.failed.append((f, str(exc)))
        if not photos:
            continue
        encoders = [build_encoder(n) for n in config.encoders]
        results = protect_set([p.pixels for p in photos], config, encoders=encoders, measure_result=False)
        written = []
        for (f, digest, dest_dir), photo, result in zip(chunk, photos, results):
            try:
                out = write_photo(photo, result.pixels, dest_dir / f.name, strip_gps=strip_gps, in_place=in_place,
                                  backup=backup)
                written.append((f, digest, dest_dir, photo, out))
            except (PhotoError, OSError) as exc:
                report.failed.append((f, str(exc) if isinstance(exc, PhotoError) else f"{f}: cannot write ({exc})"))
        # Budget and shift are measured on the files as written (8-bit, the format's own compression).
        decoded = [read_photo(out).pixels for *_, out in written]
        stats = measure([w[3].pixels for w in written], decoded, encoders, config.work_size,
                        resolve(config.device)) if written else []
        for (f, digest, dest_dir, photo, out), st in zip(written, stats):
            if is_lossy(photo):
                # A lossy format moves pixels on its own: record that floor beside the measured deviation.
                floor = (codec_round_trip(photo, photo.pixels) - photo.pixels).abs().max() * 255
                st = {**st, "lossy": True, "codec_floor_linf_255": float(floor)}
            manifest_for(dest_dir).record(f.name, {"source": str(f), "source_sha256": digest, "output_sha256": sha256_file(out),
                                               "params": params, **st})
            report.protected.append(out)
            if on_photo:
                on_photo(out)
    return report
