"""Running the bundle on a DICOM study as PACS hands it over: one folder of slices, any file names, MR and CT/PT/NM
series mixed. Shared by the MONAI Deploy and MONAI Label hooks (``hooks/``), which add only their SDK's plumbing."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path

from .errors import PairsNotFound

__all__ = ["find_dicom_pairs", "run_bundle", "FUNCTIONAL_MODALITIES"]

log = logging.getLogger(__name__)

FUNCTIONAL_MODALITIES = {"CT": "CT", "PT": "PET", "NM": "SPECT"}
BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "amif_fusion"


def _position(ds) -> float:
    """Where a slice lies along its series' normal (ImagePositionPatient · normal), else its InstanceNumber."""
    try:
        r, c = [float(v) for v in ds.ImageOrientationPatient[:3]], [float(v) for v in ds.ImageOrientationPatient[3:]]
        normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
        return sum(float(p) * n for p, n in zip(ds.ImagePositionPatient, normal))
    except (AttributeError, ValueError, TypeError):
        return float(getattr(ds, "InstanceNumber", 0) or 0)


def find_dicom_pairs(folder: str | os.PathLike) -> list[dict]:
    """Pair every MR slice under ``folder`` (searched recursively) with the nearest slice of the study's CT, PET or
    SPECT series, by position along the slice normal. Returns bundle datalist entries ``{"mri", "func", "task",
    "name"}``; ``task`` is e.g. ``PET-MRI``, ``name`` the MR slice's SOPInstanceUID.

    Raises:
        FileNotFoundError: naming the folder, when it holds no MR series with a functional series of the same study.
    """
    import pydicom

    series: dict[tuple[str, str, str], list] = defaultdict(list)
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # not DICOM (a DICOMDIR, a README): skipped, as a PACS export may hold such files
            continue
        if "SOPInstanceUID" in ds and "Modality" in ds:
            series[(ds.get("StudyInstanceUID", ""), ds.Modality, ds.get("SeriesInstanceUID", ""))].append((path, ds))
    pairs = []
    for (study, modality, _), mr in series.items():
        if modality != "MR":
            continue
        funcs = [(m, s) for (st, m, _), s in series.items() if st == study and m in FUNCTIONAL_MODALITIES]
        if not funcs:
            continue
        func_modality, func_slices = funcs[0]
        if len(funcs) > 1:
            log.warning(
                "study %s has %d functional series; fusing with the first (%s)", study, len(funcs), func_modality
            )
        for path, ds in mr:
            fpath, _ = min(func_slices, key=lambda f: abs(_position(f[1]) - _position(ds)))
            pairs.append(
                {
                    "mri": str(path),
                    "func": str(fpath),
                    "task": f"{FUNCTIONAL_MODALITIES[func_modality]}-MRI",
                    "name": str(ds.SOPInstanceUID),
                }
            )
    if not pairs:
        raise PairsNotFound(f"{folder}: no MR series with a CT, PET or SPECT series of the same study")
    return pairs


def run_bundle(pairs: list[dict], output_dir: str | os.PathLike, bundle_dir: str | os.PathLike = BUNDLE) -> list[Path]:
    """Run the bundle's ``configs/inference.json`` on ``pairs`` (datalist entries), writing under ``output_dir``.
    The key comes from ``$AMIF_PASSPHRASE`` / ``$AMIF_KEY_FILE``, as for ``monai.bundle run``. Returns the outputs."""
    from monai.bundle import ConfigWorkflow

    from .bundle import EXTENSIONS
    from .io import image_format

    bundle_dir = Path(bundle_dir)
    workflow = ConfigWorkflow(
        config_file=str(bundle_dir / "configs" / "inference.json"),
        workflow_type="infer",
        bundle_root=str(bundle_dir),
        output_dir=str(output_dir),
        datalist=pairs,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return [Path(output_dir) / p["task"] / f"{p['name']}{EXTENSIONS[image_format(p['mri'])]}" for p in pairs]
