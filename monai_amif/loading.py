"""Opening AMIF model files, plain or sealed, into a ready network (see :mod:`monai_amif.checkpoint`)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from guard_core.keys import Key

from .checkpoint import build_network, degrade_sigma, read_model_file
from .errors import ModelFileError
from .networks import AMIFNet
from .sealed import MarkedPreview, is_sealed, open_sealed

__all__ = ["load_model", "load_plain_model", "key_fingerprint"]


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", key: Key | None = None
) -> AMIFNet | MarkedPreview:
    """Rebuild the network from a model file, in eval mode, without unpickling any code.

    A sealed file (:mod:`monai_amif.sealed`) opens only with its licence ``key``; without it the result is the
    :class:`~monai_amif.sealed.MarkedPreview`.

    Raises:
        ModelFileError: naming the file, when it is missing, unsafe, not an AMIF model or not for this network.
    """
    path = Path(path)
    state, meta = read_model_file(path, map_location)
    if is_sealed(state):
        return open_sealed(state, key or Key.none(), map_location, path)
    try:
        net = build_network(meta["net_config"])
        net.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: the weights do not fit the network it describes ({first[:160]})") from None
    net.accepted_fingerprint = meta.get("key_fingerprint")  # public id of the key it was trained for
    net.degrade_sigma = degrade_sigma(meta)
    return net.to(map_location).eval()


def load_plain_model(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> AMIFNet:
    """:func:`load_model` for tools that need the network itself (attacks, benchmarks): a sealed file is refused."""
    net = load_model(path, map_location)
    if not isinstance(net, AMIFNet):
        raise ModelFileError(f"{path}: a sealed model; this needs the plain weights it was sealed from")
    return net


def key_fingerprint(path: str | os.PathLike) -> str | None:
    """The public fingerprint of the licence key a model file was trained for (None when it does not say)."""
    return read_model_file(path)[1].get("key_fingerprint")
