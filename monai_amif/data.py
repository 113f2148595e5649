"""Finding fusion pairs on disk and turning them into MONAI datasets.

A folder is laid out like the Harvard atlas release::

    <root>/<split>/<task>/<modality>/<name>.png     e.g. harvard/train/PET-MRI/{MRI,PET}/25015.png

where ``task`` is ``<FUNC>-MRI`` and the same file name in the two modality folders is one pair.
"""

from __future__ import annotations

from pathlib import Path

from monai.transforms import Compose, ConcatItemsd, Lambdad

from .errors import PairsNotFound
from .transforms import LoadSliced, SplitColord, as_grey

__all__ = ["find_pairs", "pair_transforms", "pair_name", "TASKS"]

TASKS = ("CT-MRI", "PET-MRI", "SPECT-MRI")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".nii", ".nii.gz", ".dcm", ".dicom")


def pair_name(path: Path) -> str:
    """The file name without its image suffix (``.nii.gz`` counted whole)."""
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def find_pairs(root: str | Path, tasks: tuple[str, ...] | None = None) -> list[dict]:
    """List ``{"mri", "func", "task", "name"}`` dicts for every pair under ``root`` (a split folder or a task folder).

    A pair is the same file name in ``MRI/`` and the functional folder: PNG/JPEG/TIFF, NIfTI (``.nii``/``.nii.gz``)
    or DICOM (``.dcm``, one 2-D slice per file; a series is a folder of slices named alike in both modalities).

    Raises:
        FileNotFoundError: when ``root`` holds no pairs (the message names the folder).
    """
    root = Path(root)
    task_dirs = (
        [root]
        if (root / "MRI").is_dir()
        else sorted(p for p in root.iterdir() if p.is_dir() and (p / "MRI").is_dir())
        if root.is_dir()
        else []
    )
    pairs = []
    for task_dir in task_dirs:
        if tasks and task_dir.name not in tasks:
            continue
        func_dirs = [p for p in task_dir.iterdir() if p.is_dir() and p.name != "MRI"]
        if len(func_dirs) != 1:
            raise PairsNotFound(
                f"{task_dir}: expected MRI/ and one functional folder, found {[p.name for p in func_dirs]}"
            )
        for mri in sorted((task_dir / "MRI").iterdir()):
            func = func_dirs[0] / mri.name
            if mri.name.lower().endswith(IMAGE_SUFFIXES) and func.is_file():
                pairs.append({"mri": str(mri), "func": str(func), "task": task_dir.name, "name": pair_name(mri)})
    if not pairs:
        raise PairsNotFound(
            f"{root}: no MRI/functional pairs found (expected <task>/MRI/<name> + <task>/<FUNC>/<name>)"
        )
    return pairs


def pair_transforms() -> Compose:
    """Load a pair of images -> ``image [2, H, W]`` (MRI grey, functional Y) in [0, 1], plus ``func_cbcr``."""
    keys = ("mri", "func")
    return Compose(
        [LoadSliced(keys), Lambdad("mri", as_grey, track_meta=False), SplitColord("func"), ConcatItemsd(keys, "image")]
    )
