"""``photo-guard watch INBOX --out OUTBOX``: protect every photo that appears in a folder.

Built for sync and import folders (Immich, PhotoPrism, Syncthing...): a file is taken only once it is completely
written (its size and modification time have not changed for ``settle`` seconds and it decodes), each photo is handled
once (the output folder's manifest records it, so a restart neither redoes nor loses work), and a bad file is
reported and skipped without stopping the watcher.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from guard_core.memory import release_freed_memory

from .batch import BatchReport
from .errors import PhotoGuardError
from .photo_io import SUPPORTED_SUFFIXES
from .plugins import load_plugins
from .protect import ProtectConfig

__all__ = ["watch"]

log = logging.getLogger(__name__)


class _Pending(FileSystemEventHandler):
    """Collects candidate paths from file-system events (and rescans), with the time each was last seen changing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[Path, tuple[int, float, float]] = {}
        self.handled: dict[Path, tuple[int, float]] = {}  # done (or failed) at this size and mtime

    def touch(self, path: Path) -> None:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or path.name.startswith("."):
            return
        try:
            st = path.stat()
        except OSError:
            return
        with self.lock:
            if self.handled.get(path) == (st.st_size, st.st_mtime):
                return
            old = self.seen.get(path)
            if old is None or old[:2] != (st.st_size, st.st_mtime):
                self.seen[path] = (st.st_size, st.st_mtime, time.monotonic())

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Only writes count: our own reading of a file raises "opened"/"closed_no_write" events too.
        if not event.is_directory and event.event_type in ("created", "modified", "moved", "closed"):
            path = getattr(event, "dest_path", "") or event.src_path
            self.touch(Path(os.fsdecode(path)))

    def settled(self, settle: float) -> list[Path]:
        now, ready = time.monotonic(), []
        with self.lock:
            for path, (_, _, since) in list(self.seen.items()):
                if now - since >= settle:
                    ready.append(path)
                    del self.seen[path]
        return sorted(ready)


def _share(path: Path, outbox: Path, config: ProtectConfig) -> BatchReport:
    """One arriving photo through the ``photo_before_share`` hook (a plugin may protect it its way, or veto it)."""
    context: dict = {"out_dir": str(outbox), "config": asdict(config), "host": "watch"}
    try:
        out = load_plugins().hook.photo_before_share(photo=str(path), context=context)
    except PhotoGuardError as exc:  # a veto (ShareVetoed) included
        return BatchReport(failed=[(path, str(exc))])
    return context.get("report") or BatchReport(protected=[Path(out)] if out else [])


def watch(
    inbox: Path,
    outbox: Path,
    config: ProtectConfig,
    settle: float = 2.0,
    poll: float = 0.5,
    stop: threading.Event | None = None,
    on_done=None,
) -> None:
    """Protect photos arriving in ``inbox`` into ``outbox`` until ``stop`` is set (or Ctrl-C)."""
    inbox, outbox = Path(inbox), Path(outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    pending = _Pending()
    observer = Observer()
    observer.schedule(pending, str(inbox), recursive=False)
    observer.start()
    last_scan = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - last_scan > 10 * poll:  # events can be missed (network shares): rescan too
                for f in inbox.iterdir():
                    if f.is_file():
                        pending.touch(f)
                last_scan = time.monotonic()
            ready = pending.settled(settle)
            for path in ready:
                try:
                    st = path.stat()
                except OSError:
                    continue
                pending.handled[path] = (st.st_size, st.st_mtime)  # a bad file is reported once, until it changes
                report = _share(path, outbox, config)  # the manifest skips what a past run finished
                for _, message in report.failed:
                    log.error("%s", message)
                if on_done and (report.protected or report.failed):
                    on_done(report)
            if ready:
                release_freed_memory()  # between batches, what their photos freed goes back to the system
            stop.wait(poll)
    finally:
        observer.stop()
        observer.join()
