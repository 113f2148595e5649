"""MONAI transforms for AMIF: licence keys, colour handling and the input pairing, array and dictionary forms.

A typical inference chain::

    LoadSliced(("mri", "func"))      # PNG/JPEG/TIFF, NIfTI or DICOM -> [C, H, W] in [0, 1]
    SplitColord("func")              # func -> Y [1,H,W]; func_cbcr [2,H,W] kept for later
    ConcatItemsd(("mri", "func"), "image")
    AuthorizeKeyd("key", env="AMIF_PASSPHRASE", key_file=...)
    ... network(image, key) -> pred ...
    RestoreColord("pred", cbcr_key="func_cbcr")
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

from guard_core import ops
from guard_core.keys import Key

__all__ = [
    "LoadSlice",
    "LoadSliced",
    "AuthorizeKey",
    "AuthorizeKeyd",
    "SplitColor",
    "SplitColord",
    "RestoreColor",
    "RestoreColord",
    "as_grey",
]

PASSPHRASE_ENV = "AMIF_PASSPHRASE"
KEY_FILE_ENV = "AMIF_KEY_FILE"


class LoadSlice(Transform):
    """Read one 2-D image file -> ``[C, H, W]`` float32 in [0, 1] (C = 1 grey, 3 colour).

    PNG/JPEG/TIFF (8-bit, scaled by 255), NIfTI (a 2-D image or a one-slice volume) and DICOM (one slice; rescale
    slope/intercept applied) are read by :func:`monai_amif.io.read_image`, with min-max scaling for the medical
    formats, exactly as ``amif fuse`` reads them, so the bundle and the command line give the same pixels.

    Raises:
        monai_amif.io.ImageReadError: the file cannot be read, or holds a volume (fuse volumes with ``amif fuse``).
    """

    backend = [TransformBackends.NUMPY]

    def __call__(self, path: str | os.PathLike) -> torch.Tensor:
        from .io import ImageReadError, read_image

        data = read_image(path).data
        if data.ndim == 4 and data.shape[-1] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ImageReadError(
                f"{path}: the bundle fuses 2-D slices, got shape {data.shape[1:]}; fuse volumes with `amif fuse`"
            )
        return torch.from_numpy(data)


class LoadSliced(MapTransform):
    """Dictionary form of :class:`LoadSlice`: replaces each path under ``keys`` with its image and keeps the path
    under ``<key>_path`` (writers derive their output from it)."""

    backend = LoadSlice.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadSlice()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for k in self.key_iterator(d):
            d[f"{k}_path"] = str(d[k])
            d[k] = self.loader(d[k])
        return d


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x).unsqueeze(0).float()


class AuthorizeKey(Transform):
    """Resolve the licence key to a ``[256]`` ±1 tensor (zeros when no key is given).

    Sources, first found wins: an explicit :class:`Key` or secret passed at call time, the key file ``key_file``,
    the key file named by ``$AMIF_KEY_FILE``, the passphrase in the environment variable ``env``. None of them -> the
    absent key, which is a valid input (the network then draws the mark), not an error.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, env: str | None = PASSPHRASE_ENV, key_file: str | os.PathLike | None = None) -> None:
        self.env, self.key_file = env, key_file

    def resolve(self, value: Key | str | None = None) -> Key:
        if isinstance(value, Key):
            return value
        if isinstance(value, str) and value:
            return Key.from_passphrase(value)
        key_file = self.key_file or os.environ.get(KEY_FILE_ENV) or None
        if key_file:
            return Key.from_file(key_file)
        return Key.from_env(self.env) if self.env else Key.none()

    def __call__(self, value: Key | str | None = None) -> torch.Tensor:
        return self.resolve(value).tensor()

    def __repr__(self) -> str:  # never the secret: only where it would come from
        return f"AuthorizeKey(env={self.env!r}, key_file={str(self.key_file) if self.key_file else None!r})"


class AuthorizeKeyd(MapTransform):
    """Dictionary form of :class:`AuthorizeKey`: ``data[key]`` (a :class:`Key`, a passphrase, or absent) -> tensor.

    The secret is read when the transform runs and only the ±1 tensor is stored in the data dict, plus the key's
    public fingerprint under ``<key>_fingerprint`` ("" for no key) so writers can record whether the run was
    licensed; logs and saved configs hold the source (an environment variable name or a key-file path), never the key.
    """

    backend = AuthorizeKey.backend

    def __init__(
        self,
        keys: KeysCollection = "key",
        env: str | None = PASSPHRASE_ENV,
        key_file: str | os.PathLike | None = None,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.authorize = AuthorizeKey(env=env, key_file=key_file)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for k in self.keys:
            key = self.authorize.resolve(d.get(k))
            d[k] = key.tensor()
            d[f"{k}_fingerprint"] = "" if key.is_none else key.fingerprint()
        return d


class SplitColor(Transform):
    """``[C, H, W]`` functional image -> ``(Y [1, H, W], CbCr [2, H, W])`` (BT.601, values in [0, 1]).

    Grey input (C == 1) is its own Y; its CbCr is neutral (0.5), so :class:`RestoreColor` gives grey back.
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = torch.as_tensor(img).float()
        if img.shape[0] == 1:
            return img, torch.full((2, *img.shape[1:]), 0.5, dtype=img.dtype)
        if img.shape[0] != 3:
            raise ValueError(f"functional image must have 1 or 3 channels, got {img.shape[0]}")
        ycbcr = ops.rgb_to_ycbcr(_as_batch(img))[0]
        return ycbcr[:1], ycbcr[1:]


def as_grey(img: torch.Tensor) -> torch.Tensor:
    """``[1|3, H, W]`` -> ``[1, H, W]``: the BT.601 luma of a colour export (MRI slices saved as RGB or palette
    pictures), grey as is. The bundle and ``amif fuse`` both read the MRI through this."""
    return SplitColor()(img)[0]


class SplitColord(MapTransform):
    """Dictionary form of :class:`SplitColor`: ``data[k]`` becomes Y; CbCr goes to ``data[k + cbcr_suffix]`` and
    ``data[k + "_is_colour"]`` records whether the input had colour."""

    backend = SplitColor.backend

    def __init__(
        self, keys: KeysCollection = "func", cbcr_suffix: str = "_cbcr", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.split, self.suffix = SplitColor(), cbcr_suffix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for k in self.key_iterator(d):
            colour = torch.as_tensor(d[k]).shape[0] == 3
            d[k], d[f"{k}{self.suffix}"] = self.split(d[k])
            d[f"{k}_is_colour"] = colour
        return d


class RestoreColor(Transform):
    """Fused Y ``[1, H, W]`` + CbCr ``[2, H, W]`` -> RGB ``[3, H, W]`` in [0, 1].

    Where a bright fused pixel with the functional image's strong colour falls outside RGB, the colour is desaturated
    toward grey just enough to fit, instead of each channel being clipped: the pixel keeps the fused luminance (which
    is what was fused and what the metrics read back), only its saturation gives way.
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:  # type: ignore[override]  # two inputs
        y = torch.as_tensor(y).float().clamp(0, 1)
        cb, cr = (torch.as_tensor(cbcr).float().to(y.device) - 0.5).split(1)
        # kornia's ycbcr_to_rgb (the exact inverse of ops.rgb_to_ycbcr) without its clamp: the RGB offset of the colour
        # from grey, which carries no luminance.
        chroma = torch.cat([1.4025245442 * cr, -0.3443401356 * cb - 0.7144034731 * cr, 1.7730496454 * cb], 0)
        room = torch.where(chroma > 0, (1 - y) / chroma, torch.where(chroma < 0, -y / chroma, torch.ones_like(chroma)))
        return (y + room.amin(0, keepdim=True).clamp(0, 1) * chroma).clamp(0, 1)


class RestoreColord(MapTransform):
    """Dictionary form of :class:`RestoreColor`: colour is put back only where the input had it."""

    backend = RestoreColor.backend

    def __init__(
        self,
        keys: KeysCollection = "pred",
        cbcr_key: str = "func_cbcr",
        colour_flag: str = "func_is_colour",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.restore, self.cbcr_key, self.flag = RestoreColor(), cbcr_key, colour_flag

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for k in self.key_iterator(d):
            if bool(d.get(self.flag, False)):
                d[k] = self.restore(d[k], d[self.cbcr_key])
        return d
