"""Real photo libraries: same names in camera folders, formats that cannot be kept, stale temp files, and a manifest
that tells nothing private (issue 15.3-15.5, 15.8)."""

import json
import os
import time

import numpy as np
from click.testing import CliRunner
from PIL import Image

from photo_guard.batch import MANIFEST_NAME
from photo_guard.cli import cli
from photo_guard.photo_io import sha256_file
from tests.photo_guard.conftest import make_photo

ARGS = ["--encoders", "tiny", "--steps", "2", "--device", "cpu"]


def test_same_names_in_two_camera_folders_are_mirrored_not_overwritten(tiny_encoder, tmp_path):
    lib = tmp_path / "lib"
    (lib / "DCIM" / "100APPLE").mkdir(parents=True)
    (lib / "DCIM" / "101APPLE").mkdir(parents=True)
    a = make_photo(lib / "DCIM" / "100APPLE" / "IMG_0001.JPG", seed=1, fmt="JPEG", quality=92)
    b = make_photo(lib / "DCIM" / "101APPLE" / "IMG_0001.JPG", seed=2, size=(56, 40), fmt="JPEG", quality=92)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["protect", str(lib), "-o", str(out), *ARGS])
    assert r.exit_code == 0, r.output
    assert "protected 2" in r.output
    pa, pb = out / "DCIM" / "100APPLE" / "IMG_0001.JPG", out / "DCIM" / "101APPLE" / "IMG_0001.JPG"
    assert Image.open(pa).size == Image.open(a).size and Image.open(pb).size == Image.open(b).size
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert set(manifest["photos"]) == {"DCIM/100APPLE/IMG_0001.JPG", "DCIM/101APPLE/IMG_0001.JPG"}
    again = CliRunner().invoke(cli, ["protect", str(lib), "-o", str(out), *ARGS])
    assert again.exit_code == 0 and "protected 0, skipped 2" in again.output


def test_two_files_for_one_output_and_a_foreign_file_are_refused(tiny_encoder, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_photo(tmp_path / "a" / "x.png", seed=1, fmt="PNG")
    b = make_photo(tmp_path / "b" / "x.png", seed=2, fmt="PNG")
    out = tmp_path / "out"
    out.mkdir()
    mine = make_photo(out / "mine.png", seed=3, fmt="PNG")
    before = mine.read_bytes()
    r = CliRunner().invoke(cli, ["protect", str(a), str(b), str(tmp_path / "a" / "mine.png"), "-o", str(out), *ARGS])
    assert r.exit_code == 2, r.output  # the second x.png, and mine.png does not exist as input -> 2 failures
    assert "also goes to" in r.output
    make_photo(tmp_path / "a" / "mine.png", seed=4, fmt="PNG")
    r = CliRunner().invoke(cli, ["protect", str(tmp_path / "a" / "mine.png"), "-o", str(out), *ARGS])
    assert r.exit_code == 1 and "was not written by photo-guard" in r.output
    assert mine.read_bytes() == before


def test_manifest_names_no_source_path_and_no_original_hash(tiny_encoder, tmp_path):
    src = tmp_path / "Users" / "alice" / "private"
    src.mkdir(parents=True)
    photo = make_photo(src / "p.jpg", seed=0, fmt="JPEG", quality=90)
    out = tmp_path / "share"
    assert CliRunner().invoke(cli, ["protect", str(photo.resolve()), "-o", str(out), *ARGS]).exit_code == 0
    digest = sha256_file(photo)
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for secret in (str(src), "alice", digest, digest.upper()):
                assert secret.encode() not in data, (f, secret)
    assert not (out / "owner.key").exists()


def test_gif_is_refused_in_file_mode_and_listed_in_folder_mode(tiny_encoder, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(src / "still.gif")
    make_photo(src / "ok.png", fmt="PNG")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["protect", str(src / "anim.gif"), "-o", str(out), *ARGS])
    assert r.exit_code == 1 and "GIF" in r.output and not (out / "anim.gif").exists()
    r = CliRunner().invoke(cli, ["protect", str(src), "-o", str(out), *ARGS])
    assert r.exit_code == 0, r.output
    assert "anim.gif: skipped" in r.output and "still.gif: skipped" in r.output and "protected 1" in r.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted([MANIFEST_NAME, "ok.png"])


def test_stale_temp_files_are_ignored_as_inputs_and_cleaned_from_outputs(tiny_encoder, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_photo(src / "a.png", fmt="PNG")
    (src / ".a.png.tmp-abcd1234.png").write_bytes(b"")  # what kill -9 mid-write leaves
    stale = out / ".a.png.tmp-zzzz9999.png"
    stale.write_bytes(b"")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    r = CliRunner().invoke(cli, ["protect", str(src), "-o", str(out), *ARGS])
    assert r.exit_code == 0 and "protected 1, skipped 0 already done, failed 0" in r.output, r.output
    assert not stale.exists()
