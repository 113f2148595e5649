"""Where a CDDFuse metric cannot move on these test pairs: SSIM2, VIF, Qabf and MI of trivial fusions.

    python benchmarks/amif_bounds.py [--data ../shared/data/harvard/test]

Each candidate is scored under the CDDFuse protocol beside the published CDDFuse* figures: if no source, no rule and
no contrast stretch of the max rule comes near a published figure, the gap is a property of the test pairs (different
from CDDFuse's own), not of a model.
"""

from __future__ import annotations

import argparse

import numpy as np

from monai_amif.data import find_pairs
from monai_amif.protocol import CDDFUSE_PUBLISHED, cddfuse_grey, minmax_u8, score_pair


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/harvard/test")
    args = p.parse_args()
    rows: dict[tuple[str, str], list[dict]] = {}
    for pair in find_pairs(args.data):
        a, b = cddfuse_grey(pair["func"]), cddfuse_grey(pair["mri"])
        candidates = {
            "F = MRI": b,
            "F = functional": a,
            "mean rule": (a + b) / 2,
            "max rule": np.maximum(a, b),
            "max rule, contrast x1.2": np.clip(np.maximum(a, b) * 1.2, 0, 255),
        }
        for name, f in candidates.items():
            rows.setdefault((pair["task"], name), []).append(score_pair(minmax_u8(f), a, b))
    cols = ("SSIM2", "VIF", "Qabf", "MI")
    print("| task | candidate F | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for (task, name), recs in rows.items():
        print(f"| {task} | {name} | " + " | ".join(f"{np.mean([r[c] for r in recs]):.3f}" for c in cols) + " |")
    for task, ref in CDDFUSE_PUBLISHED.items():
        figures = " | ".join(f"{ref[c]:.2f}" for c in cols)
        print(f"| {task} | CDDFuse* (published, its own test pairs) | {figures} |")


if __name__ == "__main__":
    main()
