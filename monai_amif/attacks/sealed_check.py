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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from guard_core.keys import Key

from ..loading import load_model
from ..sealed import MarkedPreview, seal_model
from . import removal
from .base import Attack, Stages, Target, register
from .common import PairSet, References, quality

__all__ = ["sealed_attack", "Sealed"]


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
    res: dict[str, Any] = {
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


@register
class Sealed(Attack):
    """Threat model: the thieves above against a copy of the *sealed* file. Goal: no other key opens it, no learned
    parameter is readable without the key, and no cleaner takes the mark off its preview."""

    name, goal_name = "sealed", "sealed: no other key opens it, nothing learned without it"

    def run(self, target: Target, stage: Stages) -> dict:
        refs = target.refs
        clean = removal.cleaners(refs.mask, refs.intensity, target.sigma, target.shared.get("removal_net"))
        args = (target.cfg.weights, target.key, target.test, refs, clean, target.cfg.sealed_wrong_keys)
        result, preview = stage(self.name, sealed_attack, *args)
        target.examples["sealed, no key (preview)"] = preview[target.ex, 0]
        return result

    def goal(self, section: dict, results: dict) -> dict:
        bad = [n for n, r in section["cleaners"].items() if r["escaped"] > 0]
        return {
            "met": section["wrong_keys_opened"] == 0 and section["learned_parameters_without_key"] == 0 and not bad,
            "detail": f"{section['wrong_keys_opened']} of {section['wrong_keys_tried']} random keys opened it; "
            f"{section['learned_parameters_without_key']} learned parameters readable; cleaners on the preview: "
            + ("none escaped" if not bad else "escaped: " + ", ".join(bad)),
        }
