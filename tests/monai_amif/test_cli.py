import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from guard_core.keys import Key
from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli
from monai_amif.loading import load_model


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory, demo_key):
    path = tmp_path_factory.mktemp("w") / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), path, key_fingerprint=demo_key.fingerprint())
    return path


@pytest.fixture
def env(monkeypatch):
    for name in ("AMIF_PASSPHRASE", "AMIF_KEY_FILE", "AMIF_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _pair(pair_folder):
    return pair_folder / "PET-MRI" / "MRI" / "000.png", pair_folder / "PET-MRI" / "PET" / "000.png"


def test_fuse_png_colour_with_and_without_key(pair_folder, small_weights, tmp_path, env, demo_key):
    mri, pet = _pair(pair_folder)
    runner = CliRunner()
    out = tmp_path / "none.png"
    r = runner.invoke(cli, ["fuse", str(mri), str(pet), "-o", str(out), "--weights", str(small_weights)])
    assert r.exit_code == 0, r.output
    assert "marked" in r.output and Image.open(out).mode == "RGB" and Image.open(out).size == (64, 64)
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    r = runner.invoke(
        cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "key.png"), "--weights", str(small_weights)]
    )
    assert r.exit_code == 0 and "licensed" in r.output and "amif-demo" not in r.output
    again = runner.invoke(cli, ["fuse", str(mri), str(pet), "-o", str(out), "--weights", str(small_weights)])
    assert again.exit_code != 0 and "exists" in again.output


def test_fuse_refuses_to_overwrite_an_input_and_reports_bad_files(pair_folder, small_weights, tmp_path, env):
    mri, pet = _pair(pair_folder)
    copy = tmp_path / "mri.png"
    shutil.copy(mri, copy)
    r = CliRunner().invoke(
        cli, ["fuse", str(copy), str(pet), "-o", str(copy), "--weights", str(small_weights), "--overwrite"]
    )
    assert r.exit_code != 0 and "input" in r.output
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    r = CliRunner().invoke(
        cli, ["fuse", str(bad), str(pet), "-o", str(tmp_path / "o.png"), "--weights", str(small_weights)]
    )
    assert r.exit_code != 0 and "bad.png" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_fuse_nifti_volume(small_weights, tmp_path, env):
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(rng.random((40, 48, 3)).astype(np.float32) * 1000, affine), tmp_path / "mri.nii.gz")
    nib.save(nib.Nifti1Image(rng.random((40, 48, 3)).astype(np.float32) * 50, affine), tmp_path / "ct.nii.gz")
    out = tmp_path / "fused.nii.gz"
    r = CliRunner().invoke(
        cli,
        [
            "fuse",
            str(tmp_path / "mri.nii.gz"),
            str(tmp_path / "ct.nii.gz"),
            "-o",
            str(out),
            "--weights",
            str(small_weights),
        ],
    )
    assert r.exit_code == 0, r.output
    img = nib.load(out)
    assert img.shape == (40, 48, 3) and np.allclose(img.affine, affine)
    assert img.get_fdata().min() >= 0 and img.get_fdata().max() <= 1


def _dicom(path, pixels, modality, patient="PAT^ONE"):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.StudyInstanceUID, ds.Modality = patient, "ID1", generate_uid(), modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_fuse_dicom_writes_a_derived_secondary_capture(small_weights, tmp_path, env):
    rng = np.random.default_rng(1)
    src = _dicom(tmp_path / "mr.dcm", rng.integers(0, 4000, (48, 40)), "MR")
    _dicom(tmp_path / "ct.dcm", rng.integers(0, 2000, (48, 40)), "CT")
    out = tmp_path / "fused.dcm"
    r = CliRunner().invoke(
        cli,
        ["fuse", str(tmp_path / "mr.dcm"), str(tmp_path / "ct.dcm"), "-o", str(out), "--weights", str(small_weights)],
    )
    assert r.exit_code == 0, r.output
    ds = pydicom.dcmread(out)
    assert ds.PatientName == "PAT^ONE" and ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.SeriesInstanceUID
    assert ds.BurnedInAnnotation == "YES" and ds.ImageType[0] == "DERIVED"
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ds.pixel_array.shape == (48, 40)


def _evaluate(pair_folder, weights, out, *extra):
    """``amif evaluate`` on the synthetic pairs, JSON to ``out``; returns (result, the JSON document)."""
    r = CliRunner().invoke(
        cli, ["evaluate", "--data", str(pair_folder), "--weights", str(weights), "--json", str(out), *extra]
    )
    assert r.exit_code == 0, r.output
    return r, json.loads(out.read_text())


def test_evaluate_prints_tables_and_json(pair_folder, small_weights, tmp_path, env):
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    r, doc = _evaluate(pair_folder, small_weights, tmp_path / "m.json", "--random-keys", "2")
    res = doc["results"]
    assert doc["protocol"] == "amif" and set(res) == {"CT-MRI", "PET-MRI"} and res["PET-MRI"]["n"] == 3
    metrics = {"EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM2", "PSNR", "CC"}
    assert set(res["CT-MRI"]["authorised"]) >= metrics
    assert "mark_ncc_random_min" in res["CT-MRI"] and "| max rule |" in r.output


def test_evaluate_cddfuse_protocol_table(pair_folder, small_weights, tmp_path, env):
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    r, doc = _evaluate(pair_folder, small_weights, tmp_path / "c.json", "--protocol", "cddfuse")
    res = doc["results"]
    header = "| row | EN | SD | SF | MI | SCD | VIF | Qabf | SSIM2 | AG | reaches CDDFuse* |"
    assert header in r.output and "| CDDFuse* (published) | 4.88 | 79.17 |" in r.output and "/8 |" in r.output
    assert set(res["PET-MRI"]) == {"n", "model", "mean rule", "max rule"} and res["PET-MRI"]["n"] == 3


def test_train_runs_resumes_and_needs_a_key(pair_folder, tmp_path, env):
    runner = CliRunner()

    def args(epochs):
        return [
            "train",
            "--data",
            str(pair_folder),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            str(epochs),
            "--batch-size",
            "2",
            "--crop",
            "48",
        ]

    r = runner.invoke(cli, args(2))
    assert r.exit_code != 0 and "key" in r.output
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    r = runner.invoke(cli, args(1))
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["epoch"] == 1 and "auth" in log[0]
    r = runner.invoke(cli, [*args(2), "--output", "direct"])  # another network: refused in one line
    assert r.exit_code == 1 and "checkpoint.pt" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, [*args(2), "--collapse", "0.1"])  # resume into a second epoch
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and log[1]["step"] > log[0]["step"]
    assert "collapse" not in log[0] and log[1]["collapse"] >= 0  # logged when asked for (about 0 with the gated path)
    net = load_model(tmp_path / "run" / "model.pt")
    assert net.accepted_fingerprint == Key.from_passphrase("amif-demo").fingerprint()
    assert "amif-demo" not in (tmp_path / "run" / "train_log.jsonl").read_text()


def test_train_takes_loss_weights(pair_folder, tmp_path, env):
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    base = ["train", "--data", str(pair_folder), "--out", str(tmp_path / "run"), "--epochs", "1", "--crop", "48"]
    r = CliRunner().invoke(cli, [*base, "--loss-weights", "500,100"])
    assert r.exit_code == 2 and "three numbers" in r.output
    r = CliRunner().invoke(cli, [*base, "--batch-size", "2", "--max-steps", "1", "--loss-weights", "300,100,50"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["train_config"]["loss_weights"] == [300.0, 100.0, 50.0]  # not the default (500)


def test_train_metric_terms_and_vif_tasks(pair_folder, tmp_path, env):
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    base = ["train", "--data", str(pair_folder), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2"]
    terms = ["--qabf-weight", "100", "--vif-weight", "50"]
    r = CliRunner().invoke(cli, [*base, "--crop", "32", *terms])
    assert r.exit_code == 1 and "at least 41" in r.output
    r = CliRunner().invoke(cli, [*base, "--crop", "48", *terms, "--vif-tasks", "XX-MRI,YY-MRI"])
    assert r.exit_code == 1 and "XX-MRI" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, [*base, "--crop", "48", "--max-steps", "2", *terms, "--vif-tasks", "PET-MRI"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "run" / "model.json").read_text())["train_config"]
    assert (cfg["qabf_weight"], cfg["vif_weight"], cfg["vif_tasks"]) == (100.0, 50.0, ["PET-MRI"])
    log = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[0])
    assert 0 < log["qabf"] < 1 and "vif" in log


@pytest.mark.slow
def test_torchrun_two_cpu_processes(pair_folder, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, "AMIF_PASSPHRASE": "amif-demo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "monai_amif.cli",
            "train",
            "--data",
            str(pair_folder),
            "--out",
            str(tmp_path / "ddp"),
            "--epochs",
            "1",
            "--batch-size",
            "1",
            "--crop",
            "48",
            "--max-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "ddp" / "model.pt").is_file()
    assert done.stdout.count("model:") == 1  # only rank 0 reports
