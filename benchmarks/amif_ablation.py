"""AMIF recipe ablation: train each variant for the same number of epochs, score it under the CDDFuse protocol.

    AMIF_PASSPHRASE=... python benchmarks/amif_ablation.py --data ../shared/data/harvard --epochs 12 \
        --out runs/ablation --variants base,blend,wide,saliency,select,boost,warmup [--report docs/amif_ablation.md]

Each variant is a set of ``TrainConfig`` changes on top of the previous one (a cumulative chain), named in
:data:`VARIANTS`; a finished variant (its ``model.pt`` exists with the epochs asked for) is scored, not retrained.
The table gives, per task, how many of the 8 CDDFuse* figures are reached, the metrics that decide it, and the gate
(mark_ncc for no key, 20 random keys and keys 4 bits away, minimum over the test pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import torch

from guard_core.keys import Key, random_keys
from monai_amif.data import find_pairs, pair_transforms
from monai_amif.loading import load_plain_model
from monai_amif.metrics import mark_ncc
from monai_amif.networks import AMIFNet
from monai_amif.protocol import evaluate_cddfuse, reached
from monai_amif.train import TrainConfig, train

#: name -> (config changes, what the step tests); applied cumulatively in the order given on the command line.
VARIANTS: dict[str, tuple[dict, str]] = {
    "base": (
        {
            "output": "direct",
            "key_path": "parity",
            "channels": (24, 48),
            "loss_weights": (100.0, 100.0, 50.0),
            "qabf_weight": 0.0,
            "vif_weight": 0.0,
            "vif_tasks": None,
        },
        "today's recipe: (24, 48) direct head, intensity/gradient/SSIM 100/100/50",
    ),
    "blend": ({"output": "blend"}, "blend head: soft selection of the sources + residual"),
    "gated": ({"key_path": "gated"}, "gated key path: one unlicensed modulation for every wrong key"),
    "wide": ({"channels": (32, 64, 128)}, "three levels 32/64/128 (0.5 M backbone)"),
    "saliency": ({"saliency": 4.0}, "intensity weighted 1 + 4·|A - B|"),
    "select": ({"gradient": "select"}, "signed gradient of the stronger source"),
    "boost": ({"boost": 1.2}, "gradient target × 1.2"),
    "intensity3": ({"loss_weights": (300.0, 100.0, 50.0)}, "intensity weight 300"),
    "intensity5": ({"loss_weights": (500.0, 100.0, 50.0)}, "intensity weight 500"),
    "warmup": ({"fusion_warmup": 3}, "3 epochs of fusion alone before the gate"),
    "qabf": ({"qabf_weight": 100.0}, "+ 100·(1 - Qabf), the scored edge metric made differentiable"),
    "vif": ({"vif_weight": 50.0}, "+ 50·(2 - VIF), the scored VIF made differentiable"),
}


@torch.inference_mode()
def gate_check(net: AMIFNet, data: str, key: Key, n_random: int = 20, seed: int = 0) -> dict[str, float]:
    """Minimum mark_ncc over the test pairs for no key, ``n_random`` random keys and as many keys 4 bits away."""
    gen = torch.Generator().manual_seed(seed)
    right = key.tensor()[None]
    rand = random_keys(n_random, right.shape[1], gen)
    near = right.repeat(n_random, 1)
    for row in near:
        flip = torch.randperm(right.shape[1], generator=gen)[:4]
        row[flip] = -row[flip]
    load = pair_transforms()
    worst = {"no key": 1.0, "random": 1.0, "4 bits": 1.0}
    for pair in find_pairs(data):
        image = torch.as_tensor(load(pair)["image"]).float()[None]
        mask, intensity = net.template_at(*image.shape[-2:]).split(1, dim=1)
        f_auth = net(image, right)
        for name, keys in (("no key", torch.zeros_like(right)), ("random", rand), ("4 bits", near)):
            out = net(image.expand(len(keys), -1, -1, -1), keys)
            worst[name] = min(worst[name], float(mark_ncc(out, f_auth.expand_as(out), mask, intensity).min()))
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="Folder with train/ and test/")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--variants", default="base,blend,wide,saliency,select,boost")
    p.add_argument("--report", default=None, help="Write the Markdown table (and .json beside it) here.")
    p.add_argument(
        "--rows-from",
        nargs="*",
        default=None,
        help="Only tabulate the JSON rows earlier runs of this script printed to these logs (or wrote to .json).",
    )
    args = p.parse_args()
    if args.rows_from is not None:
        first: dict[str, dict] = {}
        for log in args.rows_from:  # a variant scored in two chains is the same model: tabulate it once
            text = Path(log).read_text()
            found = json.loads(text) if log.endswith(".json") else re.findall(r'\{"variant".*', text)
            for row in found:
                row = json.loads(row) if isinstance(row, str) else row
                first.setdefault(row["variant"], row)
        rows = list(first.values())
        _write(format_rows(rows, args.epochs), rows, args.report)
        return
    key = Key.from_passphrase(os.environ["AMIF_PASSPHRASE"])
    cfg = TrainConfig(data=f"{args.data}/train", out="", epochs=args.epochs)
    rows = []
    for name in args.variants.split(","):
        changes, what = VARIANTS[name]
        cfg = replace(cfg, **changes, out=f"{args.out}/{name}")
        model = Path(cfg.out) / "model.pt"
        done = (
            model.exists()
            and json.loads(model.with_suffix(".json").read_text())["train_config"]["epochs"] == cfg.epochs
        )
        if not done:
            train(cfg, key)
        net = load_plain_model(model)
        scores = evaluate_cddfuse(net, f"{args.data}/test", key)
        gate = gate_check(net, f"{args.data}/test", key)
        rows.append(
            {
                "variant": name,
                "what": what,
                "scores": scores,
                "gate": gate,
                "backbone_params": sum(q.numel() for n, q in net.named_parameters() if not n.startswith("key_path")),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    _write(format_rows(rows, args.epochs), rows, args.report)


def _write(table: str, rows: list[dict], report: str | None) -> None:
    print(table)
    if report:
        Path(report).write_text(table + "\n", encoding="utf-8")
        Path(report).with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


def format_rows(rows: list[dict], epochs: int) -> str:
    tasks = list(rows[0]["scores"])
    head = (
        "| variant (cumulative) | backbone | "
        + " | ".join(f"{t} reached" for t in tasks)
        + " | MI / VIF / Qabf (CT, PET, SPECT) | gate min mark_ncc (no key / random / 4 bits) |"
    )
    lines = [
        f"Each variant trained {epochs} epochs; CDDFuse protocol on harvard/test.",
        "",
        head,
        "|---|---|" + "---|" * len(tasks) + "---|---|",
    ]
    for r in rows:
        hits = [
            f"{len(reached(r['scores'][t]['model'], t))}/8 ({','.join(reached(r['scores'][t]['model'], t))})"
            for t in tasks
        ]
        mvq = "; ".join("/".join(f"{r['scores'][t]['model'][m]:.2f}" for m in ("MI", "VIF", "Qabf")) for t in tasks)
        g = r["gate"]
        what = r["what"].replace("|", "\\|")  # a table cell
        lines.append(
            f"| {r['variant']}: {what} | {r['backbone_params'] / 1e3:.0f} k | "
            + " | ".join(hits)
            + f" | {mvq} | {g['no key']:.2f} / {g['random']:.2f} / {g['4 bits']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
