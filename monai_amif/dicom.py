"""DICOM output: a derived Secondary Capture image of the fusion result."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

__all__ = ["derived_secondary_capture"]

_COPY_FROM_SOURCE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "PixelSpacing",
)
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
# Not copied: ImagePositionPatient/ImageOrientationPatient/FrameOfReferenceUID are outside the Secondary Capture IOD
# (dciodvfy flags them); where the slice lies is told by the referenced source images instead.


def derived_secondary_capture(
    data: np.ndarray,
    source: Dataset | None = None,
    marked: bool = False,
    description: str = "AMIF fusion",
    also_from: Sequence[Dataset] = (),
) -> Dataset:
    """Build a Secondary Capture dataset for a fused image ``[1 or 3, H, W]`` in [0, 1].

    Patient and study are copied from ``source`` (the MR input) with new series/instance UIDs; ``source`` and the
    other inputs in ``also_from`` (the CT/PET/SPECT slice) are referenced in SourceImageSequence;
    ``BurnedInAnnotation`` is YES when the copyright mark is drawn into the pixels.
    """
    if data.ndim != 3 or data.shape[0] not in (1, 3):
        raise ValueError(f"DICOM output takes one [1|3, H, W] image, got shape {data.shape}")
    now = _dt.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    for tag in _COPY_FROM_SOURCE:
        if source is not None and tag in source:
            setattr(ds, tag, getattr(source, tag))
    for tag in _TYPE2:  # required, empty when unknown
        if tag not in ds:
            setattr(ds, tag, "")
    ds.StudyInstanceUID = ds.get("StudyInstanceUID", generate_uid())
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    # Laterality (Type 2C) is for paired body parts: copied when the MR has it; AMIF fuses head scans, which are
    # unpaired, so it is otherwise absent and the body part says why.
    if source is not None and source.get("Laterality"):
        ds.Laterality = source.Laterality
    ds.BodyPartExamined = (source.get("BodyPartExamined") if source is not None else None) or "HEAD"
    ds.PatientOrientation = _patient_orientation(source)
    ds.ConversionType = "WSD"
    ds.SeriesNumber, ds.InstanceNumber = 900, 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesDescription = description + (" (unlicensed, marked)" if marked else "")
    ds.DerivationDescription = "Fusion of MR with CT/PET/SPECT by AMIF"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.BurnedInAnnotation = "YES" if marked else "NO"
    refs = [_reference(src) for src in (source, *also_from) if src is not None and "SOPInstanceUID" in src]
    if refs:
        ds.SourceImageSequence = DicomSequence(refs)
    u8 = np.round(np.clip(data, 0, 1) * 255).astype(np.uint8)
    ds.Rows, ds.Columns = u8.shape[1], u8.shape[2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if u8.shape[0] == 3:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.PixelData = u8.transpose(1, 2, 0).tobytes()
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = u8[0].tobytes()
    return ds


def _reference(src: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
    return ref


def _patient_orientation(source: Dataset | None) -> list[str] | str:
    """General Image's PatientOrientation (row, column directions, e.g. ``["L", "P"]``) from the MR's
    ImageOrientationPatient; empty (Type 2) when the MR does not say."""
    iop = source.get("ImageOrientationPatient") if source is not None else None
    if not iop or len(iop) != 6:
        return ""
    return [_direction([float(v) for v in iop[:3]]), _direction([float(v) for v in iop[3:]])]


def _direction(v: list[float]) -> str:
    """The patient-axis letters of a direction cosine vector, strongest first (LPS: +x L, +y P, +z H)."""
    letters = [("L", "R"), ("P", "A"), ("H", "F")]
    order = sorted(range(3), key=lambda i: -abs(v[i]))
    return "".join(letters[i][0 if v[i] > 0 else 1] for i in order if abs(v[i]) > 0.25) or "L"
