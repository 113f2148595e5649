import io

import numpy as np
import pytest
import torch
from PIL import Image

from photo_guard.photo_io import PhotoError, codec_change_255, read_photo, write_photo
from tests.photo_guard.conftest import make_photo

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


def _exif(orientation=6, gps=True):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 13.0, 0.0)}
    return exif


def test_jpeg_keeps_exif_icc_xmp_orientation_and_quality(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = make_photo(
        tmp_path / "a.jpg", size=(40, 64), quality=83, exif=_exif(6), icc_profile=icc, xmp=XMP, dpi=(300, 300)
    )
    photo = read_photo(src)
    assert photo.pixels.shape == (3, 64, 40)  # orientation 6 = displayed rotated
    out = write_photo(photo, photo.pixels, tmp_path / "out" / "a.jpg")
    with Image.open(out) as im, Image.open(src) as orig:
        assert im.size == orig.size  # stored orientation unchanged
        assert im.getexif()[0x0112] == 6 and im.getexif()[0x010F] == "TestCam" and 0x8825 in im.getexif()
        assert im.info.get("icc_profile") == icc and b"xmpmeta" in im.info.get("xmp", b"")
        assert im.quantization == orig.quantization  # same quality as the source
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    back = read_photo(out).pixels
    assert (back - photo.pixels).abs().mean() < 0.02


def test_strip_gps_and_png_exact(tmp_path):
    src = make_photo(tmp_path / "b.jpg", exif=_exif(1))
    out = write_photo(read_photo(src), read_photo(src).pixels, tmp_path / "o.jpg", strip_gps=True)
    with Image.open(out) as im:
        assert 0x8825 not in im.getexif() and im.getexif()[0x010F] == "TestCam"
    png = make_photo(tmp_path / "c.png", fmt="PNG")
    photo = read_photo(png)
    changed = (photo.pixels + 3 / 255).clamp(0, 1)
    out = write_photo(photo, changed, tmp_path / "o" / "c.png")
    assert torch.equal(read_photo(out).pixels, ((changed * 255).round() / 255))


@pytest.mark.parametrize("suffix,fmt", [(".webp", "WEBP"), (".tif", "TIFF")])
def test_other_formats_round_trip(tmp_path, suffix, fmt):
    src = make_photo(tmp_path / f"d{suffix}", fmt=fmt)
    photo = read_photo(src)
    out = write_photo(photo, photo.pixels, tmp_path / "o" / f"d{suffix}")
    with Image.open(out) as im:
        assert im.format == fmt
    assert (read_photo(out).pixels - photo.pixels).abs().mean() < 0.03


def test_originals_are_never_overwritten_unless_asked(tmp_path):
    src = make_photo(tmp_path / "e.png", fmt="PNG")
    before = src.read_bytes()
    photo = read_photo(src)
    with pytest.raises(PhotoError, match="refusing"):
        write_photo(photo, photo.pixels * 0.5, src)
    assert src.read_bytes() == before
    write_photo(photo, photo.pixels * 0.5, src, in_place=True)
    assert (tmp_path / "e.png.orig").read_bytes() == before and src.read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_bad_files_get_one_line_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    good = make_photo(tmp_path / "t.jpg")
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[:200])
    for name in ("text.jpg", "trunc.jpg", "missing.jpg"):
        with pytest.raises(PhotoError) as info:
            read_photo(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)


def test_codec_change_is_the_largest_8_bit_change_of_a_re_encoding(tmp_path):
    from photo_guard.photo_io import _save_kwargs

    photo = read_photo(make_photo(tmp_path / "a.jpg", quality=90))
    noise = torch.randn(photo.pixels.shape, generator=torch.Generator().manual_seed(0))
    noisy = (photo.pixels + 0.05 * noise).clamp(0, 1)
    u8 = (noisy * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", **_save_kwargs(photo, strip_gps=True))  # as write_photo encodes
    want = np.abs(np.asarray(Image.open(buf)).astype(int) - u8.astype(int)).max()  # in ints, independently
    assert want > 0 and codec_change_255(photo, noisy) == want
    png = read_photo(make_photo(tmp_path / "b.png"))
    assert codec_change_255(png, png.pixels) == 0  # lossless
