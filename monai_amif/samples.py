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

__all__ = ["make_sample_pair", "hot_colormap"]


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
    canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = arr
    im = Image.fromarray(canvas).resize((256, 256), Image.BICUBIC)
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
