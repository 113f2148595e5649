"""Compute an encoder's reference mean (the centre its embeddings are measured from) from a folder of photos.

    python -m photo_guard.encoders.make_reference PHOTO_DIR [--encoders sface,efficientnet_lite0] [--limit N]

Writes ``photo_guard/encoders/reference/<name>.npy``. The shipped means come from the 2,400 LFW photos in the shared
data (a mean vector, not the photos), see the note in docs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..faces import face_alignments
from ..photo_io import SUPPORTED_SUFFIXES, load_rgb
from . import build_encoder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("photos", type=Path)
    p.add_argument("--encoders", default="sface,efficientnet_lite0")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    files = sorted(f for f in args.photos.rglob("*") if f.suffix.lower() in SUPPORTED_SUFFIXES)
    if args.limit and len(files) > args.limit:
        files = files[:: len(files) // args.limit][: args.limit]  # spread over every identity/folder
    encoders = [build_encoder(n) for n in args.encoders.split(",")]
    sums: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for i in range(0, len(files), args.batch):
            imgs = [load_rgb(f) for f in files[i : i + args.batch]]
            same = len({tuple(im.shape) for im in imgs}) == 1
            for x in [torch.stack(imgs)] if same else [im[None] for im in imgs]:
                align, _ = face_alignments(x)
                for e in encoders:
                    f = e(x, align if e.face else None).double().sum(0)
                    sums[e.name] = sums[e.name] + f if e.name in sums else f
    out = Path(__file__).parent / "reference"
    for name, s in sums.items():
        np.save(out / f"{name}.npy", (s / len(files)).float().numpy())
        print(f"wrote {out / (name + '.npy')} from {len(files)} photos")


if __name__ == "__main__":
    main()
