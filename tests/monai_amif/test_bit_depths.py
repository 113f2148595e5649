"""Medical exports at every bit depth and layout read as the same picture, through ``amif fuse``'s reader and the
bundle's pair loader alike (issues 15.2 and 17.5)."""

import numpy as np
import pytest
import torch
from PIL import Image

from monai_amif.data import pair_transforms
from monai_amif.io import read_image


@pytest.fixture
def picture() -> np.ndarray:
    """An 8-bit grey picture that spans 0..255 (so min-max scaling and /255 agree)."""
    yy, xx = np.mgrid[:48, :40]
    img = (np.sin(xx / 5.0) * np.cos(yy / 7.0) * 127.5 + 127.5).round().astype(np.uint8)
    img[0, 0], img[0, 1] = 0, 255
    return img


def _write(picture: np.ndarray, path, layout: str) -> None:
    if layout == "8-bit":
        Image.fromarray(picture).save(path)
    elif layout == "16-bit":
        Image.fromarray(picture.astype(np.uint16) * 257).save(path)
    elif layout == "12-bit":
        Image.fromarray(np.round(picture.astype(np.float64) * 4095 / 255).astype(np.uint16)).save(path)
    elif layout == "float":
        Image.fromarray(picture.astype(np.float32) / 255 * 3000.0 - 1000.0).save(path)  # e.g. CT in HU
    elif layout == "grey as RGB":
        Image.fromarray(np.repeat(picture[..., None], 3, -1)).save(path)
    elif layout == "RGBA":
        Image.fromarray(np.dstack([picture] * 3 + [np.full_like(picture, 200)])).save(path)
    elif layout == "palette":
        Image.fromarray(picture).convert("P").save(path)


LAYOUTS = {
    "8-bit": "png",
    "16-bit": "png",
    "12-bit": "tif",
    "float": "tif",
    "grey as RGB": "png",
    "RGBA": "png",
    "palette": "png",
}


@pytest.mark.parametrize("layout", ["16-bit", "12-bit", "float"])
def test_deep_files_keep_every_level(picture, tmp_path, layout):
    path = tmp_path / f"x.{LAYOUTS[layout]}"
    _write(picture, path, layout)
    data = read_image(path).data
    assert data.shape == (1, *picture.shape)
    assert np.abs(data[0] - picture / 255.0).max() < 2e-4, layout
    assert len(np.unique(data)) == len(np.unique(picture))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_same_mri_through_the_bundle_loader(picture, tmp_path, layout):
    root = tmp_path / "CT-MRI"
    (root / "MRI").mkdir(parents=True)
    (root / "CT").mkdir()
    _write(picture, root / "MRI" / f"a.{LAYOUTS[layout]}", layout)
    _write(picture, root / "CT" / f"a.{LAYOUTS[layout]}", "8-bit")
    d = pair_transforms()(
        {"mri": str(root / "MRI" / f"a.{LAYOUTS[layout]}"), "func": str(root / "CT" / f"a.{LAYOUTS[layout]}")}
    )
    image = torch.as_tensor(d["image"])
    assert image.shape == (2, *picture.shape)
    assert torch.allclose(image[0], torch.from_numpy(picture / 255.0).float(), atol=3e-3), layout
