"""SSIM forward+backward, ``guard_core.ops.ssim`` against kornia's, as the protection loss calls it every step.

    python benchmarks/ssim_speed.py [--repeats 15]

Both give the same numbers (tests/guard_core/test_ops.py); the table is the median time per call and the ratio to
kornia's, measured in this process on the shapes photo_guard optimises (one 250×250 face, a set of five, a 320×240
working copy).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import kornia
import torch
from torch import Tensor

from guard_core import ops

Ssim = Callable[[Tensor, Tensor], Tensor]


def _seconds(fn: Ssim, x: Tensor, y: Tensor, repeats: int) -> float:
    times = []
    for i in range(repeats + 1):  # the first call warms up
        start = time.perf_counter()
        d = torch.zeros_like(x, requires_grad=True)
        torch.autograd.grad((1 - fn(x + d, y).flatten(1).mean(1)).sum(), d)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    impls: dict[str, Ssim] = {
        "kornia.metrics.ssim": lambda a, b: kornia.metrics.ssim(a, b, 11, max_val=1.0, padding="valid"),
        "guard_core.ops.ssim_map": lambda a, b: ops.ssim_map(a, b, 1.0),
    }
    print("| shape | implementation | ms (median) | x kornia |\n|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for shape in [(1, 3, 250, 250), (5, 3, 250, 250), (1, 3, 320, 240)]:
        x = torch.rand(shape, generator=g)
        y = (x + 0.03 * torch.randn(shape, generator=g)).clamp(0, 1)
        base = _seconds(impls["kornia.metrics.ssim"], x, y, args.repeats)
        for name, fn in impls.items():
            s = base if name.startswith("kornia") else _seconds(fn, x, y, args.repeats)
            print(f"| {list(shape)} | {name} | {s * 1000:.1f} | {s / base:.2f} |")


if __name__ == "__main__":
    main()
