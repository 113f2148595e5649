"""photo_guard's built-in features, registered through the same hooks a third-party plugin uses."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from guard_core import eot

from .errors import PhotoGuardError
from .hookspecs import hookimpl

_import_queue: ThreadPoolExecutor | None = None  # started by the first import, not by importing this module


def _queue() -> ThreadPoolExecutor:
    global _import_queue
    if _import_queue is None:
        _import_queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo_guard-import")
    return _import_queue


@hookimpl
def register_encoders(register):
    from . import encoders

    for name, factory in encoders.BUILTIN_ENCODERS.items():
        register(name, factory)


@hookimpl
def register_objectives(register):
    from .objective import dp2vl_loss

    register("dp2vl", dp2vl_loss)


@hookimpl
def register_transforms(register):
    for t in (*eot.default_transforms(), eot.RandomAlign()):
        register(type(t).__name__, t)


def _protect(paths: list[Path], out_dir: Path | None, context: dict, backup: bool = True) -> list[Path]:
    from .batch import protect_files
    from .protect import ProtectConfig

    cfg = ProtectConfig(**context.get("config", {}))
    report = protect_files(paths, out_dir, cfg, in_place=out_dir is None, backup=backup)
    context["report"] = report  # for hosts that count what was done, skipped or failed
    if report.failed:
        raise PhotoGuardError("; ".join(message for _, message in report.failed))
    done = {p.name: p for p in report.protected}  # a photo finished by an earlier run is where that run put it
    return [done.get(p.name) or (Path(out_dir) / p.name if out_dir is not None else p) for p in paths]


@hookimpl
def photo_before_share(photo, context):
    """Protect one photo into ``context["out_dir"]`` (default: a ``protected`` folder beside it); return its path."""
    path = Path(photo)
    out_dir = Path(context.get("out_dir") or path.parent / "protected")
    return _protect([path], out_dir, context)[0]


@hookimpl
def photo_before_upload(photo, context):
    return photo_before_share(photo, context)


@hookimpl
def photo_on_export(photos, destination, context):
    """Exported copies are protected where they are (the originals stay in the library)."""
    return _protect([Path(p) for p in photos], None, context, backup=False) if photos else []


@hookimpl
def photo_on_import(photos, context) -> Future:
    """Queue the imported photos for protection into ``context["out_dir"]`` and return at once."""
    out_dir = Path(context["out_dir"])
    return _queue().submit(_protect, [Path(p) for p in photos], out_dir, context)
