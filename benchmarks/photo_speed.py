"""photo_guard speed: seconds per photo at default strength, for a 250×250 face photo set and a 12-megapixel JPEG.

    python benchmarks/photo_speed.py [--repeats 3] [--device auto] [--steps N (default: the tool's default)]
        [--allocator retain|default]

Both offline encoders (SFace + EfficientNet-Lite0). The baseline row is one PGD step's cost on one face photo; the
ratios say how many such steps each job costs (work happens at the encoders' resolution, so a 12-MP photo costs little
more than a small one). The process keeps freed memory for reuse as the ``photo-guard`` command does
(``guard_core.memory``); ``--allocator default`` leaves glibc's allocator as it is (a host that runs the plugin in its
own process).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from guard_core.memory import retain_freed_memory
from photo_guard.batch import protect_files
from photo_guard.encoders import build_encoder
from photo_guard.protect import ProtectConfig


def sample_photos(folder: Path) -> tuple[Path, Path]:
    """The benchmark's photos, written to ``folder``: a 250×250 face (Grace Hopper) and a 12-MP JPEG (astronaut)."""
    import matplotlib.cbook
    import skimage

    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    w, _ = hopper.size
    hopper.crop((w // 2 - 170, 20, w // 2 + 170, 360)).resize((250, 250)).save(folder / "face.jpg", quality=90)
    astro = Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")
    astro.resize((4000, 3000), Image.Resampling.BICUBIC).save(folder / "big.jpg", quality=92)
    return folder / "face.jpg", folder / "big.jpg"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=ProtectConfig().steps)
    p.add_argument("--old-steps", type=int, default=40, help="Also time a face at the old default step count.")
    p.add_argument("--allocator", choices=["retain", "default"], default="retain")
    args = p.parse_args()
    if args.allocator == "retain" and not retain_freed_memory():
        args.allocator = "default (not glibc: nothing to retain)"
    for name in ("sface", "efficientnet_lite0"):
        build_encoder(name)  # load once, outside the timings
    tmp = Path(tempfile.mkdtemp())
    face, big = sample_photos(tmp)
    rows: list[tuple] = []
    default = ProtectConfig().transforms  # None below: EOT over every registered transform (the default until 34f66a2)
    jobs: list[tuple[str, list[Path], int, tuple[str, ...] | None]] = [
        ("1 PGD step, 250x250 face", [face], 1, default),
        (f"250x250 face, {args.steps} steps", [face], args.steps, default),
        (f"250x250 face, {args.steps} steps, EOT over every transform", [face], args.steps, None),
        (f"250x250 face, {args.old_steps} steps (the old default)", [face], args.old_steps, default),
        (f"5 faces as a set, {args.steps} steps", [face] * 5, args.steps, default),
        (f"12 MP JPEG, {args.steps} steps", [big], args.steps, default),
    ]
    for label, files, steps, transforms in jobs:
        cfg = ProtectConfig(steps=steps, device=args.device, transforms=transforms)
        times = []
        for r in range(args.repeats):
            out = tmp / f"out{r}_{len(rows)}"
            if len(files) > 1:  # distinct names so the set is five photos, not one
                srcs = []
                for i, f in enumerate(files):
                    dst = tmp / f"set_{i}.jpg"
                    dst.write_bytes(f.read_bytes())
                    srcs.append(dst)
            else:
                srcs = files
            t = time.perf_counter()
            report = protect_files(srcs, out, cfg)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t) / len(srcs))
            assert len(report.protected) == len(srcs), report.failed
        rows.append((label, statistics.median(times)))
    base = rows[0][1]
    device = "cuda" if (args.device in ("auto", "cuda") and torch.cuda.is_available()) else "cpu"
    print(
        f"device: {device}, {torch.get_num_threads()} CPU threads, allocator: {args.allocator}; medians of "
        f"{args.repeats} runs (full job: read, detect, optimise, write)"
    )
    print("| job | s / photo | photos / s | x one step |")
    print("|---|---|---|---|")
    for label, sec in rows:
        print(f"| {label} | {sec:.2f} | {1 / sec:.2f} | {sec / base:.1f} |")


if __name__ == "__main__":
    main()
