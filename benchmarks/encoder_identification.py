"""1-nearest-neighbour identification on a folder of people (one sub-folder per person), per encoder.

    python benchmarks/encoder_identification.py --data ../shared/data/lfw10 [--encoders sface,efficientnet_lite0]

Leave-one-out over every photo: a photo is identified correctly when its most similar other photo (cosine of centred
embeddings) shows the same person. Chance is about 1 / number of people, weighted by folder sizes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from photo_guard.encoders import build_encoder
from photo_guard.faces import face_alignments
from photo_guard.photo_io import load_rgb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--encoders", default="sface,efficientnet_lite0")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    people = sorted(d for d in args.data.iterdir() if d.is_dir())
    files = [(f, i) for i, d in enumerate(people) for f in sorted(d.glob("*.jpg"))]
    labels = np.array([i for _, i in files])
    encs = [build_encoder(n) for n in args.encoders.split(",")]
    feats: dict[str, list[torch.Tensor]] = {e.name: [] for e in encs}
    found_faces = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(files), args.batch):
            x = torch.stack([load_rgb(f) for f, _ in files[s : s + args.batch]])
            align, found = face_alignments(x)
            found_faces += sum(found)
            for e in encs:
                feats[e.name].append(e.embed(x, align if e.face else None))
    seconds = time.perf_counter() - t0
    counts = np.bincount(labels)
    chance = float(((counts - 1) / (len(labels) - 1) * counts).sum() / len(labels))
    print(
        f"{len(files)} photos of {len(people)} people; faces detected in {found_faces}; "
        f"{seconds / len(files) * 1000:.0f} ms per photo for all encoders"
    )
    print("| encoder | 1-NN identification | chance (same person at random) |")
    print("|---|---|---|")
    for name, chunks in feats.items():
        z = F.normalize(torch.cat(chunks), dim=1)
        sim = z @ z.T
        sim.fill_diagonal_(-2)
        acc = float((labels[sim.argmax(1).numpy()] == labels).mean())
        print(f"| {name} | {acc:.3f} | {chance:.3f} |")


if __name__ == "__main__":
    main()
