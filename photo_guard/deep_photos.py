"""Photos deeper than 8 bits per channel (16-bit PNG and TIFF exports from raw developers) kept at their depth.

Pillow holds 16-bit colour only as 8-bit RGB and clips 16-bit grey when converting, so these files are read with
OpenCV at full precision and written back at 16 bits: PNG by a small chunk writer that copies every ancillary chunk of
the source verbatim (text, XMP, ICC, EXIF, physical size...), TIFF with tifffile (ICC profile, resolution and
description kept). The perturbation is computed in [0, 1] like any photo and quantised to 1/65535.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["is_deep", "read_deep", "write_deep_png", "write_deep_tiff"]

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}


def is_deep(path: Path, fmt: str) -> bool:
    """Whether a PNG or TIFF stores more than 8 bits per channel."""
    if fmt == "PNG":
        with open(path, "rb") as f:
            head = f.read(25)
        return len(head) == 25 and head[:8] == _PNG_SIG and head[24] == 16
    if fmt == "TIFF":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return bool(page.bitspersample > 8 and page.dtype is not None and page.dtype.kind == "u")
    return False


def read_deep(path: Path) -> tuple[np.ndarray, int]:
    """``(rgb float32 [H, W, 3] in [0, 1], channels stored)``; alpha is read but not returned (writers re-read it)."""
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.dtype != np.uint16:
        raise ValueError("not a 16-bit image OpenCV can read")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    rgb = np.repeat(arr[..., None], 3, -1) if channels == 1 else cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / 65535.0, channels


def _to_u16(rgb: np.ndarray, source: Path, channels: int) -> np.ndarray:
    """Protected RGB in [0, 1] -> uint16 in the source's layout (grey: the channel mean; alpha: the source's)."""
    u16 = np.round(np.clip(rgb, 0, 1) * 65535).astype(np.uint16)
    if channels == 1:
        return np.round(u16.astype(np.float64).mean(-1)).astype(np.uint16)
    if channels == 4:
        import cv2

        stored = cv2.imread(str(source), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
        assert stored is not None  # read once already
        alpha = stored[..., 3]
        return np.dstack([u16, alpha])
    return u16


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_deep_png(rgb: np.ndarray, source: Path, out: Path, channels: int, exif: bytes | None) -> None:
    """A 16-bit PNG of ``rgb`` with every ancillary chunk of ``source``; ``exif`` replaces its eXIf chunk (None: keep
    the source's)."""
    pixels = _to_u16(rgb, source, channels)
    h, w = pixels.shape[:2]
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = pixels.reshape(h, -1).astype(">u2").tobytes()
    stride = len(rows) // h
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(h))
    ancillary = [(k, b) for k, b in _chunks(source.read_bytes()) if k not in _CRITICAL]
    if exif is not None:
        ancillary = [(k, b) for k, b in ancillary if k != b"eXIf"] + ([(b"eXIf", exif)] if exif else [])
    before = [(k, b) for k, b in ancillary if k in (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"sBIT")]  # must precede IDAT
    after = [(k, b) for k, b in ancillary if (k, b) not in before]
    body = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    body += [_chunk(k, b) for k, b in before + after]
    body += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    out.write_bytes(_PNG_SIG + b"".join(body))


def write_deep_tiff(rgb: np.ndarray, source: Path, out: Path, channels: int) -> None:
    """A 16-bit TIFF of ``rgb`` keeping the source's ICC profile, resolution, description and compression."""
    import tifffile

    pixels = _to_u16(rgb, source, channels)
    with tifffile.TiffFile(source) as tif:
        page = tif.pages.first
        tags = {t.name: t.value for t in page.tags.values()}
    extratags = (
        [(34675, "B", len(tags["InterColorProfile"]), tags["InterColorProfile"], True)]
        if "InterColorProfile" in tags
        else []
    )
    resolution = (tags["XResolution"], tags["YResolution"]) if "XResolution" in tags else None
    tifffile.imwrite(
        out,
        pixels,
        photometric="minisblack" if channels == 1 else "rgb",
        extrasamples=("unassalpha",) if channels == 4 else None,
        compression=page.compression if page.compression != 1 else None,
        resolution=resolution,
        resolutionunit=tags.get("ResolutionUnit"),
        description=tags.get("ImageDescription"),
        extratags=extratags,
        metadata=None,
    )
