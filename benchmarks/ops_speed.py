"""The image ops a protection calls most, ``guard_core`` against the kornia calls they replaced, timed in one process.

    python benchmarks/ops_speed.py [--repeats 15]

- SSIM as the protection loss calls it every step (forward+backward): ``ops.ssim_map`` against
  ``kornia.metrics.ssim`` (the same numbers: tests/guard_core/test_ops.py), on one 250×250 face, a set of five and a
  320×240 working copy.
- Resize: ``ops.resize`` (torch's antialiased bilinear) against kornia's (Gaussian pre-blur, then bilinear), bringing
  a 12-MP photo to the 320-px working size (forward) and halving a face (the EOT transform, forward+backward); then
  torch's antialiased kernel against plain bilinear growing a face to 256 px (which ``ops.resize`` uses there); the
  last row is the mean distance to PIL's ``BILINEAR`` on scikit-image's astronaut brought to 128 px, in levels.
- SSIM against a fixed reference (the protection's quality term): ``ops.ssim`` against ``ops.ssim_to`` (the clean
  photo's moments filtered once), forward+backward, one 250×250 face.
- JPEG: kornia's differentiable codec against ``ops.jpeg`` (libjpeg's steps, :mod:`guard_core.jpeg_codec`),
  forward+backward on one face and a set of five; then, on scikit-image's astronaut with a seeded 8/255 perturbation
  (3×3-smoothed, as a protection's is), each codec's mean distance to Pillow's decoded JPEG (levels of 255) and the
  cosine between the perturbation each lets through (codec(photo + δ) − codec(photo)) and the one Pillow lets through.
- The full-resolution SSIM check (``quality.ssim`` over 16 tiles of 512×512, forward): one image at a time against
  the whole batch at once.

Each table row is the median time per call and the ratio to the kornia (or batched) call.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from guard_core import ops, quality


def _seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for i in range(repeats + 1):  # the first call warms up
        start = time.perf_counter()
        fn()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _with_grad(loss: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], object]:
    def run() -> object:
        d = torch.zeros_like(x, requires_grad=True)
        return torch.autograd.grad(loss(x + d).sum(), d)

    return run


def _ssim_rows(g: torch.Generator, repeats: int) -> None:
    print("| SSIM loss, forward+backward | kornia.metrics.ssim (ms) | ops.ssim_map (ms) | ratio |\n|---|---|---|---|")
    for shape in [(1, 3, 250, 250), (5, 3, 250, 250), (1, 3, 320, 240)]:
        x = torch.rand(shape, generator=g)
        y = (x + 0.03 * torch.randn(shape, generator=g)).clamp(0, 1)
        base = _seconds(_with_grad(functools.partial(_kornia_ssim, y=y), x), repeats)
        ours = _seconds(_with_grad(functools.partial(ops.ssim_map, y=y, data_range=1.0), x), repeats)
        print(f"| {list(shape)} | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} |")


def _kornia_ssim(x: Tensor, y: Tensor) -> Tensor:
    return kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid")


def _kornia_resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    return kornia.geometry.transform.resize(image, size, interpolation="bilinear", antialias=True)


def _bilinear(image: Tensor, size: tuple[int, int], antialias: bool) -> Tensor:
    return F.interpolate(image, size, mode="bilinear", antialias=antialias)


def _resize_rows(g: torch.Generator, repeats: int) -> None:
    import skimage.data
    from PIL import Image

    print("\n| resize | kornia (ms) | ops.resize (ms) | ratio |\n|---|---|---|---|")
    big, face = torch.rand(1, 3, 3000, 4000, generator=g), torch.rand(1, 3, 250, 250, generator=g)
    cases: list[tuple[str, Callable[..., Callable[[], object]]]] = [
        ("12 MP -> 240×320, forward", lambda fn: lambda: fn(big, (240, 320))),
        ("250 -> 125 px, forward+backward", lambda fn: _with_grad(lambda a: fn(a, (125, 125)), face)),
    ]
    for label, case in cases:
        base = _seconds(case(_kornia_resize), min(repeats, 5))
        ours = _seconds(case(ops.resize), min(repeats, 5))
        print(f"| {label} | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} |")
    # Growing (EfficientNet's 250 -> 256 px): ops.resize leaves the antialiased kernel out, same numbers.
    grow = [
        _seconds(_with_grad(functools.partial(_bilinear, size=(256, 256), antialias=aa), face), repeats)
        for aa in (True, False)
    ]
    print(
        f"| 250 -> 256 px, forward+backward: antialiased / plain bilinear | {grow[0] * 1000:.1f} | "
        f"{grow[1] * 1000:.1f} | {grow[1] / grow[0]:.2f} |"
    )
    astro = skimage.data.astronaut()
    pil = np.asarray(Image.fromarray(astro).resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32)
    x = torch.from_numpy(astro).permute(2, 0, 1)[None].float() / 255
    dist = [
        float(np.abs(fn(x, (128, 128))[0].permute(1, 2, 0).numpy() * 255 - pil).mean())
        for fn in (_kornia_resize, ops.resize)
    ]
    print(
        f"| mean distance to PIL BILINEAR (levels of 255) | {dist[0]:.2f} | {dist[1]:.2f} | {dist[1] / dist[0]:.2f} |"
    )


def _ssim_to_rows(g: torch.Generator, repeats: int) -> None:
    y = torch.rand(1, 3, 250, 250, generator=g)
    x = (y + 0.03 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    base = _seconds(_with_grad(lambda a: ops.ssim(a, y, 1.0), x), repeats)
    against = ops.ssim_to(y, 1.0)
    ours = _seconds(_with_grad(against, x), repeats)
    print("\n| SSIM to a fixed photo, forward+backward | ops.ssim (ms) | ops.ssim_to (ms) | ratio |\n|---|---|---|---|")
    print(f"| [1, 3, 250, 250] | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} |")


def _kornia_jpeg(image: Tensor, quality: float) -> Tensor:
    h, w = image.shape[-2:]
    padded = F.pad(image, (0, (-w) % 16, 0, (-h) % 16), mode="replicate")
    q = torch.full((image.shape[0],), float(quality))
    return kornia.enhance.jpeg_codec_differentiable(padded, q)[..., :h, :w]


def _pillow_jpeg(image: Tensor, quality: int) -> Tensor:
    import io

    from PIL import Image

    buf = io.BytesIO()
    pixels = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def _jpeg_rows(g: torch.Generator, repeats: int) -> None:
    import skimage.data

    print("\n| JPEG 75, forward+backward | kornia (ms) | ops.jpeg (ms) | ratio |\n|---|---|---|---|")
    for batch in (1, 5):
        x = torch.rand(batch, 3, 250, 250, generator=g)
        base = _seconds(_with_grad(lambda a: _kornia_jpeg(a, 75), x), repeats)
        ours = _seconds(_with_grad(lambda a: ops.jpeg(a, 75), x), repeats)
        print(f"| {batch} × 250×250 | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} |")
    photo = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1)[None].float() / 255
    delta = F.avg_pool2d((torch.rand(photo.shape, generator=g) * 2 - 1) * 8 / 255, 3, 1, 1) * 3
    protected = ((photo + delta).clamp(0, 1) * 255).round() / 255
    print("\n| astronaut + δ, against Pillow | kornia | ops.jpeg |\n|---|---|---|")
    for q in (50, 75, 90):
        pil = _pillow_jpeg(protected, q)
        let_through = (pil - _pillow_jpeg(photo, q)).flatten()
        dist, cos = [], []
        for codec in (_kornia_jpeg, ops.jpeg):
            out = codec(protected, q)
            dist.append(float((out - pil).abs().mean()) * 255)
            cos.append(float(F.cosine_similarity((out - codec(photo, q)).flatten(), let_through, 0)))
        print(f"| quality {q}: mean distance (levels) | {dist[0]:.2f} | {dist[1]:.2f} |")
        print(f"| quality {q}: cosine of the δ let through | {cos[0]:.3f} | {cos[1]:.3f} |")


def _tile_rows(g: torch.Generator, repeats: int) -> None:
    x = torch.rand(16, 3, 512, 512, generator=g)
    y = (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.inference_mode():
        base = _seconds(lambda: ops.ssim(x, y, 1.0), min(repeats, 5))
        ours = _seconds(lambda: quality.ssim(x, y, 1.0), min(repeats, 5))
    print("\n| SSIM check, 16 tiles of 512×512 | whole batch (ms) | quality.ssim, one tile at a time (ms) | ratio |")
    print(f"|---|---|---|---|\n| forward | {base * 1000:.1f} | {ours * 1000:.1f} | {ours / base:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    _ssim_rows(g, args.repeats)
    _ssim_to_rows(g, args.repeats)
    _resize_rows(g, args.repeats)
    _jpeg_rows(g, args.repeats)
    _tile_rows(g, args.repeats)


if __name__ == "__main__":
    main()
