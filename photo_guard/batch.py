"""Protecting folders of photos: a mirrored output tree, a per-folder manifest, skipping finished work, surviving
bad files.

A folder given as input is mirrored under the output folder (``lib/a/IMG_0001.JPG`` -> ``out/a/IMG_0001.JPG``), so
camera folders that reuse names never collide; two inputs that would still land on one output are refused, never
written over each other. The manifest (``photo_guard_manifest.json`` at the top of the output folder, which is meant
to be shared) is keyed by the output's relative path and holds nothing private: no source path, and the source only
as a keyed hash under the owner's secret (:mod:`photo_guard.owner_state`). A photo whose keyed hash and parameters
are already recorded, with its output present, is skipped, so a crash mid-batch loses nothing and a re-run does only
what is left. Every written photo is measured as written; one over its budget is removed and reported as failed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from guard_core.atomic import clean_stale_temps
from guard_core.device import resolve

from .clean_view import clean_view
from .encoders import build_encoder
from .errors import PhotoGuardError
from .manifest import MANIFEST_NAME, Manifest
from .measure import measure
from .owner_state import keyed_digest, state_dir
from .people import PEOPLE_FILE, PeopleMemory, people_memory
from .photo_io import SUPPORTED_SUFFIXES, PhotoError, codec_change_255, is_lossy, read_photo, sha256_file, write_photo
from .protect import ProtectConfig, protect_set

__all__ = ["MANIFEST_NAME", "Source", "BatchReport", "collect_photos", "protect_files", "Manifest"]

log = logging.getLogger(__name__)
_SIDECARS = (".xmp", ".aae", ".json", ".txt", ".thm", ".orig")  # what photo libraries keep beside photos


@dataclass(frozen=True)
class Source:
    """A photo to protect and its path relative to the output folder (its name, or its place in a mirrored tree)."""

    path: Path
    rel: PurePosixPath


def collect_photos(
    paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> tuple[list[Source], list[tuple[Path, str]]]:
    """Expand files and folders (recursively, mirrored) into sources, in a stable order.

    Returns ``(sources, skipped)``: ``skipped`` lists each file in a folder that is not taken, with why (unsupported
    format); hidden files (temp files of an interrupted write among them), sidecars and anything under ``exclude``
    (the output folder, when it lies inside an input folder) are passed over silently.
    """
    skip_dir = os.path.realpath(exclude) if exclude is not None else None
    sources: list[Source] = []
    skipped: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if not p.is_dir():
            sources.append(Source(p, PurePosixPath(p.name)))
            continue
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p)
            if any(part.startswith(".") for part in rel.parts) or not f.is_file():
                continue
            if skip_dir and os.path.realpath(f).startswith(skip_dir + os.sep):
                continue
            suffix = f.suffix.lower()
            if suffix in SUPPORTED_SUFFIXES:
                sources.append(Source(f, PurePosixPath(*rel.parts)))
            elif suffix not in _SIDECARS:
                skipped.append(
                    (
                        f,
                        f"{f}: skipped: {suffix or 'no suffix'} is not a format photo-guard can protect "
                        f"within budget ({', '.join(SUPPORTED_SUFFIXES)})",
                    )
                )
    return sources, skipped


@dataclass
class BatchReport:
    protected: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class _Job:
    source: Source
    root: Path  # the manifest's folder
    dest: Path
    key: str


def _plan(
    sources: list[Source],
    out_dir: Path | None,
    in_place: bool,
    params: dict,
    manifests: dict[Path, Manifest],
    report: BatchReport,
) -> list[_Job]:
    """Where each source goes; what is already done; what would collide or overwrite a file that is not ours."""
    jobs: list[_Job] = []
    claimed: dict[Path, Path] = {}
    for src in sources:
        root = src.path.parent if in_place else Path(out_dir)  # type: ignore[arg-type]
        rel = src.path.name if in_place else str(src.rel)
        dest = root / rel
        manifest = manifests.setdefault(root, Manifest(root))
        try:
            key = keyed_digest(src.path)
        except OSError as exc:
            report.failed.append((src.path, f"{src.path}: cannot read ({exc.strerror or exc})"))
            continue
        if dest in claimed:
            report.failed.append(
                (
                    src.path,
                    f"{src.path}: not written: {claimed[dest]} also goes to {dest}; protect "
                    "the two into different output folders",
                )
            )
            continue
        claimed[dest] = src.path
        if manifest.done(rel, key, params):
            report.skipped.append(src.path)
            continue
        if not in_place and dest.exists() and not manifest.owns(rel):
            report.failed.append(
                (
                    src.path,
                    f"{src.path}: not written: {dest} exists and was not written by "
                    "photo-guard (remove it or choose another output folder)",
                )
            )
            continue
        jobs.append(_Job(src, root, dest, key))
    return jobs


def protect_files(
    files: list[Path] | list[Source],
    out_dir: Path | None,
    config: ProtectConfig,
    in_place: bool = False,
    strip_gps: bool = False,
    set_size: int = 16,
    on_photo: Callable[[Path], None] | None = None,
    backup: bool = True,
) -> BatchReport:
    """Protect ``files`` as one owner's set (in sets of ``set_size``), writing to ``out_dir`` (or in place).

    ``files`` are :class:`Source` s from :func:`collect_photos` (mirrored tree) or plain paths (kept by name).
    """
    if out_dir is None and not in_place:
        raise PhotoGuardError("give an output folder, or ask for in-place protection explicitly")
    report = BatchReport()
    params = json.loads(json.dumps(config.to_dict()))  # as stored: tuples become lists
    sources = [f if isinstance(f, Source) else Source(Path(f), PurePosixPath(Path(f).name)) for f in files]
    manifests: dict[Path, Manifest] = {}
    if out_dir is not None and not in_place:
        for folder in {Path(out_dir, *s.rel.parts[:-1]) for s in sources}:
            clean_stale_temps(folder)
    jobs = _plan(sources, out_dir, in_place, params, manifests, report)
    # Read once per batch, saved after every chunk (a crash keeps what the finished chunks taught it).
    encoders = [build_encoder(n) for n in config.encoders]
    people = people_memory(encoders, state_dir() / PEOPLE_FILE) if config.people and jobs else None
    for start in range(0, len(jobs), set_size):
        _protect_chunk(
            jobs[start : start + set_size],
            config,
            params,
            manifests,
            report,
            strip_gps,
            in_place,
            backup,
            on_photo,
            people,
        )
    return report


def _protect_chunk(
    chunk: list[_Job],
    config: ProtectConfig,
    params: dict,
    manifests: dict[Path, Manifest],
    report: BatchReport,
    strip_gps: bool,
    in_place: bool,
    backup: bool,
    on_photo: Callable[[Path], None] | None,
    people: PeopleMemory | None,
) -> None:
    jobs, photos = [], []
    for job in chunk:
        try:
            photos.append(read_photo(job.source.path))
            jobs.append(job)
        except PhotoError as exc:
            report.failed.append((job.source.path, str(exc)))
    if not photos:
        return
    encoders = [build_encoder(n) for n in config.encoders]
    device = resolve(config.device)
    # The clean photos' working copies, face alignments and embeddings serve the protection and the re-check.
    view = clean_view([p.pixels for p in photos], [e.to(device) for e in encoders], config.work_size, device)
    results = protect_set(
        [p.pixels for p in photos], config, encoders=encoders, people=people, measure_result=False, view=view
    )
    if people is not None:
        people.save()
    written = []
    for job, photo, result in zip(jobs, photos, results):
        rel = job.dest.relative_to(job.root).as_posix()
        # Claimed before it is written: a crash between the write and the record still leaves the file ours.
        manifests[job.root].record(rel, {"source_key": job.key, "params": params, "pending": True})
        try:
            out = write_photo(photo, result.pixels, job.dest, strip_gps=strip_gps, in_place=in_place, backup=backup)
            written.append((job, photo, result.pixels, out))
        except (PhotoError, OSError) as exc:
            message = str(exc) if isinstance(exc, PhotoError) else f"{job.dest}: cannot write ({exc.strerror or exc})"
            report.failed.append((job.source.path, message))
            manifests[job.root].record(rel, None)
    # Budget and shift are measured on the files as written (8-bit, the format's own compression).
    decoded = [read_photo(out).pixels for *_, out in written]
    stats = (
        measure(
            [w[1].pixels for w in written],
            decoded,
            encoders,
            config.work_size,
            device,
            view if len(written) == len(photos) else None,  # a failed write: measure the rest afresh
        )
        if written
        else []
    )
    for (job, photo, protected, out), st in zip(written, stats):
        budget = config.eps * 255 + 1.0  # one level of 8-bit rounding
        if is_lossy(photo):
            # A lossy format moves pixels on its own, and by more on a perturbed image than on the original (the
            # perturbation is fine detail the quantiser rounds): what an independent encode of the protected pixels
            # changes is recorded and allowed beside the budget. A write that went wrong still shows: the file must
            # decode to that encode, within the budget of the original.
            floor = codec_change_255(photo, protected)
            st = {**st, "lossy": True, "codec_floor_linf_255": floor}
            budget += floor
        if st["linf_255"] > budget:
            kept = out.with_name(out.name + ".orig")
            if not in_place:
                out.unlink(missing_ok=True)
            elif backup and kept.exists():
                os.replace(kept, out)  # the original back where it was
            report.failed.append(
                (
                    job.source.path,
                    f"{job.source.path}: not kept: the written {photo.format} is "
                    f"{st['linf_255']:.1f}/255 from the original, over the "
                    f"{budget:.1f}/255 budget",
                )
            )
            manifests[job.root].record(out.relative_to(job.root).as_posix(), None)
            continue
        rel = out.relative_to(job.root).as_posix()
        manifests[job.root].record(
            rel, {"source_key": job.key, "output_sha256": sha256_file(out), "params": params, **st}
        )
        report.protected.append(out)
        if on_photo:
            on_photo(out)
