"""Carrying the metadata blocks Pillow does not write back: JPEG IPTC (APP13), JFIF density and comments; PNG text.

Photo managers keep what people care about there: digiKam, Lightroom and Photo Mechanic write keywords, city and
caption to IPTC; PNG tools write Author/Description and XMP as text chunks. Pillow writes EXIF, ICC and XMP itself;
this module copies the rest verbatim from the source file (GPS lives in EXIF, so ``--strip-gps`` is unaffected).
"""

from __future__ import annotations

import struct

from PIL import Image, PngImagePlugin

__all__ = ["jpeg_carry_over", "png_text_info"]

_SOI, _SOS, _APP0, _APP13, _COM = 0xD8, 0xDA, 0xE0, 0xED, 0xFE


def _header_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """A JPEG's marker segments before the first scan, as ``(marker, whole segment)``, and everything from SOS on."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("damaged JPEG marker stream")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _SOS:
            return segments, data[pos:]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segments.append((marker, data[pos : pos + 2 + length]))
        pos += 2 + length
    raise ValueError("JPEG stream without a scan")


def jpeg_carry_over(source: bytes, written: bytes) -> bytes:
    """``written`` (Pillow's re-encoding) with the source's JFIF header, IPTC/Photoshop blocks and comments put back.

    The JFIF segment replaces Pillow's (which rewrites the density in dots per inch); APP13 and COM segments follow
    the other application segments, as cameras and editors place them.
    """
    src, _ = _header_segments(source)
    out, scan = _header_segments(written)
    jfif = [s for m, s in src if m == _APP0 and s[4:9] == b"JFIF\x00"]
    kept = [s for m, s in src if m in (_APP13, _COM)]
    apps = [s for m, s in out if 0xE0 <= m <= 0xEF and not (m == _APP0 and jfif)]
    rest = [s for m, s in out if not 0xE0 <= m <= 0xEF]
    return b"\xff\xd8" + b"".join(jfif[:1] + apps + kept + rest) + scan


def png_text_info(source: Image.Image) -> PngImagePlugin.PngInfo | None:
    """The source PNG's text chunks (tEXt/zTXt/iTXt, XMP included) for Pillow's ``pnginfo``; None if it has none."""
    text = getattr(source, "text", None) or {}
    if not text:
        return None
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        if isinstance(value, PngImagePlugin.iTXt):
            info.add_itxt(key, str(value), value.lang or "", value.tkey or "", zip=len(value) > 1024)
        elif not value.isascii() or key == "XML:com.adobe.xmp":
            info.add_itxt(key, value, zip=len(value) > 1024)
        else:
            info.add_text(key, value, zip=len(value) > 1024)
    return info
