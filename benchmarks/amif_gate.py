"""How the gate holds near the right key: mark_ncc of keys 1-16 bits away, on every 6th test pair.

    AMIF_PASSPHRASE=... python benchmarks/amif_gate.py --weights MODEL [--data ../shared/data/harvard/test] [--keys 40]

Per distance: the worst mark_ncc over the keys and pairs, the share of keys that unlock some pair (mark_ncc < 0.5,
the goal's threshold) and the median over keys of each key's worst pair.
"""

from __future__ import annotations

import argparse
import os

import torch

from guard_core.keys import Key
from monai_amif.data import find_pairs, pair_transforms
from monai_amif.loading import load_model
from monai_amif.metrics import mark_ncc


@torch.inference_mode()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--data", default="../shared/data/harvard/test")
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    net = load_model(args.weights)
    right = Key.from_passphrase(os.environ["AMIF_PASSPHRASE"]).tensor()[None]
    load = pair_transforms()
    images = torch.stack([torch.as_tensor(load(q)["image"]).float() for q in find_pairs(args.data)[::6]])
    mask, intensity = (t.expand(len(images), -1, -1, -1) for t in net.template_at(*images.shape[-2:]).split(1, 1))
    auth = net(images, right.expand(len(images), -1))
    g = torch.Generator().manual_seed(args.seed)
    print(f"{args.weights}: {len(images)} test pairs, {args.keys} keys per distance")
    print("| bits from the right key | worst mark_ncc | keys unlocking a pair (< 0.5) | median of each key's worst |")
    print("|---|---|---|---|")
    for d in (1, 2, 3, 4, 6, 8, 16):
        worst = []
        for _ in range(args.keys):
            k = right.clone()
            k[0, torch.randperm(k.shape[1], generator=g)[:d]] *= -1
            worst.append(float(mark_ncc(net(images, k.expand(len(images), -1)), auth, mask, intensity).min()))
        w = torch.tensor(worst)
        print(f"| {d} | {w.min():.3f} | {100 * (w < 0.5).float().mean():.1f} % | {w.median():.3f} |")


if __name__ == "__main__":
    main()
