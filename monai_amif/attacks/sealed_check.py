"""The sealed model mode (:mod:`monai_amif.sealed`) under the same thief: what a copy of the sealed file gives away.

Without the key there are no learned weights to search a key with or to fine-tune, so the white-box attacks have
nothing to start from; what is left to measure is that no other key opens it, that the right key gives exactly the
plain model's output, what opening costs, and the black-box cleaners on the preview it shows instead.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from guard_core.keys import Key

from ..loading import load_model
from ..sealed import MarkedPreview, seal_model
from .common import PairSet, References, quality

__all__ = ["sealed_attack"]


@torch.inference_mode()
def _run(net: torch.nn.Module, images: Tensor, key: Tensor | None = None, batch: int = 16) -> Tensor:
    return torch.cat([net(x, None if key is None else key.expand(len(x), -1)) for x in images.split(batch)])


def sealed_attack(
    weights: str,
    key: Key,
    pairs: PairSet,
    refs: References,
    cleaners: dict[str, Callable[[Tensor], Tensor]],
    wrong_keys: int = 1000,
    repeats: int = 5,
) -> tuple[dict, Tensor]:
    """Seal ``weights`` under ``key`` in a temp folder and attack the sealed file; returns the numbers and the
    preview outputs ``[N, 1, H, W]``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = seal_model(weights, key, Path(tmp) / "model.sealed.pt")
        size = path.stat().st_size
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            opened = load_model(path, key=key)
            times.append(time.perf_counter() - t0)
        licensed = _run(opened, pairs.images, key.tensor()[None])
        same = float((licensed - refs.authorised).abs().max())  # refs.authorised: the plain model's licensed output
        preview_net = load_model(path)
        t0 = time.perf_counter()
        opened_by_wrong = sum(
            not isinstance(load_model(path, key=Key.generate()), MarkedPreview) for _ in range(wrong_keys)
        )
        wrong_seconds = time.perf_counter() - t0
    preview = _run(preview_net, pairs.images)
    res = {
        "file_bytes": size,
        "open_seconds_median": float(np.median(times)),
        "right_key_max_abs_diff_to_plain": same,
        "wrong_keys_tried": wrong_keys,
        "wrong_keys_opened": int(opened_by_wrong),
        "wrong_key_seconds_each": wrong_seconds / max(1, wrong_keys),
        "learned_parameters_without_key": sum(p.numel() for p in preview_net.parameters()),
        "no_key": quality(preview, refs),
        "right_key": quality(licensed, refs),
        "cleaners": {name: quality(clean(preview), refs) for name, clean in cleaners.items()},
    }
    res["summary"] = (
        f"`amif seal` wrote a {size / 1e6:.2f} MB file; opening it with the right key takes "
        f"{1000 * res['open_seconds_median']:.0f} ms and gives the plain model's output exactly (max difference "
        f"{same:g}). {wrong_keys} random keys opened it {opened_by_wrong} times. Without the key the file holds "
        f"{res['learned_parameters_without_key']} readable learned parameters: the white-box key search and the "
        "fine-tuning head start have nothing to start from (the thief's best is the from-scratch curve above). "
        "The no-key output is the rule-based preview (mark over a blurred mean of the sources), not a learned one."
    )
    return res, preview
