"""Black-box attack 3: distil a student fusion network from (inputs, unauthorised outputs) pairs.

The student (a MONAI ``BasicUNet`` on the two sources, no template and no key) imitates what the thief can collect;
it shows whether unauthorised outputs teach a usable fusion.
"""

from __future__ import annotations

import torch
from monai.networks.nets import BasicUNet
from torch import Tensor, nn

from .common import fit, random_crops

__all__ = ["Student", "distil", "run_student"]


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
