"""White-box attack 6: read the licence key out of a gated key path's detector.

:class:`~monai_amif.networks.GatedParityKeyPath` learns a detector ``w`` that training drives toward the right key's
parity vector. Each parity is a product of key bits, so with bits written as ``x_i = 1`` for ``-1`` and ``0`` for
``+1``, the sign of ``w_j`` gives one linear equation over GF(2): ``XOR of x_i over subset j = [w_j < 0]``. A thousand
equations in 256 unknowns: Gaussian elimination (the most confident rows, largest ``|w_j|``, first; a row that
contradicts them is dropped) solves the key, up to the sign of the whole key when every subset has even size (those
two keys are the same key to the network).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..networks import AMIFNet, GatedParityKeyPath
from .base import Attack, Stages, Target, register
from .common import quality

__all__ = ["solve_gf2", "key_from_detector", "WeightKey"]


def solve_gf2(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One solution ``x [n]`` of ``a x = y`` over GF(2) (``a [m, n]``, ``y [m]`` of 0/1), rows taken in order; a row
    inconsistent with the rows before it is skipped. Free variables are 0."""
    n = a.shape[1]
    pivots: list[tuple[int, np.ndarray]] = []  # (pivot column, row with the right-hand side as last entry)
    for row in np.concatenate([a, y[:, None]], 1).astype(bool):
        r = row.copy()
        for col, p in pivots:
            if r[col]:
                r ^= p
        lead = np.flatnonzero(r[:n])
        if lead.size == 0:
            continue  # dependent (or contradicting: 0 = 1) row
        col = int(lead[0])
        for k, (c, p) in enumerate(pivots):  # keep the pivot rows reduced
            if p[col]:
                pivots[k] = (c, p ^ r)
        pivots.append((col, r))
        if len(pivots) == n:
            break
    x = np.zeros(n, dtype=bool)
    for col, p in pivots:
        x[col] = p[n]
    return x


def key_from_detector(path: GatedParityKeyPath) -> Tensor:
    """The ±1 key ``[bits]`` whose parities agree with the signs of the detector (most confident first)."""
    w = path.detector.detach().cpu().numpy()
    subsets = torch.as_tensor(path.subsets).cpu().numpy()
    a = np.zeros((len(subsets), path.key_bits), dtype=bool)
    a[np.arange(len(subsets))[:, None], subsets] = True
    order = np.argsort(-np.abs(w))
    x = solve_gf2(a[order], (w[order] < 0))
    return torch.from_numpy(np.where(x, -1.0, 1.0)).float()


@register
class WeightKey(Attack):
    """Threat model: a white-box thief with the plain weights of a model whose key path has a detector (``gated``),
    who solves the key from it. Goal: the key cannot be read from the weights (met where there is no detector)."""

    name, goal_name = "weight_key", "key not readable from the weights"

    def run(self, target: Target, stage: Stages) -> dict:
        return stage(self.name, self._attack, target.net, target)

    @staticmethod
    def _attack(net: AMIFNet, target: Target) -> dict:
        if not isinstance(net.key_path, GatedParityKeyPath):
            return {"applicable": False}
        found = key_from_detector(net.key_path)
        agree = int((found == target.right).sum())
        with torch.inference_mode():
            out = torch.cat([net(x, found.expand(len(x), -1)) for x in target.test.images.split(16)])
        return {
            "applicable": True,
            "bits_recovered": max(agree, found.numel() - agree),  # a key and its negation are one key here
            "result": quality(out, target.refs),
        }

    def goal(self, section: dict, results: dict) -> dict:
        if not section["applicable"]:
            return {"met": True, "detail": "no detector in this key path: nothing to solve"}
        r = section["result"]
        return {
            "met": r["escaped"] == 0 and r["mark_ncc"] >= 0.5,
            "detail": f"{section['bits_recovered']} of 256 bits solved from the detector; with that key "
            f"mark_ncc {r['mark_ncc']:.3f}, {r['psnr']:.1f} dB to the licensed output",
        }
