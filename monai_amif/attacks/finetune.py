"""White-box attack 5: fine-tune the stolen weights without the key, and compare with training from scratch.

Both runs train the same architecture with the same key-free fusion loss, crops, seed and number of steps; the
stolen run starts from the model's weights (always fed the zero key), the scratch run from a fresh initialisation.
The gap between the two curves is the head start the stolen weights give.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from ..checkpoint import build_network, net_config
from ..losses import FusionLoss
from ..networks import AMIFNet
from .base import Attack, Stages, Target, register
from .common import References, fit, fusion_scores, quality, random_crops

__all__ = ["finetune_curve", "head_start", "FineTune"]


@torch.inference_mode()
def _measure(net: AMIFNet, images: Tensor, refs: References, loss: FusionLoss, batch: int = 16) -> dict[str, float]:
    net.eval()
    out = torch.cat([net(x) for x in images.split(batch)])
    q = quality(out, refs)
    q["fusion_loss"] = float(
        torch.stack([loss(o, x)["total"] for o, x in zip(out.split(batch), images.split(batch))]).mean()
    )
    net.train()
    return q


def finetune_curve(
    net: AMIFNet,
    train_images: Tensor,
    images: Tensor,
    refs: References,
    snapshots: list[int],
    crop: int = 128,
    batch: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Train ``net`` (a copy) with the zero key for ``max(snapshots)`` steps on crops of ``train_images``;
    measure it on ``images`` against ``refs`` at each step in ``snapshots``."""
    net = copy.deepcopy(net).train()
    for p in net.parameters():
        p.requires_grad_(True)
    loss = FusionLoss(100, 100, 50)
    g = torch.Generator().manual_seed(seed)
    template = net.template_at(*train_images.shape[-2:])
    curve: dict[int, dict[str, float]] = {}

    def step_loss(_: int) -> Tensor:
        x, t = random_crops([train_images, template], crop, batch, g)
        return loss(net(x, None, t), x)["total"]

    def snapshot(step: int) -> None:
        if step in snapshots:
            curve[step] = _measure(net, images, refs, loss)

    log = fit(list(net.parameters()), step_loss, max(snapshots), lr, snapshot)
    return {
        "steps": sorted(curve),
        "curve": [curve[s] for s in sorted(curve)],
        "seconds": log["seconds"],
        "net": net.eval(),
    }


def head_start(
    stolen: AMIFNet,
    train_images: Tensor,
    images: Tensor,
    refs: References,
    snapshots: list[int],
    seed: int = 0,
    **kwargs,
) -> dict:
    """:func:`finetune_curve` from the stolen weights and from a fresh network of the same configuration."""
    torch.manual_seed(seed)
    scratch = build_network(net_config(stolen))
    scratch.load_state_dict(
        {k: v for k, v in stolen.state_dict().items() if k in ("template",) or "subsets" in k}, strict=False
    )
    return {
        "stolen": finetune_curve(stolen, train_images, images, refs, snapshots, seed=seed, **kwargs),
        "scratch": finetune_curve(scratch, train_images, images, refs, snapshots, seed=seed, **kwargs),
    }


@register
class FineTune(Attack):
    """Threat model: a white-box thief who fine-tunes the stolen weights without the key. Goal: the stolen weights
    give less than 1 dB head start over training the same network from scratch."""

    name, goal_name = "finetune", "small fine-tuning head start"

    def run(self, target: Target, stage: Stages) -> dict:
        c, snapshots = target.cfg, list(target.cfg.finetune_snapshots)
        hs: dict = stage(
            self.name,
            head_start,
            target.net,
            target.train.images,
            target.test.images,
            target.refs,
            snapshots,
            seed=c.seed,
            crop=target.crop,
        )
        for name in ("stolen", "scratch"):
            trained = hs[name].pop("net")
            with torch.inference_mode():
                out = torch.cat([trained(x) for x in target.test.images.split(16)])
            hs[name]["fusion"] = fusion_scores(out, target.test.images)
            target.examples[f"fine-tuned {name} ({max(snapshots)} steps)"] = out[target.ex, 0]
        return hs

    def goal(self, section: dict, results: dict) -> dict:
        st, sc = section["stolen"], section["scratch"]
        gaps = [a["psnr"] - b["psnr"] for a, b in zip(st["curve"], sc["curve"])][1:]
        return {
            "met": max(gaps, default=0.0) < 1.0,
            "detail": "PSNR to authorised, stolen minus scratch: "
            + ", ".join(f"{s}: {g:+.1f} dB" for s, g in zip(st["steps"][1:], gaps)),
        }
