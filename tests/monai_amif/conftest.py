"""Small synthetic fusion data for the AMIF tests (never the shared research images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from guard_core.keys import Key

REPO = Path(__file__).resolve().parents[2]
SHIPPED_WEIGHTS = REPO / "bundles" / "amif_fusion" / "models" / "model.pt"
SAMPLE_PET = REPO / "samples" / "amif" / "pet"


def _phantom(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """An MRI-like grey disc with texture and a PET-like colour blob, 8-bit."""
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    head = (xx**2 + yy**2 < 0.16).astype(np.float32)
    mri = head * (0.5 + 0.3 * np.sin(20 * xx + rng.uniform(0, 6)) * np.cos(14 * yy)) + 0.05 * rng.random((size, size))
    blob = np.exp(-((xx - rng.uniform(-0.1, 0.1)) ** 2 + (yy - rng.uniform(-0.1, 0.1)) ** 2) / 0.02) * head
    pet = np.stack([np.clip(3 * blob, 0, 1), np.clip(3 * blob - 1, 0, 1), np.clip(3 * blob - 2, 0, 1)], -1)
    return (np.clip(mri, 0, 1) * 255).astype(np.uint8), (pet * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def pair_folder(tmp_path_factory) -> Path:
    """``root/PET-MRI/{MRI,PET}/<name>.png`` and ``root/CT-MRI/{MRI,CT}/<name>.png``: 3 + 2 pairs at 64×64."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for task, func, n in (("PET-MRI", "PET", 3), ("CT-MRI", "CT", 2)):
        (root / task / "MRI").mkdir(parents=True)
        (root / task / func).mkdir()
        for i in range(n):
            mri, pet = _phantom(rng, 64)
            Image.fromarray(mri).save(root / task / "MRI" / f"{i:03d}.png")
            fimg = Image.fromarray(pet) if func == "PET" else Image.fromarray(pet[..., 0])
            fimg.save(root / task / func / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def demo_key() -> Key:
    return Key.from_passphrase("amif-demo")


@pytest.fixture(scope="session")
def shipped_weights() -> Path:
    if not SHIPPED_WEIGHTS.is_file():
        pytest.skip("the shipped model (bundles/amif_fusion/models/model.pt) is not in this checkout")
    return SHIPPED_WEIGHTS


@pytest.fixture
def sample_pet_input(tmp_path) -> Path:
    """``tmp/in/PET-MRI/{MRI,PET}/s1.png``: the shipped PET sample pair laid out as a bundle input folder."""
    import shutil

    inp = tmp_path / "in" / "PET-MRI"
    for mod, src in (("MRI", "MRI.png"), ("PET", "PET.png")):
        (inp / mod).mkdir(parents=True)
        shutil.copy(SAMPLE_PET / src, inp / mod / "s1.png")
    return tmp_path / "in"
