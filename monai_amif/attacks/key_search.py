"""White-box attack 4: with the weights in hand, search for a key (or for the key path's output) by gradient.

The thief has no authorised outputs, so the objective is the key-free fusion loss the model was trained with
(:class:`monai_amif.losses.FusionLoss`) on training crops: a clean fusion scores far better than the marked one.

* :func:`search_key`: Adam on a continuous key input, raw or squashed by ``tanh``, several restarts at once;
* :func:`search_modulation`: Adam on the key path's output, the per-channel scale and shift of every block.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from guard_core.keys import random_keys
from guard_core.pgd import optimise_vector

from ..losses import FusionLoss
from ..networks import AMIFNet
from .base import Attack, Stages, Target, register
from .common import MARK_VISIBLE, References, quality

__all__ = ["search_key", "search_modulation", "bits_recovered", "apply_modulation", "KeySearch"]


def bits_recovered(found: Tensor, right: Tensor, sign_symmetric: bool = False) -> int:
    """Key bits the signs of ``found [bits]`` get right. With ``sign_symmetric`` (a parity key path whose subsets
    have even size, where a key and its negation are the same key) the better of the two counts."""
    agree = int((torch.sign(found) == right).sum())
    return max(agree, right.numel() - agree) if sign_symmetric else agree


def _sign_symmetric(net: AMIFNet) -> bool:
    subsets = getattr(net.key_path, "subsets", None)
    return subsets is not None and subsets.shape[1] % 2 == 0


def _objective(net: AMIFNet, crops: Tensor, templates: Tensor, loss: FusionLoss):
    def fn(keys: Tensor) -> Tensor:  # keys [R, bits] -> per-restart losses [R]
        r, b = keys.shape[0], crops.shape[0]
        out = net(crops.repeat(r, 1, 1, 1), keys.repeat_interleave(b, 0), templates.repeat(r, 1, 1, 1))
        return torch.stack([loss(o, crops)["total"] for o in out.split(b)])

    return fn


class _KeepBest:
    """Wraps a per-restart loss ``[R]``: remembers each restart's lowest loss and the value that gave it (a thief
    keeps the best iterate, not the last: unbounded searches can wander off after finding a good point)."""

    def __init__(self, fn: Callable[[Tensor], Tensor], restarts: int) -> None:
        self.fn, self.loss = fn, torch.full((restarts,), float("inf"))
        self.value: Tensor = torch.empty(0)

    def __call__(self, v: Tensor) -> Tensor:
        losses = self.fn(v)
        with torch.no_grad():
            if self.value.numel() == 0:
                self.value = v.detach().clone()
            better = losses.detach() < self.loss
            self.value[better] = v.detach()[better]
            self.loss = torch.where(better, losses.detach(), self.loss)
        return losses


@torch.inference_mode()
def _evaluate(net: AMIFNet, images: Tensor, refs: References, key: Tensor, batch: int = 16) -> dict[str, float]:
    out = torch.cat([net(x, key.expand(len(x), -1)) for x in images.split(batch)])
    return quality(out, refs)


def search_key(
    net: AMIFNet,
    crops: Tensor,
    templates: Tensor,
    images: Tensor,
    refs: References,
    right: Tensor,
    bound: Literal["none", "tanh"] = "tanh",
    restarts: int = 3,
    steps: int = 1000,
    lr: float = 0.05,
    seed: int = 0,
) -> dict:
    """Search ``restarts`` keys at once from random ±1 starts (scaled by 0.5 under ``tanh``).

    ``crops``/``templates`` ``[B, 2, h, w]`` are the training crops the loss sees; the result is measured on
    ``images`` (the test pairs) against ``refs``, for the continuous key found and for its signs. Each restart keeps
    its lowest-loss iterate; returns the best restart and every restart's numbers.
    """
    for p in net.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    start = random_keys(restarts, right.numel(), g)
    t0 = time.perf_counter()
    keeper = _KeepBest(_objective(net, crops, templates, FusionLoss(100, 100, 50)), restarts)
    res = optimise_vector(keeper, start * (0.5 if bound == "tanh" else 1.0), steps=steps, lr=lr, bound=bound)
    seconds = time.perf_counter() - t0
    runs: list[dict[str, Any]] = []
    for r in range(restarts):
        v = keeper.value[r]
        runs.append(
            {
                "loss": float(keeper.loss[r]),
                "bits_recovered": bits_recovered(v, right, _sign_symmetric(net)),
                "continuous": _evaluate(net, images, refs, v[None]),
                "signs": _evaluate(net, images, refs, torch.sign(v)[None]),
            }
        )
    best = min(runs, key=lambda x: x["loss"])
    best_value = keeper.value[runs.index(best)]
    return {
        "bound": bound,
        "restarts": restarts,
        "steps": steps,
        "lr": lr,
        "seconds": seconds,
        "value": best_value,
        "loss_curve": res.losses[:: max(1, steps // 100)],
        "best": best,
        "runs": runs,
    }


def apply_modulation(
    net: AMIFNet, images: Tensor, scale: Tensor, shift: Tensor, template: Tensor | None = None
) -> Tensor:
    """``net`` on ``images [N, 2, H, W]`` with the given modulation ``scale``/``shift`` ``[1, C]`` instead of a
    key's."""
    h, w = images.shape[-2:]
    n = len(images)
    return net.modulated(net.fold(images, template), scale.expand(n, -1), shift.expand(n, -1))[:, :, :h, :w]


def search_modulation(
    net: AMIFNet,
    crops: Tensor,
    templates: Tensor,
    images: Tensor,
    refs: References,
    right: Tensor,
    steps: int = 1000,
    lr: float = 0.01,
) -> dict:
    """Adam on the scale and shift of every block, started from the no-key values the thief can read off.
    ``right`` is used only to report how far the search moved toward the right key's values."""
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        scale0, shift0 = net.modulation(torch.zeros(1, net.key_bits))
    loss = FusionLoss(100, 100, 50)
    c = scale0.shape[1]

    def fn(v: Tensor) -> Tensor:
        return loss(apply_modulation(net, crops, v[:, :c], v[:, c:], templates), crops)["total"][None]

    t0 = time.perf_counter()
    keeper = _KeepBest(fn, 1)
    res = optimise_vector(keeper, torch.cat([scale0, shift0], 1), steps=steps, lr=lr)
    seconds = time.perf_counter() - t0
    v = keeper.value
    with torch.inference_mode():
        out = torch.cat([apply_modulation(net, x, v[:, :c], v[:, c:]) for x in images.split(16)])
        target = torch.cat(net.modulation(right[None]), 1)
    start = torch.cat([scale0, shift0], 1)
    # How far the search moved toward the right key's values (1 = all the way, 0 = not at all).
    toward = float(((v - start) * (target - start)).sum() / (target - start).pow(2).sum())
    return {
        "values": 2 * c,
        "value": v,
        "steps": steps,
        "lr": lr,
        "seconds": seconds,
        "loss": float(keeper.loss[0]),
        "toward_right": toward,
        "loss_curve": res.losses[:: max(1, steps // 100)],
        "result": quality(out, refs),
    }


@register
class KeySearch(Attack):
    """Threat model: a white-box thief with the weights but no authorised output, who searches by gradient for a key
    (raw or ``tanh``-bounded) or directly for the key path's output. Goal: every search still shows the mark."""

    name, goal_name, stages = "key_search", "key search fails", 3

    def run(self, target: Target, stage: Stages) -> dict:
        c, net, ex = target.cfg, target.net, target.ex
        crops, templates = target.training_crops()
        common = (net, crops, templates, target.test.images, target.refs, target.right)
        out = {}
        for bound, label in (("none", "raw"), ("tanh", "tanh")):
            r = stage(f"key_search_{bound}", search_key, *common, bound, c.restarts, c.search_steps, seed=c.seed)
            with torch.inference_mode():
                found = net(target.test.images[ex : ex + 1], r.pop("value")[None])
            target.examples[f"key search ({label})"] = found[0, 0]
            out[label] = r
        m = stage("modulation_search", search_modulation, *common, c.search_steps, c.modulation_lr)
        v = m.pop("value")
        half = v.shape[1] // 2
        with torch.inference_mode():
            target.examples["modulation search"] = apply_modulation(
                net, target.test.images[ex : ex + 1], v[:, :half], v[:, half:]
            )[0, 0]
        out["modulation"] = m
        return out

    def goal(self, section: dict, results: dict) -> dict:
        # The thief's best: the restart and view (continuous key or its signs) that shows the least mark.
        ncc = {
            f"{name} key": min(r[v]["mark_ncc"] for r in section[name]["runs"] for v in ("continuous", "signs"))
            for name in ("raw", "tanh")
        }
        ncc["modulation"] = section["modulation"]["result"]["mark_ncc"]
        return {
            "met": all(v >= MARK_VISIBLE for v in ncc.values()),
            "detail": "; ".join(f"{k}: mark_ncc {v:.3f}" for k, v in ncc.items()),
        }
