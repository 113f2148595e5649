"""AMIF model files: writing them atomically and reading them without ever unpickling code.

A model file is two files side by side, as MONAI model-zoo bundles expect:

* ``model.pt``: the network's plain ``state_dict`` (tensors only), which ``torch.load(weights_only=True)``,
  MONAI's ``CheckpointLoader`` and ``monai.bundle ckpt_export`` read directly;
* ``model.json``: public metadata: how to rebuild the network (``net_config``), the fingerprint of the licence key it
  accepts and the training config. Never a secret.

Every ``.pt`` the project reads goes through :func:`read_torch_file`, which allows tensors and plain containers only:
a file carrying a pickled object that would run code when loaded is refused with a one-line error.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import torch

from guard_core.atomic import atomic_output

from .errors import ModelFileError
from .mark import MarkSpec
from .networks import AMIFNet

__all__ = [
    "atomic_save",
    "read_torch_file",
    "build_network",
    "net_config",
    "degrade_sigma",
    "save_model",
    "read_model_file",
    "metadata_path",
]

FORMAT = "amif-model"


def atomic_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: a crash never leaves half a file."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def read_torch_file(path: str | os.PathLike | BinaryIO, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``).

    Raises:
        ModelFileError: naming the file: missing, damaged, or holding pickled objects that could run code.
    """
    if not hasattr(path, "read"):
        path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # garbage bytes, not a pickle naming code to run
            raise ModelFileError(f"{path}: not a readable model file (damaged or not a torch file)") from None
        raise ModelFileError(
            f"{path}: refused: it holds pickled objects other than tensors and plain containers "
            "(a model file must not run code when loaded)"
        ) from None
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ModelFileError(f"{path}: not a readable model file ({type(exc).__name__})") from None


def build_network(net_config: dict | None = None) -> AMIFNet:
    """An :class:`AMIFNet` from the ``net_config`` stored beside its weights."""
    cfg = dict(net_config or {})
    mark = MarkSpec(**cfg.pop("mark")) if "mark" in cfg else None
    return AMIFNet(
        channels=tuple(cfg.get("channels", (24, 48))),
        key_bits=cfg.get("key_bits", 256),
        mark=mark,
        key_hidden=cfg.get("key_hidden", 128),
        key_path=cfg.get("key_path", "parity"),
        output=cfg.get("output", "direct"),  # files from before the blend head have no "output"
    )


def net_config(net: AMIFNet) -> dict:
    """What :func:`build_network` needs to rebuild ``net`` (JSON-able)."""
    return {
        "channels": list(net.channels),
        "key_bits": net.key_bits,
        "key_hidden": net.key_hidden,
        "key_path": net.key_path_name,
        "output": net.output,
        "mark": net.mark_spec.to_dict(),
    }


def degrade_sigma(meta: dict) -> float:
    """The blur σ under the mark, from a model's metadata (3.0, the default, when it does not say)."""
    if "degrade_sigma" in meta:
        return float(meta["degrade_sigma"])
    return float((meta.get("train_config") or {}).get("degrade_sigma", 3.0))


def metadata_path(path: str | os.PathLike) -> Path:
    """``model.pt`` -> ``model.json``: where a model's public metadata lives."""
    return Path(path).with_suffix(".json")


def save_model(net: AMIFNet, path: str | os.PathLike, **info: object) -> None:
    """Write ``net``'s state dict to ``path`` and ``{"format", "net_config", **info}`` to :func:`metadata_path`.

    ``info`` is public metadata (the key's fingerprint, the training config); never pass a secret.
    """
    meta = {"format": FORMAT, "version": 2, "net_config": net_config(net), **info}
    text = json.dumps(meta, indent=1, sort_keys=True, default=list)
    with atomic_output(metadata_path(path)) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    atomic_save(net.state_dict(), path)


def _read_metadata(path: Path) -> dict:
    meta_file = metadata_path(path)
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(
            f"{path}: no {meta_file.name} beside it (the model's network config and key fingerprint)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{meta_file}: not readable model metadata ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("net_config"), dict):
        raise ModelFileError(f"{meta_file}: not AMIF model metadata (no format/net_config)")
    return meta


_V1_NAMES = {
    "blocks.0.": "encoder.0.first.",
    "blocks.1.": "encoder.0.second.",
    "blocks.2.": "encoder.1.first.",
    "blocks.3.": "encoder.1.second.",
    "blocks.4.": "bottom.",
    "blocks.5.": "decoder.0.block.",
    "reduce.": "decoder.0.reduce.",
}


def _v1_names(state: dict) -> dict:
    """Version-1 parameter names (a flat block list) -> the staged names of today's two-level network."""

    def rename(name: str) -> str:
        for old, new in _V1_NAMES.items():
            if name.startswith(old):
                return new + name[len(old) :]
        return name

    return {rename(k): v for k, v in state.items()}


def read_model_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Any, dict]:
    """``(state, metadata)`` of a model file, loaded safely.

    ``state`` is a plain state dict (metadata from the JSON beside it), or a sealed file's dict (its metadata is
    its own clear header). Older single-file models (``{"model", "net_config", ...}``) still load.
    """
    path = Path(path)
    state = read_torch_file(path, map_location)
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: not an AMIF model file (holds a {type(state).__name__})")
    if "format" in state:  # sealed: its metadata is its clear header
        return state, {k: v for k, v in state.items() if k != "sealed"}
    if "net_config" in state and isinstance(state.get("model"), dict):  # the single-file layout of version 1
        return {"model": _v1_names(state["model"])}, {k: v for k, v in state.items() if k != "model"}
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: not an AMIF model file (not a state dict of tensors)")
    return {"model": state}, _read_metadata(path)
