"""Kill ``photo-guard protect`` at random points of a batch (kill -9), rerun it, and the final outputs equal those of
an uninterrupted run, with no temp litter and a complete manifest (issue 15, crash suite).

Photos are protected one per set (``--set-size 1``), as the hosts protect them, so each output depends on its photo
alone and an interrupted-then-resumed run must reproduce the uninterrupted one bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from photo_guard.batch import MANIFEST_NAME
from tests.photo_guard.conftest import make_photo
from tests.reliability.conftest import REPO, snapshot

N_PHOTOS = 8


def _args(src, out):
    return [
        sys.executable,
        "-m",
        "tests.reliability.photo_guard_tiny",
        "protect",
        str(src),
        "-o",
        str(out),
        "--encoders",
        "tiny",
        "--steps",
        "20",
        "--device",
        "cpu",
        "--set-size",
        "1",
    ]


def _env(state):
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PHOTO_GUARD_STATE": str(state)}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    src = tmp_path_factory.mktemp("lib")
    for i in range(N_PHOTOS):
        make_photo(src / f"p{i}.png", seed=i, size=(48, 64), fmt="PNG")
    return src


@pytest.fixture(scope="module")
def reference(library, tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    done = subprocess.run(_args(library, root / "out"), env=_env(root / "state"), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return root


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_at_a_random_point_then_resume(library, reference, tmp_path, seed):
    rng = random.Random(seed)
    out, state = tmp_path / "out", reference / "state"  # the owner's secret is the same person's
    kill_after = rng.randint(1, N_PHOTOS - 2)  # outputs finished before the kill
    proc = subprocess.Popen(_args(library, out), env=_env(state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and sum(1 for p in out.glob("p*.png")) >= kill_after:
            time.sleep(rng.uniform(0, 0.2))  # somewhere inside the next photo
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = json.loads((out / MANIFEST_NAME).read_text())["photos"] if (out / MANIFEST_NAME).exists() else {}
    assert sum(not e.get("pending") for e in finished.values()) < N_PHOTOS  # it really stopped mid-batch
    rerun = subprocess.run(_args(library, out), env=_env(state), capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    expected = snapshot(reference / "out")
    got = snapshot(out)
    assert not [name for name in got if name.startswith(".")], got  # no temp litter
    photos = {k: v for k, v in expected.items() if k != MANIFEST_NAME}
    assert {k: v for k, v in got.items() if k != MANIFEST_NAME} == photos
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert set(manifest["photos"]) == set(photos)
