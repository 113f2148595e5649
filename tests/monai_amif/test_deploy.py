"""Running the bundle on a PACS-style DICOM study folder (what the MONAI Deploy and Label hooks call)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from monai_amif.deploy import find_dicom_pairs, run_bundle
from tests.monai_amif.samples import png_pairs_to_dicom

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "amif" / "ct"


@pytest.fixture
def study(tmp_path):
    """An MR and a CT series of 3 slices each in one flat folder, files named like a PACS export (no suffix), the CT
    files numbered in reverse so that only slice positions can pair them correctly."""
    png = tmp_path / "png"
    for i, angle in enumerate((0, 90, 180)):
        for mod in ("MRI", "CT"):
            (png / mod).mkdir(parents=True, exist_ok=True)
            Image.open(SAMPLE / f"{mod}.png").rotate(angle).save(png / mod / f"s{i}.png")
    series = tmp_path / "series"
    png_pairs_to_dicom(png, series)
    flat = tmp_path / "study"
    flat.mkdir()
    for i, f in enumerate(sorted((series / "MRI").glob("*.dcm"))):
        shutil.copy(f, flat / f"IM{i:04d}")
    for i, f in enumerate(sorted((series / "CT").glob("*.dcm"), reverse=True)):
        shutil.copy(f, flat / f"IM{10 + i:04d}")
    (flat / "README.txt").write_text("not DICOM")  # exports carry such files; they are skipped
    return flat


def test_find_dicom_pairs_matches_slices_by_position(study):
    import pydicom

    pairs = find_dicom_pairs(study)
    assert len(pairs) == 3 and {p["task"] for p in pairs} == {"CT-MRI"}
    for p in pairs:
        mr, ct = pydicom.dcmread(p["mri"]), pydicom.dcmread(p["func"])
        assert mr.Modality == "MR" and ct.Modality == "CT"
        assert mr.ImagePositionPatient == ct.ImagePositionPatient
        assert p["name"] == mr.SOPInstanceUID


def test_find_dicom_pairs_names_the_folder_without_a_functional_series(study, tmp_path):
    only_mr = tmp_path / "mr_only"
    only_mr.mkdir()
    for f in sorted(study.iterdir())[:3]:
        shutil.copy(f, only_mr / f.name)
    with pytest.raises(FileNotFoundError, match="mr_only: no MR series with a CT, PET or SPECT series"):
        find_dicom_pairs(only_mr)


@pytest.mark.slow
def test_run_bundle_on_a_study_writes_derived_dicom(study, tmp_path, monkeypatch):
    import pydicom

    if not (REPO / "bundles" / "amif_fusion" / "models" / "model.pt").is_file():
        pytest.skip("shipped model missing")
    monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
    pairs = find_dicom_pairs(study)
    outputs = run_bundle(pairs, tmp_path / "out")
    assert len(outputs) == 3
    for p, out in zip(pairs, outputs):
        ds = pydicom.dcmread(out)
        assert ds.BurnedInAnnotation == "NO" and ds.Rows == 256
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == p["name"]


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except Exception:  # missing, or half-installed (Holoscan without its libraries)
        return False


def _deploy_python() -> str:
    """The interpreter with the SDK: ``.venv-deploy`` (made by ``bash hooks/sdk_venv.sh deploy``, as in CI), or this."""
    venv = REPO / ".venv-deploy" / "bin" / "python"
    if venv.exists():
        return str(venv)
    if _importable("monai.deploy.core"):
        return sys.executable
    pytest.skip("MONAI Deploy App SDK not installed (bash hooks/sdk_venv.sh deploy)")


def _run_app(app: str, study: Path, out: Path, model: Path, env: dict) -> None:
    done = subprocess.run(
        ["bash", "-c", f'ulimit -s 32768; "{_deploy_python()}" "{REPO / app}" -i "{study}" -o "{out}" -m "{model}"'],
        env={**os.environ, "AMIF_PASSPHRASE": "", "AMIF_KEY_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_monai_deploy_app_runs_on_a_study(study, tmp_path):
    """The real MONAI Deploy App SDK application (hooks/monai_deploy/app.py)."""
    import pydicom

    _run_app("hooks/monai_deploy/app.py", study, tmp_path / "out", REPO / "bundles/amif_fusion", {})
    written = sorted((tmp_path / "out" / "CT-MRI").glob("*.dcm"))
    assert len(written) == 3
    assert all(pydicom.dcmread(f).BurnedInAnnotation == "YES" for f in written)  # no key in the environment


@pytest.mark.slow
@pytest.mark.parametrize("passphrase", ["amif-demo", ""], ids=["licensed", "unlicensed"])
def test_stock_bundle_operator_runs_model_ts_as_the_bundle_does(study, tmp_path, monkeypatch, passphrase):
    """The SDK's own MonaiBundleInferenceOperator on models/model.ts (hooks/monai_deploy/stock_app.py) writes the
    same fused pixels as the bundle's inference config, marked exactly when the environment has no right key."""
    import pydicom

    model_ts = REPO / "bundles/amif_fusion/models/model.ts"
    _run_app("hooks/monai_deploy/stock_app.py", study, tmp_path / "stock", model_ts, {"AMIF_PASSPHRASE": passphrase})
    monkeypatch.setenv("AMIF_PASSPHRASE", passphrase)
    monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
    reference = {Path(p).name: p for p in run_bundle(find_dicom_pairs(study), tmp_path / "bundle")}
    written = sorted((tmp_path / "stock" / "CT-MRI").glob("*.dcm"))
    assert len(written) == len(reference) == 3
    for f in written:
        ours, theirs = pydicom.dcmread(f), pydicom.dcmread(reference[f.name])
        assert ours.BurnedInAnnotation == theirs.BurnedInAnnotation == ("NO" if passphrase else "YES")
        diff = ours.pixel_array.astype(int) - theirs.pixel_array.astype(int)
        assert abs(diff).max() <= 1


@pytest.mark.parametrize(
    "hook, extra, module",
    [
        ("monai_deploy/app.py", "deploy", "monai.deploy.core"),
        ("monai_deploy/stock_app.py", "deploy", "monai.deploy.core"),
        ("monai_label/main.py", "label", "monailabel.interfaces.app"),
    ],
)
def test_hooks_say_which_extra_to_install_when_the_sdk_is_missing(hook, extra, module):
    if _importable(module):
        pytest.skip(f"{module} is installed here")
    done = subprocess.run([sys.executable, str(REPO / "hooks" / hook)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"bash hooks/sdk_venv.sh {extra}" in done.stderr and "Traceback" not in done.stderr
