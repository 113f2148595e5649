"""Every metadata block of a photo survives protection, compared tag by tag by an independent reader (exiftool)
(issue 15.7). ``--strip-gps`` remains the one deliberate drop."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from photo_guard.photo_io import read_photo, write_photo

EXIFTOOL = shutil.which("exiftool")
pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool (Debian libimage-exiftool-perl) not installed")
CHANGES = {"ExifTool", "System", "Composite"}  # the reader's own notes, file dates, derived values


def _tags(path) -> dict:
    assert EXIFTOOL is not None
    out = subprocess.run([EXIFTOOL, "-j", "-G1", "-a", "-s", str(path)], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)[0]
    return {
        k: v
        for k, v in doc.items()
        if k.split(":")[0] not in CHANGES and k not in ("SourceFile", "File:CurrentIPTCDigest")
    }


def _picture(path, fmt):
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (6, 8, 3)).astype(np.uint8)).resize((64, 48), Image.BICUBIC)
    im.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def _tag(path, *args):
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", *args, str(path)], check=True)


@pytest.fixture
def tagged_jpeg(tmp_path):
    path = tmp_path / "p.jpg"
    _picture(path, "JPEG")
    _tag(
        path,
        "-IPTC:Keywords=family",
        "-IPTC:Keywords=beach",
        "-IPTC:City=Lisbon",
        "-IPTC:Caption-Abstract=Grandma at the beach",
        "-XMP:Subject=beach",
        "-EXIF:Artist=Alice",
        "-GPSLatitude=38.7",
        "-GPSLatitudeRef=N",
        "-GPSLongitude=9.1",
        "-GPSLongitudeRef=W",
        "-Comment=a comment",
        "-JFIF:ResolutionUnit=cm",
        "-JFIF:XResolution=118",
        "-JFIF:YResolution=118",
    )
    return path


@pytest.fixture
def tagged_png(tmp_path):
    path = tmp_path / "p.png"
    _picture(path, "PNG")
    _tag(
        path,
        "-PNG:Author=Alice",
        "-PNG:Description=Grandma",
        "-PNG:Comment=hello",
        "-XMP:Subject=beach",
        "-EXIF:Artist=Alice",
        "-PNG:Title=Tĳdelijk",
    )
    return path


@pytest.fixture
def tagged_webp(tmp_path):
    path = tmp_path / "p.webp"
    _picture(path, "WEBP")
    _tag(path, "-XMP:Subject=beach", "-EXIF:Artist=Alice", "-GPSLatitude=38.7", "-GPSLatitudeRef=N")
    return path


@pytest.mark.parametrize("name", ["tagged_jpeg", "tagged_png", "tagged_webp"])
def test_every_tag_survives(name, request, tmp_path):
    src = request.getfixturevalue(name)
    photo = read_photo(src)
    out = write_photo(photo, (photo.pixels + 4 / 255).clamp(0, 1), tmp_path / "out" / src.name)
    before, after = _tags(src), _tags(out)
    assert len(before) > 12
    assert {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)} == {}


def test_strip_gps_drops_only_the_gps_block(tagged_jpeg, tmp_path):
    photo = read_photo(tagged_jpeg)
    out = write_photo(photo, photo.pixels, tmp_path / "out.jpg", strip_gps=True)
    before, after = _tags(tagged_jpeg), _tags(out)
    assert any(k.startswith("GPS:") for k in before) and not any(k.startswith("GPS:") for k in after)
    assert {k: v for k, v in before.items() if not k.startswith("GPS:") and k != "File:ExifByteOrder"} == {
        k: v for k, v in after.items() if k != "File:ExifByteOrder"
    }
