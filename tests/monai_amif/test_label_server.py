"""The real MONAI Label server with the AMIF app (hooks/monai_label), over HTTP on 127.0.0.1.

Runs where ``bash hooks/sdk_venv.sh label`` has made ``.venv-label`` (CI does); skips elsewhere. Two servers are
started on a small study folder, one with a licence key file in its environment and one without, and the same infer
request goes to both.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from guard_core.keys import Key
from monai_amif.deploy import run_bundle

REPO = Path(__file__).resolve().parents[2]
LABEL_VENV = REPO / ".venv-label"
SAMPLE = REPO / "samples" / "amif" / "ct"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (LABEL_VENV / "bin" / "monailabel").exists(), reason="no .venv-label (bash hooks/sdk_venv.sh label)"
    ),
]


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("studies")
    shutil.copy(SAMPLE / "MRI.png", folder / "mr_001.png")
    shutil.copy(SAMPLE / "CT.png", folder / "ct_001.png")
    return folder


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> Path:
    """The shipped demo model's licence key (passphrase ``amif-demo``), as a key file: what a site mounts."""
    return Key.from_passphrase("amif-demo").save(tmp_path_factory.mktemp("secrets") / "licence.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def label_server(studies: Path, log: Path, key_file: Path | None) -> Iterator[str]:
    """``monailabel start_server`` exactly as the hook's README says, on a free port of 127.0.0.1."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AMIF_KEY_FILE", "AMIF_PASSPHRASE")}
    env["PATH"] = f"{LABEL_VENV / 'bin'}:{env['PATH']}"
    env["MONAI_LABEL_APP_DIR"] = str(log.parent / "app_cache")
    if key_file:
        env["AMIF_KEY_FILE"] = str(key_file)
    command = ["monailabel", "start_server", "--app", str(REPO / "hooks" / "monai_label"), "--studies", str(studies)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"MONAI Label exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if requests.get(f"{url}/info/", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"MONAI Label did not answer in 180 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _infer(url: str, func: str, output: str) -> requests.Response:
    form = {"params": (None, json.dumps({"func": func}))}
    query = {"image": "mr_001", "output": output}
    return requests.post(f"{url}/infer/amif_fusion", params=query, files=form, timeout=300)


def _local(studies: Path, out: Path, key_file: Path | None, monkeypatch) -> np.ndarray:
    """The same pair through ``run_bundle`` in this process (what ``amif`` and the bundle run)."""
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    if key_file:
        monkeypatch.setenv("AMIF_KEY_FILE", str(key_file))
    else:
        monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
    pair = {"mri": str(studies / "mr_001.png"), "func": str(studies / "ct_001.png"), "task": "fused", "name": "mr_001"}
    (path,) = run_bundle([pair], out)
    return np.asarray(Image.open(path), dtype=np.float32)


@pytest.fixture(scope="module")
def served(studies, key_file, tmp_path_factory) -> dict:
    """Both servers' answers: the fused PNG, the JSON result, a refused request, and the server logs."""
    answers: dict = {}
    for name, kf in (("licensed", key_file), ("unlicensed", None)):
        log = tmp_path_factory.mktemp(name) / "server.log"
        with label_server(studies, log, kf) as url:
            image = _infer(url, "ct_001", "image")
            result = _infer(url, "ct_001", "json")
            refused = _infer(url, str(studies / "ct_001.png"), "json")  # a server path, not an id
        answers[name] = {"image": image, "json": result, "refused": refused, "log": log.read_text(errors="replace")}
    return answers


def test_fused_image_comes_back_over_http_as_the_bundle_makes_it(served, studies, key_file, tmp_path, monkeypatch):
    for name, kf in (("licensed", key_file), ("unlicensed", None)):
        response = served[name]["image"]
        assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text[:500]
        fused = np.asarray(Image.open(io.BytesIO(response.content)), dtype=np.float32)
        local = _local(studies, tmp_path / name, kf, monkeypatch)
        assert fused.shape == local.shape == (256, 256)
        assert np.abs(fused - local).max() <= 1.0, name


def test_marked_without_the_key_clean_with_it(served):
    licensed = np.asarray(Image.open(io.BytesIO(served["licensed"]["image"].content)), dtype=np.float32)
    unlicensed = np.asarray(Image.open(io.BytesIO(served["unlicensed"]["image"].content)), dtype=np.float32)
    assert served["licensed"]["json"].json()["marked"] is False
    assert served["unlicensed"]["json"].json()["marked"] is True
    # The mark is drawn where the template says (the gate's own measure, as in `amif evaluate`).
    import torch

    from monai_amif.loading import load_plain_model
    from monai_amif.metrics import mark_ncc

    net = load_plain_model(REPO / "bundles" / "amif_fusion" / "models" / "model.pt")
    mask, intensity = net.template_at(256, 256).split(1, dim=1)
    as_tensor = lambda a: torch.from_numpy(a / 255.0)[None, None].float()  # noqa: E731
    assert float(mark_ncc(as_tensor(unlicensed), as_tensor(licensed), mask, intensity)) >= 0.8


def test_a_client_cannot_name_a_server_file_and_the_key_never_leaves(served, key_file):
    secret = base64.b64decode(json.loads(key_file.read_text())["key"])
    forms = {base64.b64encode(secret).decode(), secret.hex(), key_file.read_text().strip()}
    for name in ("licensed", "unlicensed"):
        refused = served[name]["refused"]
        assert refused.status_code >= 400 and "must name a CT/PET/SPECT image id" in refused.text
        seen = served[name]["log"] + served[name]["json"].text + str(served[name]["image"].headers)
        seen += " ".join(r.url for r in (served[name]["image"], served[name]["json"], refused))
        assert not any(f in seen for f in forms) and not any(f.encode() in served[name]["image"].content for f in forms)
