"""Every DICOM AMIF writes passes the strictest validator, dciodvfy (Debian's dicom3tools), with no error
(issue 17.6): pydicom's own MR_small with its CT_small downsampled to 64×64, grey and colour, with and without a key."""

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) not installed")


def _findings(path) -> list[str]:
    assert DCIODVFY is not None
    out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith(("Error", "Warning"))]


@pytest.fixture
def inputs(tmp_path):
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    small = ct.pixel_array[::2, ::2].astype(ct.pixel_array.dtype)  # 128 -> 64, same study geometry as the MR
    ct.Rows, ct.Columns, ct.PixelData = 64, 64, small.tobytes()
    mr.save_as(tmp_path / "mr.dcm")
    ct.save_as(tmp_path / "ct.dcm")
    return tmp_path / "mr.dcm", tmp_path / "ct.dcm"


@pytest.mark.parametrize("licensed", [False, True])
def test_fused_secondary_capture_has_no_validator_findings(inputs, tmp_path, licensed, monkeypatch):
    weights = tmp_path / "w" / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), weights)
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    if licensed:
        monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    out = tmp_path / "fused.dcm"
    r = CliRunner().invoke(cli, ["fuse", *map(str, inputs), "-o", str(out), "--weights", str(weights)])
    assert r.exit_code == 0, r.output
    assert [f for f in _findings(out) if f.startswith("Error")] == []
    assert _findings(out) == []  # no warning either: nothing outside the Secondary Capture IOD


def test_png_inputs_to_dicom_have_no_validator_errors(tmp_path):
    from PIL import Image

    weights = tmp_path / "w" / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), weights)
    for name in ("m.png", "c.png"):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)).save(tmp_path / name)
    out = tmp_path / "fused.dcm"
    r = CliRunner().invoke(
        cli, ["fuse", str(tmp_path / "m.png"), str(tmp_path / "c.png"), "-o", str(out), "--weights", str(weights)]
    )
    assert r.exit_code == 0, r.output
    assert [f for f in _findings(out) if f.startswith("Error")] == []
