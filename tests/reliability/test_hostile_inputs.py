"""A table of hostile and unusual inputs per command. Each case asserts the exit code, a one-line message naming
the problem, originals unchanged, no stray files, nothing written over budget (issue 15, reliability suite)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli as amif
from photo_guard.batch import MANIFEST_NAME
from photo_guard.cli import cli as photo_guard
from tests.photo_guard.conftest import make_photo
from tests.reliability.conftest import snapshot


def _png(path: Path, size=(32, 32), seed=0, colour=False) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (*size, 3) if colour else size).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _dicom(path: Path, rows: int, cols: int, data: np.ndarray) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, meta.MediaStorageSOPInstanceUID, "MR"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = data.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# --- amif fuse ---------------------------------------------------------------------------------------------------
def _case_truncated(d):
    m = _png(d / "m.png")
    m.write_bytes(m.read_bytes()[:60])
    return [m, _png(d / "c.png")], 1, "m.png"


def _case_empty(d):
    (d / "m.png").write_bytes(b"")
    return [d / "m.png", _png(d / "c.png")], 1, "m.png"


def _case_not_an_image(d):
    (d / "m.png").write_text("hello")
    return [d / "m.png", _png(d / "c.png")], 1, "m.png"


def _case_sizes_differ(d):
    return [_png(d / "m.png", (32, 32)), _png(d / "c.png", (40, 32))], 1, "differ in size"


def _case_symlink_loop(d):
    os.symlink(d / "loop.png", d / "loop.png")
    return [d / "loop.png", _png(d / "c.png")], 1, "loop.png"


def _case_newline_name(d):
    return [_png(d / "m\nri.png"), _png(d / "c.png")], 0, None


def _case_non_utf8_name(d):
    name = os.fsdecode(b"\xffmri.png")
    return [_png(d / name), _png(d / "c.png")], 0, None


def _case_lying_dicom(d):
    m = _dicom(d / "m.dcm", 512, 512, np.zeros((32, 32)))  # header claims 512x512, data holds 32x32
    c = _dicom(d / "c.dcm", 32, 32, np.zeros((32, 32)))
    return [m, c], 1, "m.dcm"


def _case_nifti_nan(d):
    data = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    data[3:9, 4:7] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), d / "m.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((32, 32), np.float32), np.eye(4)), d / "c.nii.gz")
    return [d / "m.nii.gz", d / "c.nii.gz"], 0, None


def _case_huge(d):
    big = np.zeros((4100, 4100), np.uint8)
    Image.fromarray(big).save(d / "m.png")
    Image.fromarray(big).save(d / "c.png")
    return [d / "m.png", d / "c.png"], 1, "too large"


FUSE_CASES = {
    f.__name__[6:]: f
    for f in (
        _case_truncated,
        _case_empty,
        _case_not_an_image,
        _case_sizes_differ,
        _case_symlink_loop,
        _case_newline_name,
        _case_non_utf8_name,
        _case_lying_dicom,
        _case_nifti_nan,
        _case_huge,
    )
}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), path)
    return path


@pytest.mark.parametrize("case", list(FUSE_CASES))
def test_amif_fuse(case, tmp_path, tiny_weights, monkeypatch):
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    inputs, code, needle = FUSE_CASES[case](tmp_path)
    suffix = ".nii.gz" if str(inputs[0]).endswith(".nii.gz") else ".png"
    out = tmp_path / "out" / f"fused{suffix}"
    before = snapshot(tmp_path)
    r = CliRunner().invoke(amif, ["fuse", *map(str, inputs), "-o", str(out), "--weights", str(tiny_weights)])
    assert r.exit_code == code, (case, r.output, r.exception)
    after = snapshot(tmp_path)
    if code:
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (case, r.output)
        assert after == before  # nothing written, originals unchanged
    else:
        assert {k: v for k, v in after.items() if not k.startswith("out")} == before
        assert sorted(k for k in after if k.startswith("out")) == [f"out/fused{suffix}"]
        if suffix == ".nii.gz":
            assert np.isfinite(np.asarray(nib.load(out).dataobj)).all()


def test_amif_fuse_with_a_garbled_key_file(tmp_path, tiny_weights, monkeypatch):
    key = tmp_path / "key.json"
    key.write_text('{"format": "amif-licence-key", "version": 1, "key": "%%%"}')
    os.chmod(key, 0o600)
    r = CliRunner().invoke(
        amif,
        [
            "fuse",
            str(_png(tmp_path / "m.png")),
            str(_png(tmp_path / "c.png")),
            "-o",
            str(tmp_path / "f.png"),
            "--weights",
            str(tiny_weights),
            "--key-file",
            str(key),
        ],
    )
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "key.json" in r.output
    assert "%%%" not in r.output and not (tmp_path / "f.png").exists()


# --- photo-guard protect -----------------------------------------------------------------------------------------
def _malformed_exif_jpeg(path: Path) -> Path:
    make_photo(path, fmt="JPEG", quality=90)
    data = path.read_bytes()
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x00" * 20  # claims 65535 IFD entries
    seg = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    path.write_bytes(data[:2] + seg + data[2:])
    return path


def test_photo_guard_library_of_hostile_files(tiny_encoder, tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    make_photo(lib / "good.jpg", fmt="JPEG", quality=90)
    make_photo(lib / "sub" / "good.jpg", seed=1, fmt="JPEG", quality=90)  # same name, other folder
    make_photo(lib / "truncated.jpg", fmt="JPEG")
    (lib / "truncated.jpg").write_bytes((lib / "truncated.jpg").read_bytes()[:300])
    (lib / "empty.png").write_bytes(b"")
    (lib / "text.jpg").write_text("not a photo")
    _malformed_exif_jpeg(lib / "bad_exif.jpg")
    make_photo(lib / "new\nline.png", fmt="PNG")
    make_photo(lib / os.fsdecode(b"\xfe.png"), fmt="PNG")
    os.symlink(lib, lib / "sub" / "loop")  # a folder symlink back up: must not recurse forever
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(lib / "anim.gif", save_all=True, append_images=frames[1:])
    before = snapshot(lib)
    out = lib / "shared"  # inside the library: a rerun must not take its own outputs as inputs
    args = ["protect", str(lib), "-o", str(out), "--encoders", "tiny", "--steps", "2", "--device", "cpu"]
    r = CliRunner().invoke(photo_guard, args)
    assert r.exit_code == 3, r.output  # truncated, empty, text
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all(any(n in e for n in ("truncated.jpg", "empty.png", "text.jpg")) for e in errors)
    assert "anim.gif: skipped" in r.output
    assert {k: v for k, v in snapshot(lib).items() if not k.startswith("shared")} == before
    written = set(snapshot(out))
    assert written == {
        MANIFEST_NAME,
        "good.jpg",
        "sub/good.jpg",
        "bad_exif.jpg",
        "new\nline.png",
        os.fsdecode(b"\xfe.png"),
    }, written
    again = CliRunner().invoke(photo_guard, args)
    assert again.exit_code == 3 and "protected 0, skipped 5" in again.output, again.output


def test_photo_guard_folder_of_a_thousand_tiny_files(tiny_encoder, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(1000):
        make_photo(lib / f"{i:04d}.png", seed=i, size=(16, 16), fmt="PNG")
    r = CliRunner().invoke(
        photo_guard,
        [
            "protect",
            str(lib),
            "-o",
            str(tmp_path / "out"),
            "--encoders",
            "tiny",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--set-size",
            "100",
        ],
    )
    assert r.exit_code == 0 and "protected 1000" in r.output, r.output
    assert len(list((tmp_path / "out").iterdir())) == 1001
