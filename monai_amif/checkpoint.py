"""Saving and loading AMIF weights: atomic writes, and a model file that says how to rebuild its network."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from guard_core.atomic import atomic_output
from guard_core.keys import Key

from .mark import MarkSpec
from .networks import AMIFNet

__all__ = ["atomic_save", "build_network", "net_config", "degrade_sigma", "save_model", "load_model", "key_fingerprint"]


def atomic_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: a crash never leaves half a file."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def build_network(net_config: dict | None = None) -> AMIFNet:
    """An :class:`AMIFNet` from the ``net_config`` stored beside its weights."""
    cfg = dict(net_config or {})
    mark = MarkSpec(**cfg.pop("mark")) if "mark" in cfg else None
    return AMIFNet(channels=tuple(cfg.get("channels", (24, 48))), key_bits=cfg.get("key_bits", 256), mark=mark,
                   key_hidden=cfg.get("key_hidden", 128), key_path=cfg.get("key_path", "parity"))


def net_config(net: AMIFNet) -> dict:
    c1 = net.blocks[0].channels
    c2 = net.blocks[2].channels
    return {"channels": [c1, c2], "key_bits": net.key_bits, "key_hidden": net.key_path.to_scale.in_features,
            "key_path": net.key_path_name, "mark": net.mark_spec.to_dict()}


def degrade_sigma(state: dict) -> float:
    """The blur σ under the mark, from a model file's training config (3.0, the default, when it does not say)."""
    return float((state.get("train_config") or {}).get("degrade_sigma", 3.0))


def save_model(net: AMIFNet, path: str | os.PathLike, **info: object) -> None:
    """Write ``{"model": state_dict, "net_config": ..., **info}`` (MONAI's CheckpointLoader reads the ``model`` entry).

    ``info`` is public metadata (the key's fingerprint, the training config); never pass a secret.
    """
    atomic_save({"model": net.state_dict(), "net_config": net_config(net), **info}, path)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu", key: Key | None = None) -> AMIFNet:
    """Rebuild the network from a file written by :func:`save_model`, in eval mode.

    A sealed file (:mod:`monai_amif.sealed`) opens only with its licence ``key``; without it the result is the
    :class:`~monai_amif.sealed.MarkedPreview`.

    Raises:
        ValueError: naming the file, when it is not an AMIF model file.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise ValueError(f"{path}: model file not found") from None
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ValueError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    from .sealed import is_sealed, open_sealed  # sealed builds on this module

    if is_sealed(state):
        return open_sealed(state, key or Key.none(), map_location)
    if not isinstance(state, dict) or "model" not in state or "net_config" not in state:
        raise ValueError(f"{path}: not an AMIF model file (no 'model'/'net_config' entries)")
    net = build_network(state["net_config"])
    net.load_state_dict(state["model"])
    net.accepted_fingerprint = state.get("key_fingerprint")  # public id of the key it was trained for
    net.degrade_sigma = degrade_sigma(state)
    return net.eval()


def key_fingerprint(path: str | os.PathLike) -> str | None:
    """The public fingerprint of the licence key a model file was trained for (None when it does not say)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    return state.get("key_fingerprint") if isinstance(state, dict) else None
