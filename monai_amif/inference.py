"""Fusing pairs with a trained model: the Python API behind ``amif fuse``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from guard_core.device import resolve
from guard_core.keys import Key

from .errors import ImageError
from .loading import load_model
from .networks import AMIFNet
from .transforms import RestoreColor, SplitColor

__all__ = ["Fuser", "FusionResult", "default_weights", "MAX_SLICE_PIXELS"]

#: The largest slice fused in one piece. The network's normalisation looks at the whole slice, so it is not tiled
#: (tiles would show seams); larger slices are refused up front with the memory they would need.
MAX_SLICE_PIXELS = 4096 * 4096
# Peak memory per input pixel of the shipped network: about 180 B, the growth of peak RSS fusing one 2048² slice in
# inference mode on this CPU (2026-12-02); rounded up.
_BYTES_PER_PIXEL = 200

WEIGHTS_ENV = "AMIF_WEIGHTS"


def default_weights() -> Path:
    """``$AMIF_WEIGHTS``, else the demo model: the bundle's ``models/model.pt``, which the wheel carries as the package
    ``monai_amif.demo_model`` (a source checkout finds it in ``bundles/amif_fusion/models``)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    try:
        shipped = Path(str(resources.files("monai_amif.demo_model") / "model.pt"))
    except ModuleNotFoundError:
        shipped = None
    if shipped is not None and shipped.is_file():
        return shipped
    return Path(__file__).resolve().parents[1] / "bundles" / "amif_fusion" / "models" / "model.pt"


@dataclass
class FusionResult:
    """``grey`` the fused Y ``[1, H, W(, D)]``; ``image`` what to save: colour ``[3, ...]`` where the functional input
    had colour, else ``grey``; ``marked`` whether the run was unlicensed (no right key), so the mark is drawn."""

    grey: np.ndarray
    image: np.ndarray
    marked: bool


class Fuser:
    """Loads a model once and fuses pairs.

    Args:
        weights: a model file (see :func:`monai_amif.checkpoint.save_model`) or a ready :class:`AMIFNet`.
        device: ``auto | cpu | cuda[:n]``.
        batch_slices: slices of a volume fused per forward pass.
        key: opens a sealed model file (:mod:`monai_amif.sealed`); plain model files do not need it here.
    """

    def __init__(
        self,
        weights: str | os.PathLike | AMIFNet | None = None,
        device: str = "auto",
        batch_slices: int = 16,
        key: Key | None = None,
    ) -> None:
        self.device = resolve(device)
        net = weights if isinstance(weights, AMIFNet) else load_model(weights or default_weights(), key=key)
        self.net = net.to(self.device).eval()
        self.batch_slices = batch_slices
        self._split, self._restore = SplitColor(), RestoreColor()

    @torch.inference_mode()
    def fuse(self, mri: np.ndarray, func: np.ndarray, key: Key) -> FusionResult:
        """Fuse ``mri [1|3, H, W(, D)]`` (colour exports taken as their luma) with ``func [1|3, H, W(, D)]`` (both in
        [0, 1]) under ``key``.

        ``marked`` in the result compares the key's public fingerprint with the one stored beside the weights; that
        is for labelling outputs (DICOM BurnedInAnnotation) only: the network itself decides what it draws.
        """
        if mri.shape[1:] != func.shape[1:]:
            raise ImageError(f"MRI {tuple(mri.shape[1:])} and functional {tuple(func.shape[1:])} images differ in size")
        pixels = int(np.prod(mri.shape[1:3]))
        if pixels > MAX_SLICE_PIXELS:
            raise ImageError(
                f"{mri.shape[2]}x{mri.shape[1]} slices are too large to fuse (about "
                f"{pixels * _BYTES_PER_PIXEL / 2**30:.0f} GiB of memory; at most "
                f"{MAX_SLICE_PIXELS:,} pixels per slice): downsample them first"
            )
        volume = mri.ndim == 4
        m = torch.from_numpy(np.ascontiguousarray(mri if volume else mri[..., None])).float()
        f = torch.from_numpy(np.ascontiguousarray(func if volume else func[..., None])).float()
        slices = m.shape[-1]
        ys, cbcrs = [], []
        for z in range(slices):
            y, cbcr = self._split(f[..., z])
            ys.append(torch.cat([self._split(m[..., z])[0], y]))
            cbcrs.append(cbcr)
        images = torch.stack(ys)  # [D, 2, H, W]
        k = key.tensor(self.device)[None]
        fused = torch.cat(
            [
                self.net(chunk.to(self.device), k.expand(len(chunk), -1)).cpu()
                for chunk in images.split(self.batch_slices)
            ]
        )  # [D, 1, H, W]
        colour = func.shape[0] == 3
        out = torch.stack([self._restore(fused[z], cbcrs[z]) for z in range(slices)]) if colour else fused
        grey = fused.permute(1, 2, 3, 0).numpy()
        image = out.permute(1, 2, 3, 0).numpy()
        if not volume:
            grey, image = grey[..., 0], image[..., 0]
        accepted = getattr(self.net, "accepted_fingerprint", None)
        marked = key.is_none or (accepted is not None and key.fingerprint() != accepted)
        return FusionResult(grey, image, marked)
