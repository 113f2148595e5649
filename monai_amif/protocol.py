"""The CDDFuse evaluation protocol for MRI fusion, exactly as its public test script scores a method.

CDDFuse (Zhao et al., CVPR 2023) reads both sources as grey (the functional image by BT.601 luma, rounded as
OpenCV's ``GRAY`` read does), fuses them, min-max normalises the fused output, saves it as an 8-bit PNG and scores the
re-read file on eight metrics, in this order: EN, SD, SF, MI, SCD, VIF, Qabf, SSIM (data range 2, SSIM(F, A) +
SSIM(F, B)). The means per task are its published table; :data:`CDDFUSE_PUBLISHED` holds the CDDFuse* row of that
table (on its own test pairs) as the yardstick.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from guard_core.keys import Key

from .data import find_pairs
from .io import read_image
from .metrics import FUSION_METRICS, to_grey_255

__all__ = [
    "CDDFUSE_COLUMNS",
    "CDDFUSE_PUBLISHED",
    "RULES",
    "cddfuse_grey",
    "minmax_u8",
    "score_pair",
    "evaluate_cddfuse",
    "reached",
    "format_cddfuse_table",
]

CDDFUSE_COLUMNS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM2")
#: CDDFuse* as published (MRI-CT 21, MRI-PET 42, MRI-SPECT 73 pairs), keyed by this project's task names.
CDDFUSE_PUBLISHED = {
    "CT-MRI": dict(zip(CDDFUSE_COLUMNS, (4.88, 79.17, 38.14, 2.61, 1.41, 0.61, 0.68, 1.34))),
    "PET-MRI": dict(zip(CDDFUSE_COLUMNS, (4.23, 70.73, 29.57, 2.03, 1.69, 0.71, 0.71, 1.49))),
    "SPECT-MRI": dict(zip(CDDFUSE_COLUMNS, (3.90, 58.31, 20.87, 2.49, 1.35, 0.97, 0.78, 1.48))),
}
RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean rule": lambda a, b: np.clip(np.round((a + b) / 2), 0, 255),
    "max rule": np.maximum,
}


def cddfuse_grey(path: str) -> np.ndarray:
    """A source image as CDDFuse reads it: 8-bit grey ``[H, W]`` float32 in [0, 255] (colour by BT.601 luma)."""
    data = read_image(path).data  # [C, H, W] in [0, 1]
    u8 = np.round(np.moveaxis(data[:3], 0, -1) * 255).astype(np.uint8)
    return to_grey_255(u8 if u8.shape[-1] == 3 else u8[..., 0])


def minmax_u8(fused: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 255] and round, as the fused PNG CDDFuse saves and re-reads (float32)."""
    f = fused.astype(np.float64)
    span = f.max() - f.min()
    f = (f - f.min()) / span if span > 0 else np.zeros_like(f)
    return np.round(f * 255).astype(np.float32)


def score_pair(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The CDDFuse columns (plus AG) for fused ``F``, functional ``A`` and MRI ``B``, grey in [0, 255]."""
    return {name: float(FUSION_METRICS[name](fused, a, b)) for name in (*CDDFUSE_COLUMNS, "AG")}


@torch.inference_mode()
def evaluate_cddfuse(net: torch.nn.Module, data: str, key: Key, tasks: tuple[str, ...] | None = None) -> dict:
    """``{task: {"n", "model": {metric: mean}, "mean rule": ..., "max rule": ...}}`` under the CDDFuse protocol.

    The model fuses the grey sources under ``key`` (the authorised output when it is the right key).
    """
    device = next(net.buffers(), torch.zeros(0)).device  # a model without buffers runs on the CPU
    right = key.tensor(device)[None]
    per: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    pairs = find_pairs(data, tasks)
    for pair in tqdm(pairs, desc="amif evaluate", unit="pair", leave=False):
        a, b = cddfuse_grey(pair["func"]), cddfuse_grey(pair["mri"])
        image = torch.from_numpy(np.stack([b, a]) / 255.0).float()[None].to(device)
        fused = net(image, right)[0, 0].cpu().numpy()
        rec = per[pair["task"]]
        rec["model"].append(score_pair(minmax_u8(fused), a, b))
        for rule, fn in RULES.items():
            rec[rule].append(score_pair(fn(a, b).astype(np.float32), a, b))
    return {
        task: {
            "n": len(rec["model"]),
            **{row: {m: float(np.mean([r[m] for r in recs])) for m in recs[0]} for row, recs in rec.items()},
        }
        for task, rec in sorted(per.items())
    }


def reached(row: dict[str, float], task: str) -> list[str]:
    """The CDDFuse columns on which ``row`` reaches or beats the published CDDFuse* figure (all: higher is better)."""
    ref = CDDFUSE_PUBLISHED.get(task, {})
    return [m for m in CDDFUSE_COLUMNS if m in ref and round(row[m], 2) >= ref[m]]


def format_cddfuse_table(results: dict) -> str:
    """One Markdown table per task: CDDFuse* (published), the rules and the model, the 8 columns in CDDFuse's
    order plus AG, and on how many of the 8 each row reaches CDDFuse*."""
    lines = []
    for task, res in results.items():
        ref = CDDFUSE_PUBLISHED.get(task)
        lines += [
            f"### {task} (n = {res['n']}, CDDFuse protocol)",
            "",
            "| row | " + " | ".join(CDDFUSE_COLUMNS) + " | AG | reaches CDDFuse* |",
            "|---|" + "---|" * 10,
        ]
        if ref:
            lines.append(
                "| CDDFuse* (published) | " + " | ".join(f"{ref[m]:.2f}" for m in CDDFUSE_COLUMNS) + " | – | – |"
            )
        for row in ("mean rule", "max rule", "model"):
            vals = res[row]
            hit = f"{len(reached(vals, task))}/8" if ref else "–"
            lines.append(f"| {row} | " + " | ".join(f"{vals[m]:.4f}" for m in (*CDDFUSE_COLUMNS, "AG")) + f" | {hit} |")
        lines.append("")
    return "\n".join(lines)
