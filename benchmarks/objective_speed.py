"""The protection objective's terms one after another against side by side on the cores (``guard_core.parallel``).

    python benchmarks/objective_speed.py [--repeats 21] [--jobs 5]

The DP2-VL objective at default settings (SFace, EfficientNet-Lite0 and the SSIM term) on the benchmark's 250×250
face (Grace Hopper, as in ``photo_speed.py``), alone and as a set of five: the median time of the loss and its
gradient to the photo, each way interleaved in this process so that the machine's drift falls on both, and the
largest difference between the two gradients relative to the largest gradient value. Then the whole optimisation of
that face (``protect_set``, 20 steps with EOT, no measuring), medians of ``--jobs`` interleaved runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from guard_core.parallel import sequential
from photo_guard.encoders import DEFAULT_ENCODERS, build_encoder
from photo_guard.owner_state import anchor_direction
from photo_guard.protect import ProtectConfig, clean_view, dp2vl_loss, protect_set


def _face() -> torch.Tensor:
    import matplotlib.cbook

    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    w, _ = hopper.size
    face = hopper.crop((w // 2 - 170, 20, w // 2 + 170, 360)).resize((250, 250))
    return torch.from_numpy(np.array(face)).permute(2, 0, 1).float() / 255


def _interleaved(ways: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in ways}
    for i in range(repeats + 1):  # the first round warms up
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            if i:
                times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--jobs", type=int, default=5)
    args = p.parse_args()
    cfg = ProtectConfig()
    encoders = [build_encoder(n) for n in DEFAULT_ENCODERS]
    face = _face()
    print(f"{torch.get_num_threads()} CPU threads; terms: {', '.join(DEFAULT_ENCODERS)}, SSIM")
    print("| job | photos | one after another | side by side | x one after another | max rel. difference |")
    print("|---|---|---|---|---|---|")
    for batch in (1, 5):
        view = clean_view([face] * batch, encoders, cfg.work_size, torch.device("cpu"))
        x = torch.stack(view.works)
        align = torch.stack(view.aligns)
        # Unrelated directions: at the photo's own embedding the push-away term's gradient is zero.
        centroid = {n: anchor_direction(n, z.shape[-1], b"person").expand_as(z) for n, z in view.embeddings.items()}
        target = {n: anchor_direction(n, z.shape[-1], b"owner").expand_as(z) for n, z in view.embeddings.items()}

        def gradient(x: torch.Tensor = x, align=align, centroid=centroid, target=target) -> torch.Tensor:
            adv = x.clone().requires_grad_(True)
            loss = dp2vl_loss(adv, x, encoders, align, centroid, target, cfg.quality_weight)
            return torch.autograd.grad(loss.sum(), adv)[0]

        def one_after_another(gradient=gradient) -> torch.Tensor:
            with sequential():
                return gradient()

        med = _interleaved({"seq": one_after_another, "par": gradient}, args.repeats)
        a, b = one_after_another(), gradient()
        diff = ((a - b).abs().max() / a.abs().max()).item()
        ms = f"{med['seq'] * 1000:.1f} ms | {med['par'] * 1000:.1f} ms"
        print(f"| objective + gradient | {batch} | {ms} | {med['par'] / med['seq']:.2f} | {diff:.1e} |")

    def job() -> None:
        protect_set([face], cfg, encoders, measure_result=False)

    def job_one_after_another() -> None:
        with sequential():
            job()

    med = _interleaved({"seq": job_one_after_another, "par": job}, args.jobs)
    s = f"{med['seq']:.2f} s | {med['par']:.2f} s"
    print(f"| protect_set, {cfg.steps} steps | 1 | {s} | {med['par'] / med['seq']:.2f} | |")


if __name__ == "__main__":
    main()
