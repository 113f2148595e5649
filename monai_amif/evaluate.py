"""``amif evaluate``: fusion metrics of the authorised and unauthorised outputs against the mean and max rules,
plus the authorisation metrics, per task."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from tqdm import tqdm

from guard_core import ops
from guard_core.keys import Key
from guard_core.keys import random_keys as draw_random_keys

from .data import find_pairs, pair_transforms
from .metrics import FUSION_METRICS, fusion_metrics, mark_leak, mark_ncc, to_grey_255
from .networks import AMIFNet
from .sealed import MarkedPreview
from .transforms import RestoreColor

__all__ = ["evaluate", "format_table"]

VARIANTS = ("authorised", "unauthorised", "mean rule", "max rule")


def _as_saved_grey(y: torch.Tensor, cbcr: torch.Tensor, colour: bool) -> np.ndarray:
    """What an evaluator reads back from the saved 8-bit PNG: colour restored, rounded, then BT.601 grey."""
    img = RestoreColor()(y, cbcr) if colour else y
    return to_grey_255(ops.to_uint8(img))


@torch.inference_mode()
def evaluate(
    net: AMIFNet | MarkedPreview,
    data: str,
    key: Key,
    random_keys: int = 100,
    tasks: tuple[str, ...] | None = None,
    seed: int = 0,
) -> dict:
    """Evaluate ``net`` on every pair under ``data``.

    Returns ``{task: {"n", variant: {metric: mean}, "mark_ncc_nokey", "mark_ncc_random_min", "mark_ncc_random_mean",
    "mark_leak"}}`` where variants are the authorised output (``key``), the unauthorised output (no key) and the
    mean/max rules. Random keys are drawn once (seeded) and used for every pair.
    """
    device = next(net.buffers(), torch.zeros(0)).device  # buffers, not parameters: a sealed preview has none of those
    load = pair_transforms()
    right = key.tensor(device)[None]
    zero = torch.zeros_like(right)
    gen = torch.Generator().manual_seed(seed)
    randoms = draw_random_keys(random_keys, right.shape[1], gen).to(device)
    per: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    pairs = find_pairs(data, tasks)
    for pair in tqdm(pairs, desc="amif evaluate", unit="pair", leave=False):
        d = load(pair)
        image = torch.as_tensor(d["image"]).float()[None].to(device)
        h, w = image.shape[-2:]
        mask, intensity = net.template_at(h, w).split(1, dim=1)
        f_auth, f_none = net(image.expand(2, -1, -1, -1), torch.cat([right, zero])).split(1)
        colour, cbcr = bool(d["func_is_colour"]), torch.as_tensor(d["func_cbcr"])
        a = _as_saved_grey(image[0, 1:2], cbcr, colour)  # functional in grey, as the evaluators read it
        b = _as_saved_grey(image[0, :1], cbcr, False)
        rec = per[pair["task"]]
        rec["authorised"].append(fusion_metrics(_as_saved_grey(f_auth[0], cbcr, colour), a, b))
        rec["unauthorised"].append(fusion_metrics(_as_saved_grey(f_none[0], cbcr, colour), a, b))
        rec["mean rule"].append(fusion_metrics(np.clip(np.round((a + b) / 2), 0, 255).astype(np.float32), a, b))
        rec["max rule"].append(fusion_metrics(np.maximum(a, b), a, b))
        rec["mark_ncc_nokey"].append(float(mark_ncc(f_none, f_auth, mask, intensity)))
        rec["mark_leak"].append(float(mark_leak(f_auth, image, mask)))
        if random_keys:
            f_rand = torch.cat([net(image.expand(len(k), -1, -1, -1), k) for k in randoms.split(25)])
            ncc = mark_ncc(f_rand, f_auth.expand_as(f_rand), mask, intensity)
            rec["mark_ncc_random"].append(ncc.cpu().numpy())
    return {task: _summarise(rec) for task, rec in sorted(per.items())}


def _summarise(rec: dict[str, list]) -> dict:
    out: dict = {"n": len(rec["authorised"])}
    for variant in VARIANTS:
        out[variant] = {m: float(np.mean([r[m] for r in rec[variant]])) for m in FUSION_METRICS}
    out["mark_ncc_nokey_min"] = float(np.min(rec["mark_ncc_nokey"]))
    out["mark_ncc_nokey_mean"] = float(np.mean(rec["mark_ncc_nokey"]))
    if rec.get("mark_ncc_random"):
        allr = np.concatenate(rec["mark_ncc_random"])
        out["mark_ncc_random_min"], out["mark_ncc_random_mean"] = float(allr.min()), float(allr.mean())
    out["mark_leak_max"] = float(np.max(np.abs(rec["mark_leak"])))
    return out


def format_table(results: dict) -> str:
    """Markdown tables: per task, one row per variant, one column per metric; then the authorisation metrics."""
    cols = list(FUSION_METRICS)
    lines = []
    for task, res in results.items():
        lines += [
            f"### {task} (n = {res['n']})",
            "",
            "| output | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for variant in VARIANTS:
            lines.append(f"| {variant} | " + " | ".join(f"{res[variant][c]:.4f}" for c in cols) + " |")
        auth = [f"mark_ncc no key: min {res['mark_ncc_nokey_min']:.3f}, mean {res['mark_ncc_nokey_mean']:.3f}"]
        if "mark_ncc_random_min" in res:
            auth.append(f"random keys: min {res['mark_ncc_random_min']:.3f}, mean {res['mark_ncc_random_mean']:.3f}")
        auth.append(f"mark_leak (authorised) max |r| {res['mark_leak_max']:.3f}")
        lines += ["", "; ".join(auth), ""]
    return "\n".join(lines)
