"""16-bit PNG and TIFF photos keep their depth, their levels and their metadata (issue 15.2)."""

import cv2
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from photo_guard.cli import cli
from photo_guard.photo_io import read_photo, write_photo


def _deep(path, grey=False):
    rng = np.random.default_rng(0)
    arr = cv2.resize((rng.random((6, 8, 3)) * 65535).astype(np.uint16), (64, 48), interpolation=cv2.INTER_CUBIC)
    arr = arr[..., 0] if grey else arr
    if path.suffix == ".png":
        cv2.imwrite(str(path), arr)
    else:
        tifffile.imwrite(
            path, arr if grey else arr[..., ::-1], photometric="minisblack" if grey else "rgb", resolution=(300, 300)
        )
    return arr


@pytest.mark.parametrize("name,grey", [("d.png", False), ("g.png", True), ("d.tif", False), ("g.tif", True)])
def test_depth_and_levels_are_kept(tmp_path, name, grey):
    src = tmp_path / name
    arr = _deep(src, grey)
    photo = read_photo(src)
    assert photo.depth == 16 and float(photo.pixels.max()) == pytest.approx(arr.max() / 65535)
    out = write_photo(photo, (photo.pixels + 3 / 255).clamp(0, 1), tmp_path / "out" / name)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    assert back.dtype == np.uint16 and back.shape == arr.shape
    assert len(np.unique(back)) > 1000  # far more than 256 levels
    assert float((read_photo(out).pixels - photo.pixels).abs().max()) <= 3 / 255 + 1 / 65535


def test_16bit_png_keeps_its_text_chunks_and_is_protected_by_the_cli(tiny_encoder, tmp_path):
    src = tmp_path / "in" / "d.png"
    src.parent.mkdir()
    _deep(src)
    im = Image.open(src)  # add a text chunk by hand: cv2 writes none
    data = src.read_bytes()
    import struct
    import zlib

    body = b"Author\x00Alice"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    src.write_bytes(data[:33] + chunk + data[33:])
    assert Image.open(src).text == {"Author": "Alice"} and im.size == (64, 48)
    r = CliRunner().invoke(
        cli,
        [
            "protect",
            str(src.parent),
            "-o",
            str(tmp_path / "out"),
            "--encoders",
            "tiny",
            "--steps",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "out" / "d.png"
    assert Image.open(out).text == {"Author": "Alice"}
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16
