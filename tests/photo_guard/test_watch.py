import json
import threading
import time

from photo_guard.batch import MANIFEST_NAME
from photo_guard.protect import ProtectConfig
from photo_guard.watch import watch
from tests.photo_guard.conftest import make_photo


def _run_watch(inbox, outbox, stop, reports):
    cfg = ProtectConfig(encoders=("tiny",), steps=2, device="cpu")
    t = threading.Thread(
        target=watch,
        args=(inbox, outbox, cfg),
        kwargs=dict(settle=0.6, poll=0.1, stop=stop, on_done=reports.append),
        daemon=True,
    )
    t.start()
    return t


def _wait(cond, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_watch_waits_for_complete_files_survives_bad_ones_and_resumes(tiny_encoder, tmp_path):
    inbox, outbox, staging = tmp_path / "in", tmp_path / "out", tmp_path / "staging"
    inbox.mkdir()
    staging.mkdir()
    data = make_photo(staging / "slow.jpg", size=(64, 64)).read_bytes()
    stop, reports = threading.Event(), []
    thread = _run_watch(inbox, outbox, stop, reports)
    # A photo copied in slowly, in pieces: it must not be taken half-written.
    with open(inbox / "slow.jpg", "wb") as f:
        for i in range(0, len(data), len(data) // 4 + 1):
            f.write(data[i : i + len(data) // 4 + 1])
            f.flush()
            time.sleep(0.3)
    (inbox / "bad.jpg").write_text("not a photo")
    assert _wait(lambda: (outbox / "slow.jpg").exists())
    assert _wait(lambda: any(r.failed for r in reports))
    stop.set()
    thread.join(10)
    manifest = json.loads((outbox / MANIFEST_NAME).read_text())
    assert list(manifest["photos"]) == ["slow.jpg"]
    done_at = (outbox / "slow.jpg").stat().st_mtime_ns

    # Restart: the finished photo is not redone; a new one that arrived while stopped is protected.
    make_photo(inbox / "new.jpg", seed=3, size=(64, 64))
    stop2, reports2 = threading.Event(), []
    thread2 = _run_watch(inbox, outbox, stop2, reports2)
    assert _wait(lambda: (outbox / "new.jpg").exists())
    time.sleep(1.5)
    stop2.set()
    thread2.join(10)
    assert (outbox / "slow.jpg").stat().st_mtime_ns == done_at
    assert sum(len(r.protected) for r in reports2) == 1
    assert sum(len(r.failed) for r in reports2) == 1  # the bad file is reported once per run, and the watcher went on
