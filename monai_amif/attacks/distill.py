"""Black-box attack 3: distil a student fusion network from (inputs, unauthorised outputs) pairs.

The student (a MONAI ``BasicUNet`` on the two sources, no template and no key) imitates what the thief can collect;
it shows whether unauthorised outputs teach a usable fusion.
"""

from __future__ import annotations

import torch
from monai.networks.nets import BasicUNet
from torch import Tensor, nn

from .base import Attack, Stages, Target, register
from .common import fit, fusion_scores, quality, random_crops

__all__ = ["Student", "distil", "run_student", "Distillation"]


class Student(nn.Module):
    """``image [N, 2, H, W] -> fused [N, 1, H, W]`` in [0, 1] (H, W multiples of 16)."""

    def __init__(self, features: tuple[int, ...] = (16, 16, 32, 64, 64, 16)) -> None:
        super().__init__()
        self.unet = BasicUNet(spatial_dims=2, in_channels=2, out_channels=1, features=features)

    def forward(self, image: Tensor) -> Tensor:
        return torch.sigmoid(self.unet(image))


def distil(
    images: Tensor, targets: Tensor, steps: int = 600, crop: int = 128, batch: int = 8, seed: int = 0
) -> tuple[Student, dict]:
    """Train a :class:`Student` to map ``images [N, 2, H, W]`` to the collected outputs ``targets [N, 1, H, W]``
    (L1)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    student = Student()

    def loss(_: int) -> Tensor:
        x, y = random_crops([images, targets], crop, batch, g)
        return (student(x) - y).abs().mean()

    log = fit(list(student.parameters()), loss, steps, lr=2e-3)
    return student.eval(), log


@torch.inference_mode()
def run_student(student: Student, images: Tensor, batch: int = 8) -> Tensor:
    return torch.cat([student(x) for x in images.split(batch)])


@register
class Distillation(Attack):
    """Threat model: a black-box thief who collects unauthorised outputs of many inputs and trains a student on them.
    Goal: the student fuses clearly worse (VIF and Qabf at most 80 % of the licensed output's) and keeps the mark."""

    name, goal_name = "distillation", "student fuses clearly worse"

    def run(self, target: Target, stage: Stages) -> dict:
        c, images = target.cfg, target.train.images
        with torch.inference_mode():  # what the thief collects: unlicensed outputs of the training inputs
            unauth = torch.cat([target.net(x) for x in images.split(16)])
        student, dlog = stage(self.name, distil, images, unauth, c.distill_steps, target.crop, seed=c.seed)
        out = run_student(student, target.test.images)
        target.examples["distilled student"] = out[target.ex, 0]
        return {
            "steps": c.distill_steps,
            **dlog,
            "result": quality(out, target.refs),
            "fusion": fusion_scores(out, target.test.images),
        }

    def goal(self, section: dict, results: dict) -> dict:
        auth, st = results["reference"]["authorised_fusion"], section["fusion"]
        worse = [c for c in ("VIF", "Qabf") if st[c] <= 0.8 * auth[c]]
        return {
            "met": len(worse) == 2 and section["result"]["escaped"] == 0,
            "detail": ", ".join(f"{c} {st[c]:.3f} vs {auth[c]:.3f}" for c in ("VIF", "Qabf"))
            + f"; mark_ncc {section['result']['mark_ncc']:.3f}",
        }
