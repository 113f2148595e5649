"""Reading and writing the images ``amif fuse`` handles: PNG/JPEG/TIFF, NIfTI, DICOM.

Images come in as float32 ``[C, H, W]`` in [0, 1] (C = 1 grey or 3 colour) or, for volumes, ``[C, H, W, D]``; 8-bit
files are scaled by 255; deeper ones (12/16-bit PNG or TIFF, 32-bit integer or float TIFF, NIfTI, DICOM) are read at
full precision and min-max normalised. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard_core.atomic import atomic_output

from .errors import ImageError

__all__ = ["ImageFile", "read_image", "write_image", "image_format", "ImageReadError"]


class ImageReadError(ImageError):
    """A file could not be read as an image; the message names the file and the problem in one line."""


def image_format(path: str | os.PathLike) -> str:
    name = str(path).lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".dcm", ".dicom")):
        return "dicom"
    if name.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        return "pil"
    if _has_dicom_preamble(path):  # PACS exports often name slices IM0001, 1.2.840..., no suffix
        return "dicom"
    raise ImageReadError(f"{path}: unsupported image type (use PNG, JPEG, TIFF, NIfTI .nii/.nii.gz or DICOM .dcm)")


def _has_dicom_preamble(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


@dataclass
class ImageFile:
    """An image read from disk: ``data`` float32 in [0, 1], ``[C, H, W]`` or ``[C, H, W, D]``, and what is needed to
    write a result like it (NIfTI affine, DICOM dataset)."""

    data: np.ndarray
    path: Path
    format: str
    extra: dict = field(default_factory=dict)


def _normalise(arr: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] in float64 (16-bit and float data keep every level); NaN/inf become 0."""
    arr = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        arr = np.where(finite, arr, np.nan)
    lo, hi = (float(np.nanmin(arr)), float(np.nanmax(arr))) if finite.any() else (0.0, 0.0)
    out = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def read_image(path: str | os.PathLike) -> ImageFile:
    path = Path(path)
    fmt = image_format(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    try:
        if fmt == "pil":
            from PIL import Image

            with Image.open(path) as im:
                if im.mode.startswith(("I", "F")):  # 16-bit, 32-bit integer and float: never through "L"
                    return ImageFile(_normalise(np.asarray(im))[None], path, fmt)
                rgb = im.mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr")
                arr = np.asarray(im.convert("RGB" if rgb else "L"))
            data = arr.astype(np.float32) / 255.0
            data = data[None] if data.ndim == 2 else data.transpose(2, 0, 1)
            return ImageFile(data, path, fmt)
        if fmt == "nifti":
            import nibabel as nib

            img: Any = nib.load(str(path))  # a NIfTI-1/2 image (nibabel types it as any file-based image)
            arr = np.asarray(img.dataobj)
            if arr.ndim == 4 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim not in (2, 3):
                raise ImageReadError(f"{path}: expected a 2-D image or 3-D volume, got shape {arr.shape}")
            return ImageFile(_normalise(arr)[None], path, fmt, {"affine": img.affine, "header": img.header})
        import pydicom

        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        if getattr(ds, "PhotometricInterpretation", "") == "RGB" and arr.ndim == 3 and arr.shape[-1] == 3:
            data = arr.astype(np.float32).transpose(2, 0, 1) / (2 ** int(ds.BitsStored) - 1)
        else:
            arr = arr.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
                getattr(ds, "RescaleIntercept", 0)
            )
            data = _normalise(arr)[None]
        return ImageFile(data, path, fmt, {"dataset": ds})
    except ImageReadError:
        raise
    except Exception as exc:  # every reader has its own exception types; the user needs one line
        raise ImageReadError(
            f"{path}: cannot read as {fmt} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def _atomic_write(path: Path, write) -> None:
    with atomic_output(path) as tmp:
        write(str(tmp))


def write_image(
    path: str | os.PathLike,
    data: np.ndarray,
    like: ImageFile | None = None,
    marked: bool = False,
    also_from: tuple[ImageFile, ...] = (),
) -> Path:
    """Write ``data`` (``[C, H, W]`` / ``[C, H, W, D]`` in [0, 1]) in the format the suffix names.

    ``like`` supplies the NIfTI affine or the DICOM dataset to derive from (the MR input); DICOM output also
    references the DICOM inputs in ``also_from``; ``marked`` says whether the copyright mark is burned in (recorded in
    DICOM's BurnedInAnnotation).
    """
    path = Path(path)
    fmt = image_format(path)
    data = np.clip(np.asarray(data, dtype=np.float32), 0, 1)
    if fmt == "pil":
        from PIL import Image

        if data.ndim != 3:
            raise ImageError(f"{path}: PNG/JPEG output holds one 2-D image; write volumes as NIfTI")
        u8 = np.round(data * 255).astype(np.uint8)
        im = Image.fromarray(u8[0] if u8.shape[0] == 1 else u8.transpose(1, 2, 0))
        _atomic_write(path, lambda tmp: im.save(tmp, format="PNG" if path.suffix.lower() == ".png" else None))
    elif fmt == "nifti":
        import nibabel as nib

        arr = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
        affine = like.extra.get("affine") if like is not None and like.format == "nifti" else np.eye(4)
        _atomic_write(path, lambda tmp: nib.save(nib.Nifti1Image(arr.astype(np.float32), affine), tmp))
    else:
        from .dicom import derived_secondary_capture

        def dataset(f: ImageFile | None):
            return f.extra.get("dataset") if f is not None and f.format == "dicom" else None

        ds = derived_secondary_capture(
            data, dataset(like), marked=marked, also_from=[d for d in map(dataset, also_from) if d is not None]
        )
        _atomic_write(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
    return path
