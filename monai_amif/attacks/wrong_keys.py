"""Black-box attack 1: try wrong keys and count the ones the model accepts.

A key is *falsely accepted* when its output shows too little of the mark (``mark_ncc < 0.5``) or fuses as well as the
authorised output (fusion PSNR, docs/design.md against both sources, within 1 dB of the authorised output's).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from guard_core.keys import random_keys

from ..metrics import mark_ncc
from ..metrics import psnr as fusion_psnr
from ..networks import AMIFNet
from .base import Attack, Stages, Target, register
from .common import PairSet, References, grey_255

__all__ = ["flip_bits", "false_accepts", "wrong_key_attack", "BIT_DISTANCES", "WrongKeys"]

BIT_DISTANCES = (1, 2, 4, 8, 16, 32, 64, 128)


def flip_bits(right: Tensor, distance: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` keys ``[n, bits]``, each ``right`` with ``distance`` distinct random bits flipped."""
    keys = right.expand(n, -1).clone()
    for i in range(n):
        flip = torch.randperm(right.numel(), generator=generator)[:distance]
        keys[i, flip] = -keys[i, flip]
    return keys


def _fusion_psnr(f: Tensor, image: Tensor) -> float:
    return fusion_psnr(grey_255(f[0]), grey_255(image[1]), grey_255(image[0]))


@torch.inference_mode()
def false_accepts(
    net: AMIFNet, image: Tensor, auth: Tensor, mask: Tensor, intensity: Tensor, keys: Tensor, batch: int = 50
) -> dict[str, np.ndarray]:
    """Run every key in ``keys [K, bits]`` on one pair ``image [2, H, W]``; per key: ``mark_ncc``, fusion PSNR and
    whether it was ``accepted`` (see the module docstring). ``auth [1, H, W]`` is the authorised output."""
    auth_psnr = _fusion_psnr(auth, image)
    ncc, fpsnr = [], []
    for k in keys.split(batch):
        out = net(image[None].expand(len(k), -1, -1, -1), k)
        ncc.append(mark_ncc(out, auth[None].expand_as(out), mask, intensity).numpy())
        fpsnr += [_fusion_psnr(o, image) for o in out]
    ncc_a, psnr_a = np.concatenate(ncc), np.asarray(fpsnr)
    return {
        "mark_ncc": ncc_a,
        "fusion_psnr": psnr_a,
        "accepted": (ncc_a < 0.5) | (psnr_a >= auth_psnr - 1.0),
        "authorised_fusion_psnr": np.asarray(auth_psnr),
    }


def _summary(res: list[dict[str, np.ndarray]]) -> dict[str, float]:
    ncc = np.concatenate([r["mark_ncc"] for r in res])
    acc = np.concatenate([r["accepted"] for r in res])
    return {
        "keys": int(len(ncc)),
        "accepted": int(acc.sum()),
        "far": float(acc.mean()),
        "mark_ncc_min": float(ncc.min()),
        "mark_ncc_mean": float(ncc.mean()),
    }


def wrong_key_attack(
    net: AMIFNet,
    pairs: PairSet,
    refs: References,
    right: Tensor,
    n_random: int = 10_000,
    per_distance: int = 50,
    pair_index: list[int] | None = None,
    seed: int = 0,
) -> dict:
    """``n_random`` random keys and ``per_distance`` keys at each of ``BIT_DISTANCES`` from ``right``, on the pairs
    ``pair_index`` (default: the first pair of each task). Random keys are split evenly over those pairs."""
    g = torch.Generator().manual_seed(seed)
    if pair_index is None:
        pair_index = [pairs.tasks.index(t) for t in dict.fromkeys(pairs.tasks)]
    rand: list[dict[str, np.ndarray]] = []
    by_distance: dict[int, list[dict[str, np.ndarray]]] = {d: [] for d in BIT_DISTANCES if d <= right.numel()}
    share = -(-n_random // len(pair_index))
    for j, i in enumerate(pair_index):
        args = (net, pairs.images[i], refs.authorised[i], refs.mask, refs.intensity)
        rand.append(false_accepts(*args, random_keys(min(share, n_random - j * share), right.numel(), g)))
        for d in by_distance:
            by_distance[d].append(false_accepts(*args, flip_bits(right, d, per_distance, g)))
    return {
        "pairs": [pairs.names[i] for i in pair_index],
        "random": _summary(rand),
        "by_distance": {str(d): _summary(r) for d, r in by_distance.items()},
    }


@register
class WrongKeys(Attack):
    """Threat model: a black-box user who tries keys (random ones, and ones a few bits from the right one, as if a
    key had leaked with errors). Goal: no key other than the right one accepted."""

    name, goal_name = "wrong_keys", "wrong keys rejected"

    def run(self, target: Target, stage: Stages) -> dict:
        c = target.cfg
        args = (target.net, target.test, target.refs, target.right, c.random_keys, c.per_distance)
        result: dict = stage(self.name, wrong_key_attack, *args, seed=c.seed)
        return result

    def goal(self, section: dict, results: dict) -> dict:
        worst = max(r["far"] for r in section["by_distance"].values())
        return {
            "met": section["random"]["accepted"] == 0 and worst == 0,
            "detail": f"random FAR {section['random']['far']:.4f} ({section['random']['keys']} keys); "
            f"worst FAR at 1-128 bits {worst:.3f}",
        }
