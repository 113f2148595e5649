"""Synthetic MRI + PET / CT sample pairs made from the MNI152 templates that nilearn's wheel ships.

The MNI152 ICBM 2009 templates are Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal
Neurological Institute, McGill University, distributed under a permissive licence (see samples/amif/NOTICE). They
make an anatomically plausible pair without touching any patient or research data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, sobel

__all__ = ["make_sample_pair", "hot_colormap", "write_dicom_series", "png_pairs_to_dicom"]


def hot_colormap(x: np.ndarray) -> np.ndarray:
    """Black-red-yellow-white pseudo-colour, as PET viewers show uptake; ``[H, W]`` in [0, 1] -> ``[H, W, 3]`` uint8."""
    r = np.clip(3 * x, 0, 1)
    g = np.clip(3 * x - 1, 0, 1)
    b = np.clip(3 * x - 2, 0, 1)
    return np.round(np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _slice(img, z: int) -> np.ndarray:
    arr = np.asarray(img.dataobj, dtype=np.float32)[:, :, z]
    return np.rot90(arr)  # radiological display: anterior at the top


def _to_256(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape
    side = max(h, w)
    canvas = np.zeros((side, side), np.float32)
    canvas[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = arr
    im = Image.fromarray(canvas).resize((256, 256), Image.Resampling.BICUBIC)
    out = np.asarray(im, dtype=np.float32)
    return np.clip(out / max(out.max(), 1e-6), 0, 1)


def make_sample_pair(out_dir: str | Path, z: int = 95, modality: str = "PET") -> tuple[Path, Path]:
    """Write ``MRI.png`` and ``PET.png`` (hot colour map of a grey-matter uptake model) or ``CT.png`` (bone-like
    rim from the brain mask edge) into ``out_dir``; returns the two paths."""
    from nilearn import datasets

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mri = _to_256(_slice(datasets.load_mni152_template(resolution=1), z))
    if modality.upper() == "PET":
        gm = _to_256(_slice(datasets.load_mni152_gm_template(resolution=1), z))
        uptake = gaussian_filter(gm, 3.0) * (0.8 + 0.2 * np.sin(np.linspace(0, 6, 256))[None])
        func = Image.fromarray(hot_colormap(np.clip(uptake / uptake.max(), 0, 1)))
    elif modality.upper() == "CT":
        mask = _to_256(_slice(datasets.load_mni152_brain_mask(resolution=1), z))
        rim = gaussian_filter(np.hypot(sobel(gaussian_filter(mask, 2.5), 0), sobel(gaussian_filter(mask, 2.5), 1)), 1.0)
        ct = np.clip(rim / rim.max(), 0, 1) + 0.25 * gaussian_filter(mask, 1.0)
        func = Image.fromarray(np.round(np.clip(ct, 0, 1) * 255).astype(np.uint8))
    else:
        raise ValueError(f"modality must be PET or CT, got {modality!r}")
    mri_path, func_path = out_dir / "MRI.png", out_dir / f"{modality.upper()}.png"
    Image.fromarray(np.round(mri * 255).astype(np.uint8)).save(mri_path)
    func.save(func_path)
    return mri_path, func_path


SOP_CLASSES = {
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "NM": "1.2.840.10008.5.1.4.1.1.20",
}
FOLDER_MODALITY = {"MRI": "MR", "CT": "CT", "PET": "PT", "SPECT": "NM"}


def write_dicom_series(
    images: dict[str, Path], out_dir: str | Path, modality: str, study: dict[str, str]
) -> list[Path]:
    """Write 2-D 8-bit images as one DICOM series of 16-bit slices ``out_dir/<name>.dcm`` (the same names, so a series
    folder per modality pairs slice by slice), for trying the DICOM path without patient data.

    ``modality``: MR, CT, PT or NM; ``study``: PatientName, PatientID, StudyInstanceUID, FrameOfReferenceUID shared by
    the series of one study. Colour images (pseudo-colour PET) are stored as their luminance, as scanners store
    uptake. CT is stored in Hounsfield-like units with RescaleIntercept -1024.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    from guard_core.atomic import atomic_output

    out_dir = Path(out_dir)
    series_uid, written = generate_uid(), []
    for number, (name, src) in enumerate(sorted(images.items()), start=1):
        grey = np.asarray(Image.open(src).convert("L"), dtype=np.float32) / 255
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(SOP_CLASSES[modality])
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = SOP_CLASSES[modality], ds.file_meta.MediaStorageSOPInstanceUID
        for tag, value in study.items():
            setattr(ds, tag, value)
        ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = series_uid, modality, 1, number
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = (
            "20260101",
            "120000",
            "1",
            "",
            "",
        )
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(number)], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
        ds.Rows, ds.Columns = grey.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024 if modality == "CT" else 0
        ds.PixelData = np.round(grey * 4000).astype(np.uint16).tobytes()
        path = out_dir / f"{name}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(path)
    return written


def png_pairs_to_dicom(task_dir: str | Path, out_task_dir: str | Path, patient: str = "AMIF^Sample") -> list[Path]:
    """Turn a PNG task folder (``MRI/`` + ``CT|PET|SPECT/``, same names) into DICOM series of one synthetic study."""
    from pydicom.uid import generate_uid

    task_dir, out_task_dir = Path(task_dir), Path(out_task_dir)
    study = {
        "PatientName": patient,
        "PatientID": "AMIF-0001",
        "StudyInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
    }
    written = []
    for folder in sorted(p for p in task_dir.iterdir() if p.is_dir() and p.name.upper() in FOLDER_MODALITY):
        images = {p.stem: p for p in folder.glob("*.png")}
        written += write_dicom_series(images, out_task_dir / folder.name, FOLDER_MODALITY[folder.name.upper()], study)
    return written
