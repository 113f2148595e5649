"""Encoder forward+backward, as a protection step calls it, with and without the inference folding of each encoder.

    python benchmarks/encoder_speed.py [--repeats 21] [--threads N]

``--threads 1`` times each encoder as one photo's protection runs it: on one core, beside the other's branch.

Each default encoder is built twice: as shipped (``fused``: BatchNorm folded into the convolution before it;
EfficientNet-Lite0 also channels-last) and as converted (``fused=False``). The table is the median time of
``embed`` + the gradient to the photo, on one 250×250 photo and on a set of five, the two builds interleaved in this
process so that the machine's drift falls on both; the last column is the largest difference between the two builds'
embeddings, relative to the largest embedding value.

A second table times SFace's folded chain with aten's PReLU (whose backward also reduces the slopes' gradient) against
``prelu_fixed_slope`` (the input's gradient only), interleaved likewise; the last column is the largest difference
between the two gradients to the photo (0: the same to the bit).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from photo_guard.encoders.base import Encoder
from photo_guard.encoders.efficientnet import EfficientNetLite0Encoder
from photo_guard.encoders.sface import SFaceEncoder
from photo_guard.encoders.sface_net import SFaceNet


def _step(encoder: Encoder, photos: torch.Tensor) -> float:
    return _timed_gradient(encoder, photos)[0]


def _timed_gradient(encoder: Encoder, photos: torch.Tensor) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    d = torch.zeros_like(photos, requires_grad=True)
    (grad,) = torch.autograd.grad(encoder.embed(photos + d).square().sum(), d)
    return time.perf_counter() - start, grad


def _activation_rows(repeats: int, g: torch.Generator) -> None:
    print("\n| SFace, forward+backward | photos | aten PReLU (ms) | prelu_fixed_slope (ms) | ratio | max grad. diff |")
    print("|---|---|---|---|---|---|")
    sface = SFaceEncoder()
    (chain,) = [m for m in sface.modules() if isinstance(m, SFaceNet)]
    ways = {"aten": torch.nn.functional.prelu, "fixed": chain.activation}
    for batch in (1, 5):
        photos = torch.rand(batch, 3, 250, 250, generator=g)
        times: dict[str, list[float]] = {k: [] for k in ways}
        grads = {}
        for i in range(repeats + 1):
            for name, activation in ways.items():
                chain.activation = activation
                t, grads[name] = _timed_gradient(sface, photos)
                if i:
                    times[name].append(t)
        diff = (grads["aten"] - grads["fixed"]).abs().max().item()
        base, ours = (statistics.median(times[k]) for k in ways)
        print(f"| sface | {batch} | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} | {diff:.1e} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}\n")
    print("| encoder | photos | as converted (ms) | fused (ms) | x converted | max rel. difference |")
    print("|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for cls in (SFaceEncoder, EfficientNetLite0Encoder):
        builds = {"converted": cls(fused=False), "fused": cls()}
        for batch in (1, 5):
            photos = torch.rand(batch, 3, 250, 250, generator=g)
            times: dict[str, list[float]] = {k: [] for k in builds}
            for i in range(args.repeats + 1):  # the first round warms up
                for name, encoder in builds.items():
                    t = _step(encoder, photos)
                    if i:
                        times[name].append(t)
            with torch.no_grad():
                a, b = (e.embed(photos) for e in builds.values())
            diff = ((a - b).abs().max() / a.abs().max()).item()
            base, fused = (statistics.median(times[k]) for k in builds)
            ms = f"{base * 1000:.1f} | {fused * 1000:.1f}"
            print(f"| {cls.name} | {batch} | {ms} | {fused / base:.2f} | {diff:.1e} |")
    _activation_rows(args.repeats, g)


if __name__ == "__main__":
    main()
