"""The protection objective's terms one after another against side by side on the cores (``guard_core.parallel``).

    python benchmarks/objective_speed.py [--repeats 21] [--jobs 5]

The DP2-VL objective's terms at default settings (SFace, EfficientNet-Lite0 and the SSIM term) through
``parallel_sum`` on the benchmark's 250×250 face (Grace Hopper, as in ``photo_speed.py``), alone and as sets of two
and five (``dp2vl_loss`` takes them side by side only for one photo): the median time of the loss and its
gradient to the photo, each way interleaved in this process so that the machine's drift falls on both, and the
largest difference between the two gradients relative to the largest gradient value. Then ``photo_speed.py``'s whole
jobs (read, optimise, write, re-check) on that face and on its 12-MP JPEG, medians of ``--jobs`` interleaved runs.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from photo_speed import sample_photos  # this folder, on the path when run as a script

from guard_core.parallel import parallel_sum, sequential
from photo_guard.batch import protect_files
from photo_guard.clean_view import clean_view
from photo_guard.encoders import DEFAULT_ENCODERS, build_encoder
from photo_guard.objective import dp2vl_terms
from photo_guard.owner_state import anchor_direction
from photo_guard.photo_io import load_rgb
from photo_guard.protect import ProtectConfig


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
    face_file, big_file = sample_photos(Path(tempfile.mkdtemp()))
    face = load_rgb(face_file)
    print(f"{torch.get_num_threads()} CPU threads; terms: {', '.join(DEFAULT_ENCODERS)}, SSIM")
    print("| job | photos | one after another | side by side | x one after another | max rel. difference |")
    print("|---|---|---|---|---|---|")
    for batch in (1, 2, 5):
        view = clean_view([face] * batch, encoders, cfg.work_size, torch.device("cpu"))
        x = torch.stack(view.works)
        align = torch.stack(view.aligns)
        # Unrelated directions: at the photo's own embedding the push-away term's gradient is zero.
        centroid = {n: anchor_direction(n, z.shape[-1], b"person").expand_as(z) for n, z in view.embeddings.items()}
        target = {n: anchor_direction(n, z.shape[-1], b"owner").expand_as(z) for n, z in view.embeddings.items()}

        terms = dp2vl_terms(x, encoders, align, centroid, target, cfg.quality_weight)

        def gradient(x: torch.Tensor = x, terms=terms) -> torch.Tensor:
            adv = x.clone().requires_grad_(True)
            return torch.autograd.grad(parallel_sum(adv, terms).sum(), adv)[0]

        def one_after_another(gradient=gradient) -> torch.Tensor:
            with sequential():
                return gradient()

        med = _interleaved({"seq": one_after_another, "par": gradient}, args.repeats)
        a, b = one_after_another(), gradient()
        diff = ((a - b).abs().max() / a.abs().max()).item()
        ms = f"{med['seq'] * 1000:.1f} ms | {med['par'] * 1000:.1f} ms"
        print(f"| objective + gradient | {batch} | {ms} | {med['par'] / med['seq']:.2f} | {diff:.1e} |")

    for label, path in (("250x250 face", face_file), ("12 MP JPEG", big_file)):
        outs = itertools.count()

        def job(path=path, outs=outs) -> None:
            report = protect_files([path], path.parent / f"out{next(outs)}", cfg)
            assert report.protected, report.failed

        def job_one_after_another(job=job) -> None:
            with sequential():
                job()

        med = _interleaved({"seq": job_one_after_another, "par": job}, args.jobs)
        s = f"{med['seq']:.2f} s | {med['par']:.2f} s"
        print(f"| whole job (`protect_files`), {label} | 1 | {s} | {med['par'] / med['seq']:.2f} | |")


if __name__ == "__main__":
    main()
