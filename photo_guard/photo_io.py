"""Photo files in and out without losing what the owner cares about.

* Pixels are processed in display orientation (EXIF orientation applied) and written back in the stored orientation,
  so the file keeps its original EXIF orientation tag and displays the same.
* EXIF (GPS removed only when asked), ICC profile, XMP, DPI, format and file name are kept; JPEGs are re-encoded with
  the source's own quantisation tables and chroma subsampling, so quality stays where the source was.
* Writes are atomic (temp file + rename); an original is never overwritten unless ``in_place`` is asked for, and then
  a backup is kept.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from guard_core import ops
from guard_core.atomic import atomic_output

from .deep_photos import is_deep, read_deep, write_deep_png, write_deep_tiff
from .errors import PhotoGuardError
from .metadata import jpeg_carry_over, png_text_info

__all__ = [
    "Photo",
    "PhotoError",
    "read_photo",
    "write_photo",
    "load_rgb",
    "sha256_file",
    "SUPPORTED_SUFFIXES",
    "is_lossy",
    "codec_change_255",
]

SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif")
MAX_PIXELS = 200_000_000  # refuse decompression bombs with a clear message
# Formats written back within budget. GIF (a 256-colour palette) cannot hold a perturbation of a few levels, and an
# animation would lose every frame but the first: both are refused, never written over budget.
WRITABLE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "HEIF")
_INVERSE_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
GPS_IFD = 0x8825


class PhotoError(PhotoGuardError):
    """A photo could not be read or written; the message is one line naming the file."""


@functools.lru_cache(maxsize=1)
def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    register_heif_opener()


@dataclass
class Photo:
    """A decoded photo: ``pixels`` ``[3, H, W]`` float32 RGB in [0, 1], display orientation, plus what writing needs."""

    path: Path
    pixels: torch.Tensor
    format: str
    orientation: int = 1
    info: dict = field(default_factory=dict)
    source: Image.Image | None = None
    depth: int = 8  # bits per channel as stored; 16-bit PNG/TIFF are written back at 16 bits
    channels: int = 3  # channels as stored (1 grey, 3 RGB, 4 RGBA), for the 16-bit writers


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_photo(path: str | os.PathLike) -> Photo:
    path = Path(path)
    _register_heif()
    if not path.is_file():
        raise PhotoError(f"{path}: file not found")
    try:
        im = Image.open(path)
        if im.width * im.height > MAX_PIXELS:
            raise PhotoError(f"{path}: {im.width}x{im.height} is too large ({MAX_PIXELS:,} pixels at most)")
        if im.format not in WRITABLE_FORMATS:
            raise PhotoError(
                f"{path}: {im.format} photos cannot be protected within budget (a palette or "
                "lossy re-encoding moves pixels further than the perturbation); convert it to PNG first"
            )
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and im.format != "MPO":  # MPO's extra frames are previews and depth maps, not an animation
            raise PhotoError(
                f"{path}: animated or multi-page image ({frames} frames); photo-guard protects still photos only"
            )
        im.load()
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PhotoError(
            f"{path}: damaged or truncated image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if is_deep(path, im.format):
        # Processed in stored orientation (16-bit exports rarely carry a rotation); the EXIF goes back unchanged.
        try:
            rgb, channels = read_deep(path)
        except ValueError as exc:
            raise PhotoError(f"{path}: 16-bit image: {exc}") from None
        pixels = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
        return Photo(path, pixels, im.format, 1, dict(im.info), im, depth=16, channels=channels)
    exif = im.getexif()
    orientation = int(exif.get(0x0112, 1) or 1)
    shown = ImageOps.exif_transpose(im.convert("RGB") if im.mode != "RGB" else im.copy())
    pixels = ops.from_uint8(np.asarray(shown))
    return Photo(path, pixels, im.format or path.suffix.lstrip(".").upper(), orientation, dict(im.info), im)


def load_rgb(path: str | os.PathLike) -> torch.Tensor:
    """Just the pixels, ``[3, H, W]`` in [0, 1], display orientation."""
    return read_photo(path).pixels


def _save_kwargs(photo: Photo, strip_gps: bool) -> dict:
    src, fmt = photo.source, photo.format.upper()
    kw: dict = {}
    exif = src.getexif() if src is not None else Image.Exif()
    if strip_gps and GPS_IFD in exif:
        del exif[GPS_IFD]
    if len(exif):
        kw["exif"] = exif.tobytes()
    for name in ("icc_profile", "dpi"):
        if photo.info.get(name):
            kw[name] = photo.info[name]
    xmp = photo.info.get("xmp") or photo.info.get("XML:com.adobe.xmp")
    if fmt == "PNG" and src is not None:
        pnginfo = png_text_info(src)  # every text chunk, XMP among them
        if pnginfo is not None:
            kw["pnginfo"] = pnginfo
    elif xmp and fmt in ("JPEG", "WEBP", "TIFF"):
        kw["xmp"] = xmp if isinstance(xmp, bytes) else str(xmp).encode("utf-8")
    qtables = getattr(src, "quantization", None)
    if fmt == "JPEG" and src is not None and qtables:
        from PIL import JpegImagePlugin

        kw["qtables"] = qtables
        sampling = JpegImagePlugin.get_sampling(src)
        if sampling >= 0:
            kw["subsampling"] = sampling
    elif fmt == "WEBP":
        kw["lossless"] = bool(photo.info.get("lossless", False))
        kw["quality"] = 95
    elif fmt == "TIFF":
        kw["compression"] = photo.info.get("compression", "raw")
    return kw


def is_lossy(photo: Photo) -> bool:
    fmt = photo.format.upper()
    return fmt == "JPEG" or (fmt == "WEBP" and not photo.info.get("lossless", False))


def codec_change_255(photo: Photo, pixels: torch.Tensor) -> float:
    """The largest change, in 8-bit levels, that encoding ``pixels`` (``[3, H, W]`` in [0, 1], display orientation)
    the way :func:`write_photo` would for ``photo`` makes to them. Of the untouched original: the codec's own floor
    under any budget measured in a lossy file. Compared in 8 bits (no float copy of a 12-MP photo)."""
    import io

    written = Image.fromarray(ops.to_uint8(pixels), "RGB")
    buf = io.BytesIO()
    written.save(buf, format=photo.format, **_save_kwargs(photo, strip_gps=True))
    diff = ImageChops.difference(Image.open(buf).convert("RGB"), written)  # in 8 bits, in C: no int16 copies
    return float(np.asarray(diff).max())


def write_photo(
    photo: Photo,
    pixels: torch.Tensor,
    out_path: str | os.PathLike,
    strip_gps: bool = False,
    in_place: bool = False,
    backup: bool = True,
) -> Path:
    """Write protected ``pixels`` (``[3, H, W]`` in [0, 1], display orientation) like ``photo`` was stored.

    ``backup`` (in place only) keeps the original as ``<name>.orig``; hosts protecting their own exported copies
    turn it off.

    Raises:
        PhotoError: when ``out_path`` is the original and ``in_place`` is not set.
    """
    out_path = Path(out_path)
    same = out_path.exists() and os.path.realpath(out_path) == os.path.realpath(photo.path)
    if same and not in_place:
        raise PhotoError(f"{out_path}: refusing to overwrite the original (ask for in-place protection explicitly)")
    if photo.depth == 16:
        _write_deep(photo, pixels, out_path, same, strip_gps, backup)
        return out_path
    u8 = ops.to_uint8(pixels)
    im = Image.fromarray(u8, "RGB")
    if photo.orientation in _INVERSE_TRANSPOSE:
        im = im.transpose(_INVERSE_TRANSPOSE[photo.orientation])  # back to the stored orientation
    if (
        photo.source is not None
        and photo.source.mode in ("RGBA", "LA")
        and photo.format.upper() in ("PNG", "WEBP", "TIFF")
    ):
        im.putalpha(photo.source.getchannel("A"))  # keep transparency; only colour is perturbed
    _backup(out_path, same and backup)
    with atomic_output(out_path) as tmp:
        im.save(tmp, format=photo.format, **_save_kwargs(photo, strip_gps))
        if photo.format.upper() == "JPEG" and photo.path.is_file():
            tmp.write_bytes(jpeg_carry_over(photo.path.read_bytes(), tmp.read_bytes()))
    return out_path


def _backup(path: Path, wanted: bool) -> None:
    """Keep the original as ``<name>.orig`` before it is replaced in place (once: a rerun keeps the first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = path.with_name(path.name + ".orig")
    if wanted and not kept.exists():
        kept.write_bytes(path.read_bytes())


def _write_deep(photo: Photo, pixels: torch.Tensor, out_path: Path, same: bool, strip_gps: bool, backup: bool) -> None:
    rgb = pixels.clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    _backup(out_path, same and backup)
    source = photo.path.with_name(photo.path.name + ".orig") if same and backup else photo.path
    with atomic_output(out_path) as tmp:
        if photo.format.upper() == "PNG":
            exif = None
            if strip_gps and photo.source is not None:
                stripped = photo.source.getexif()
                stripped.pop(GPS_IFD, None)
                exif = stripped.tobytes()[6:] if len(stripped) else b""  # eXIf holds the TIFF header on, no "Exif\0\0"
            write_deep_png(rgb, source, tmp, photo.channels, exif)
        else:
            write_deep_tiff(rgb, source, tmp, photo.channels)
