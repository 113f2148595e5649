"""Where a CDDFuse metric cannot move on these test pairs: the eight figures of trivial fusions and of the max rule
pushed toward the figures a model misses (sharpened for SF, equalised for EN).

    python benchmarks/amif_bounds.py [--data ../shared/data/harvard/test]

Each candidate is scored under the CDDFuse protocol beside the published CDDFuse* figures: if no source, no rule and
no contrast stretch of the max rule comes near a published figure, the gap is a property of the test pairs (different
from CDDFuse's own), not of a model.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.ndimage import gaussian_filter

from monai_amif.data import find_pairs
from monai_amif.protocol import CDDFUSE_COLUMNS, CDDFUSE_PUBLISHED, cddfuse_grey, minmax_u8, reached, score_pair


def unsharp(f: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """``f + amount·(f - blur(f))``, clipped to [0, 255]: more SF and AG, the edges' directions kept."""
    return np.clip(f + amount * (f - gaussian_filter(f, sigma)), 0, 255)


def equalise(f: np.ndarray) -> np.ndarray:
    """Histogram equalisation of the non-zero pixels (the black background stays black): more EN."""
    out = f.copy()
    body = f > 0
    values = np.sort(f[body])
    out[body] = 255 * np.searchsorted(values, f[body], side="right") / max(1, values.size)
    return out


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
            "max rule, unsharp 0.5": unsharp(np.maximum(a, b), 0.5),
            "max rule, unsharp 1.0": unsharp(np.maximum(a, b), 1.0),
            "max rule, equalised": equalise(np.maximum(a, b)),
        }
        for name, f in candidates.items():
            rows.setdefault((pair["task"], name), []).append(score_pair(minmax_u8(f), a, b))
    cols = CDDFUSE_COLUMNS
    print("| task | candidate F | " + " | ".join(cols) + " | reaches |")
    print("|---|---|" + "---|" * (len(cols) + 1))
    for (task, name), recs in rows.items():
        mean = {c: float(np.mean([r[c] for r in recs])) for c in cols}
        hits = reached(mean, task)
        figures = " | ".join(f"{mean[c]:.3f}" for c in cols)
        print(f"| {task} | {name} | {figures} | {len(hits)}/8 ({','.join(hits)}) |")
    for task, ref in CDDFUSE_PUBLISHED.items():
        figures = " | ".join(f"{ref[c]:.2f}" for c in cols)
        print(f"| {task} | CDDFuse* (published, its own test pairs) | {figures} | |")


if __name__ == "__main__":
    main()
