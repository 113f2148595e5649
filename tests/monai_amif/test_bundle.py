"""The MONAI Bundle: `python -m monai.bundle run` on PNG pairs gives the same images as `amif fuse`."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "amif_fusion"


def bundle_run(input_dir, output_dir, passphrase, bundle=BUNDLE, check=True):
    """``python -m monai.bundle run`` of ``bundle``'s inference config, the key from the environment."""
    env = {**os.environ, "AMIF_PASSPHRASE": passphrase, "AMIF_KEY_FILE": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            "configs/inference.json",
            "--input_dir",
            str(input_dir),
            "--output_dir",
            str(output_dir),
        ],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not check:
        return done
    assert done.returncode == 0, done.stderr[-3000:]
    assert "amif-demo" not in done.stdout + done.stderr  # the key travels by environment, never in a log
    return done


def _fuse(mri, func, out, passphrase):
    env = {
        **os.environ,
        "AMIF_PASSPHRASE": passphrase,
        "AMIF_KEY_FILE": "",
        "AMIF_WEIGHTS": str(BUNDLE / "models" / "model.pt"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "monai_amif.cli", "fuse", str(mri), str(func), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_bundle_run_matches_amif_fuse_with_and_without_key(tmp_path, sample_pet_input, shipped_weights):
    sample = REPO / "samples" / "amif" / "pet"
    for passphrase, tag in (("", "none"), ("amif-demo", "key")):
        bundle_run(sample_pet_input, tmp_path / f"bundle_{tag}", passphrase)
        _fuse(sample / "MRI.png", sample / "PET.png", tmp_path / f"fuse_{tag}.png", passphrase)
        a = np.asarray(Image.open(tmp_path / f"bundle_{tag}" / "PET-MRI" / "s1.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / f"fuse_{tag}.png"), dtype=np.int16)
        assert a.shape == b.shape == (256, 256, 3)
        assert np.abs(a - b).max() <= 1  # same network, same pixels (8-bit rounding aside)
    marked = np.asarray(Image.open(tmp_path / "bundle_none" / "PET-MRI" / "s1.png").convert("L"), dtype=np.float32)
    clean = np.asarray(Image.open(tmp_path / "bundle_key" / "PET-MRI" / "s1.png").convert("L"), dtype=np.float32)
    assert np.abs(marked - clean).mean() > 5  # the unlicensed run carries the mark


def test_verify_metadata_offline_with_the_shipped_schema(tmp_path):
    import json

    def verify(meta):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "monai.bundle",
                "verify_metadata",
                "--meta_file",
                str(meta),
                "--filepath",
                str(BUNDLE / "configs" / "meta_schema.json"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=BUNDLE,
        )

    done = verify(BUNDLE / "configs" / "metadata.json")
    assert done.returncode == 0 and "verified with no error" in done.stdout + done.stderr, done.stderr[-2000:]
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert set(meta["network_data_format"]["inputs"]) == {"image", "key"}
    assert meta["network_data_format"]["inputs"]["key"]["num_channels"] == 256
    del meta["network_data_format"]["outputs"]["pred"]["dtype"]
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    assert verify(tmp_path / "bad.json").returncode != 0


@pytest.mark.slow
def test_ckpt_export_to_torchscript_matches_eager(tmp_path, demo_key):
    import torch

    from monai_amif.loading import load_model

    out = tmp_path / "model.ts"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "ckpt_export",
            "network_def",
            "--filepath",
            str(out),
            "--ckpt_file",
            "models/model.pt",  # a plain state dict, as the model zoo's verify_bundle.py exports it
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/inference.json",
        ],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scripted = torch.jit.load(str(out)).eval()
    eager = load_model(BUNDLE / "models" / "model.pt")
    x = torch.rand(2, 2, 96, 128, generator=torch.Generator().manual_seed(0))
    wrong = demo_key.tensor().clone()
    wrong[:8] *= -1
    with torch.inference_mode():
        for key in (demo_key.tensor(), torch.zeros(256), wrong):
            k = key.expand(2, -1)
            assert torch.allclose(scripted(x, k), eager(x, k), atol=1e-5)


def _dicom_and_nifti_pairs(root):
    """Two slices of the CT sample as an MR + CT DICOM series, and the same pairs as 2-D NIfTI files."""
    from PIL import Image

    from monai_amif.io import read_image, write_image
    from tests.monai_amif.samples import png_pairs_to_dicom

    png = root / "png"
    for name, flip in (("s1", False), ("s2", True)):
        for mod in ("MRI", "CT"):
            im = Image.open(REPO / "samples" / "amif" / "ct" / f"{mod}.png")
            (png / mod).mkdir(parents=True, exist_ok=True)
            (im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im).save(png / mod / f"{name}.png")
            write_image(
                root / "in" / "CT-MRI-NIfTI" / mod / f"{name}.nii.gz", read_image(png / mod / f"{name}.png").data
            )
    png_pairs_to_dicom(png, root / "in" / "CT-MRI")
    return root / "in"


@pytest.mark.slow
def test_bundle_run_on_dicom_and_nifti_pairs(tmp_path):
    import nibabel as nib
    import pydicom
    from monai.transforms import LoadImage
    from pydicom import config
    from pydicom.dataset import validate_file_meta

    if not (BUNDLE / "models" / "model.pt").is_file():
        pytest.skip("shipped model missing")
    inp = _dicom_and_nifti_pairs(tmp_path)
    for passphrase, tag in (("", "none"), ("amif-demo", "key"), ("not-the-licence", "wrong")):
        bundle_run(inp, tmp_path / tag, passphrase)
    config.settings.reading_validation_mode = config.RAISE  # pydicom's own checks, strict
    try:
        for name in ("s1", "s2"):
            mr = pydicom.dcmread(inp / "CT-MRI" / "MRI" / f"{name}.dcm")
            ct = pydicom.dcmread(inp / "CT-MRI" / "CT" / f"{name}.dcm")
            out = {tag: pydicom.dcmread(tmp_path / tag / "CT-MRI" / f"{name}.dcm") for tag in ("none", "key", "wrong")}
            for tag, ds in out.items():
                validate_file_meta(ds.file_meta)
                assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
                assert ds.BurnedInAnnotation == ("NO" if tag == "key" else "YES")
                assert (ds.PatientID, ds.PatientName, ds.StudyInstanceUID) == (
                    mr.PatientID,
                    mr.PatientName,
                    mr.StudyInstanceUID,
                )
                assert ds.SeriesInstanceUID not in (mr.SeriesInstanceUID, ct.SeriesInstanceUID)
                assert [r.ReferencedSOPInstanceUID for r in ds.SourceImageSequence] == [
                    mr.SOPInstanceUID,
                    ct.SOPInstanceUID,
                ]
                # MONAI's own DICOM loader reads what was written (its arrays are indexed x, y)
                loaded = LoadImage(reader="PydicomReader", image_only=True)(
                    str(tmp_path / tag / "CT-MRI" / f"{name}.dcm")
                )
                assert np.array_equal(np.asarray(loaded), ds.pixel_array.T)
            marked, clean = (out[t].pixel_array.astype(np.float32) for t in ("none", "key"))
            assert np.abs(marked - clean).mean() > 5
            nii = {t: nib.load(tmp_path / t / "CT-MRI-NIfTI" / f"{name}.nii.gz") for t in ("none", "key")}
            src = nib.load(inp / "CT-MRI-NIfTI" / "MRI" / f"{name}.nii.gz")
            assert nii["key"].shape == src.shape and np.allclose(nii["key"].affine, src.affine)
            assert np.abs(nii["none"].get_fdata() - nii["key"].get_fdata()).mean() * 255 > 5
    finally:
        config.settings.reading_validation_mode = config.WARN


def test_load_slice_reads_each_format_and_refuses_volumes(tmp_path):
    from monai_amif.io import ImageReadError, write_image
    from monai_amif.transforms import LoadSliced

    img = np.random.default_rng(0).random((1, 20, 24)).astype(np.float32)
    for ext in (".png", ".nii.gz"):
        write_image(tmp_path / f"a{ext}", img)
        d = LoadSliced("mri")({"mri": str(tmp_path / f"a{ext}")})
        assert d["mri"].shape == (1, 20, 24) and d["mri_path"] == str(tmp_path / f"a{ext}")
    write_image(tmp_path / "vol.nii.gz", np.random.default_rng(0).random((1, 20, 24, 3)).astype(np.float32))
    with pytest.raises(ImageReadError, match="vol.nii.gz: the bundle fuses 2-D slices"):
        LoadSliced("mri")({"mri": str(tmp_path / "vol.nii.gz")})
