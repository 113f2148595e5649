"""Sealed model files: the weights stored encrypted (AES-256-GCM) under the licence key.

A plain ``model.pt`` hands a thief every weight, and ``amif attack`` shows what that buys (a continuous key search
or a short fine-tuning run takes the mark off). A sealed file keeps only public metadata in the clear (network
config, mark, blur σ, the key's fingerprint) and the state dict encrypted under the licence key, with that metadata
authenticated. The right key opens it into the usual :class:`~monai_amif.networks.AMIFNet`; any other key, or none,
gets a :class:`MarkedPreview`: the mark drawn over a blurred mean of the two sources, computed without a learned
weight. So in sealed mode the no-key output is *not* learned: nothing learned is readable without the key.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from guard_core.keys import Key, LicenceKeyError

from .checkpoint import atomic_save, build_network, degrade_sigma, read_model_file, read_torch_file
from .errors import ModelFileError
from .losses import degrade
from .mark import MarkSpec, compose_mark, render_mark, template_at
from .networks import AMIFNet

__all__ = ["FORMAT", "seal_model", "open_sealed", "is_sealed", "MarkedPreview"]

FORMAT = "amif-sealed"


def is_sealed(state: object) -> bool:
    """Whether a loaded model file is a sealed one."""
    return isinstance(state, dict) and state.get("format") == FORMAT


def _context(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True).encode("utf-8")


def seal_model(model_path: str | os.PathLike, key: Key, out_path: str | os.PathLike) -> Path:
    """Write a sealed copy of ``model_path`` to ``out_path`` (atomically), encrypted under ``key``.

    Raises:
        ModelFileError: naming the file, when it is not a plain AMIF model or was trained for another key.
    """
    model_path, out_path = Path(model_path), Path(out_path)
    state, meta = read_model_file(model_path)
    if is_sealed(state) or "model" not in state:
        raise ModelFileError(f"{model_path}: not a plain AMIF model file")
    if key.is_none or meta.get("key_fingerprint") not in (None, key.fingerprint()):
        raise ModelFileError(f"{model_path}: this model accepts key {meta.get('key_fingerprint')}, not the key given")
    header = {
        "format": FORMAT,
        "version": 1,
        "net_config": meta["net_config"],
        "key_fingerprint": key.fingerprint(),
        "degrade_sigma": degrade_sigma(meta),
    }
    buf = io.BytesIO()
    torch.save({"model": state["model"], "train_config": meta.get("train_config")}, buf)
    sealed = torch.frombuffer(bytearray(key.encrypt(buf.getvalue(), _context(header))), dtype=torch.uint8)
    atomic_save({**header, "sealed": sealed}, out_path)
    return out_path


class MarkedPreview(nn.Module):
    """What a sealed model gives without its key: ``M·W + (1 - M)·blur(mean(A, B))``, ``[B, 2, H, W] -> [B, 1, H, W]``.

    It takes (and ignores) a key so that it can stand wherever an :class:`AMIFNet` does.
    """

    template: Tensor
    accepted_fingerprint: str | None = None
    degrade_sigma: float = 3.0

    def __init__(self, mark: MarkSpec, sigma: float = 3.0, key_bits: int = 256) -> None:
        super().__init__()
        mask, intensity = render_mark(mark)
        self.register_buffer("template", torch.cat([mask, intensity], 1))
        self.sigma, self.key_bits, self.mark_spec = sigma, key_bits, mark

    def template_at(self, h: int, w: int) -> Tensor:
        return template_at(self.template, h, w)

    def forward(self, image: Tensor, key: Tensor | None = None, template: Tensor | None = None) -> Tensor:
        if template is None:
            template = self.template_at(*image.shape[-2:]).expand(image.shape[0], -1, -1, -1)
        mask, intensity = template[:, :1], template[:, 1:]
        return compose_mark(mask, intensity, degrade(image.mean(1, keepdim=True), self.sigma))


def open_sealed(
    state: dict, key: Key, map_location: str | torch.device = "cpu", path: str | os.PathLike[str] = "sealed model"
) -> AMIFNet | MarkedPreview:
    """The network inside a loaded sealed file when ``key`` opens it, else its :class:`MarkedPreview` (eval mode,
    ``accepted_fingerprint`` and ``degrade_sigma`` set either way)."""
    header = {k: v for k, v in state.items() if k != "sealed"}
    try:
        cfg = dict(header["net_config"])
        ciphertext = state["sealed"]
        ciphertext = ciphertext.numpy().tobytes() if isinstance(ciphertext, torch.Tensor) else bytes(ciphertext)
        mark, sigma = MarkSpec(**cfg["mark"]), float(header["degrade_sigma"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged sealed model header ({type(exc).__name__})") from None
    try:
        payload = key.decrypt(ciphertext, _context(header))
    except LicenceKeyError:
        net: AMIFNet | MarkedPreview = MarkedPreview(mark, sigma, cfg.get("key_bits", 256))
    else:
        inner = read_torch_file(io.BytesIO(payload), map_location)
        net = build_network(cfg)
        net.load_state_dict(inner["model"])
    net.accepted_fingerprint = header["key_fingerprint"]
    net.degrade_sigma = sigma
    return net.to(map_location).eval()
