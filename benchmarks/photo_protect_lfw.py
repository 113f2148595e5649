"""How far DP2-VL moves the embeddings of real face photos (LFW), for the encoders optimised against and not.

    python benchmarks/photo_protect_lfw.py --data ../shared/data/lfw10 [--people 8] [--set 5] [--steps 40]

For each of ``--people`` identities, ``--set`` photos are protected together (as their owner would). Three
ensembles are run: both offline encoders, SFace only, EfficientNet-Lite0 only, so every encoder is seen once as
optimised-against (white box) and once as not (transfer). Reported per encoder: mean cosine(protected, clean),
the protected set's centroid cosine to the clean centroid, the same after JPEG 75, and SFace 1-NN identification
of the protected photos against a clean gallery of all identities. Also PSNR/SSIM/L-inf and seconds per photo.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from guard_core.quality import psnr, ssim
from photo_guard.encoders import build_encoder
from photo_guard.faces import face_alignments
from photo_guard.photo_io import load_rgb
from photo_guard.protect import ProtectConfig, protect_set


def jpeg(x: torch.Tensor, quality: int = 75) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)


def embed(enc, x):
    align, _ = face_alignments(x)
    with torch.inference_mode():
        return enc.embed(x, align if enc.face else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--people", type=int, default=8)
    p.add_argument("--set", type=int, default=5)
    p.add_argument("--gallery", type=int, default=5, help="clean photos per identity in the identification gallery")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--strength", default="default")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    people = sorted(d for d in args.data.iterdir() if len(list(d.glob("*.jpg"))) >= args.set + args.gallery)[
        : args.people
    ]
    encs = {n: build_encoder(n) for n in ("sface", "efficientnet_lite0")}
    sets = [[load_rgb(f) for f in sorted(d.glob("*.jpg"))[: args.set]] for d in people]
    gallery = torch.stack(
        [load_rgb(f) for d in people for f in sorted(d.glob("*.jpg"))[args.set : args.set + args.gallery]]
    )
    gallery_labels = np.repeat(np.arange(len(people)), args.gallery)
    gal = F.normalize(embed(encs["sface"], gallery), dim=1)

    def identify(x: torch.Tensor, labels: np.ndarray) -> float:
        z = F.normalize(embed(encs["sface"], x), dim=1)
        return float((gallery_labels[(z @ gal.T).argmax(1).numpy()] == labels).mean())

    clean_all = torch.stack([x for s in sets for x in s])
    labels = np.repeat(np.arange(len(people)), args.set)
    report = {
        "people": len(people),
        "set": args.set,
        "strength": args.strength,
        "steps": args.steps,
        "clean_sface_identification": identify(clean_all, labels),
        "runs": {},
    }
    for ensemble in (("sface", "efficientnet_lite0"), ("sface",), ("efficientnet_lite0",)):
        cfg = ProtectConfig(strength=args.strength, steps=args.steps, encoders=ensemble, device="cpu")
        t0 = time.perf_counter()
        protected = [[r.pixels for r in protect_set(s, cfg, encoders=[encs[n] for n in ensemble])] for s in sets]
        seconds = (time.perf_counter() - t0) / sum(len(s) for s in sets)
        prot_all = torch.stack([x for s in protected for x in s])
        jpg_all = torch.stack([jpeg(x) for x in prot_all])
        row: dict = {"seconds_per_photo": seconds, "encoders": {}}
        diff = prot_all - clean_all
        row["linf_255"] = float(diff.abs().amax() * 255)
        row["psnr"] = float(psnr(prot_all, clean_all, 1.0).mean())
        row["ssim"] = float(ssim(prot_all, clean_all, 1.0).mean())
        for name, enc in encs.items():
            zc, zp, zj = embed(enc, clean_all), embed(enc, prot_all), embed(enc, jpg_all)
            per_set = []
            for i in range(len(sets)):
                sl = slice(i * args.set, (i + 1) * args.set)
                c = F.normalize(F.normalize(zc[sl], dim=1).mean(0), dim=0)
                per_set.append(
                    (
                        float(F.cosine_similarity(F.normalize(zp[sl], dim=1).mean(0), c, dim=0)),
                        float(F.cosine_similarity(F.normalize(zj[sl], dim=1).mean(0), c, dim=0)),
                    )
                )
            row["encoders"][name] = {
                "optimised_against": name in ensemble,
                "cos_to_clean": float(F.cosine_similarity(zp, zc).mean()),
                "cos_to_clean_jpeg75": float(F.cosine_similarity(zj, zc).mean()),
                "centroid_cos": statistics.mean(a for a, _ in per_set),
                "centroid_cos_jpeg75": statistics.mean(b for _, b in per_set),
            }
        row["sface_identification_protected"] = identify(prot_all, labels)
        row["sface_identification_protected_jpeg75"] = identify(jpg_all, labels)
        report["runs"]["+".join(ensemble)] = row
        print(f"done {ensemble} in {seconds:.2f} s/photo", flush=True)

    print(
        f"\n{report['people']} identities x {args.set} photos, strength {args.strength}, {args.steps} steps; "
        f"SFace 1-NN identification of clean photos: {report['clean_sface_identification']:.2f}\n"
    )
    print(
        "| optimised against | encoder | white box? | cos(prot, clean) | after JPEG 75 | centroid cos | after JPEG 75 |"
    )
    print("|---|---|---|---|---|---|---|")
    for run, row in report["runs"].items():
        for name, e in row["encoders"].items():
            print(
                f"| {run} | {name} | {'yes' if e['optimised_against'] else 'no'} | {e['cos_to_clean']:.3f} | "
                f"{e['cos_to_clean_jpeg75']:.3f} | {e['centroid_cos']:.3f} | {e['centroid_cos_jpeg75']:.3f} |"
            )
    print("\n| optimised against | PSNR dB | SSIM | L-inf /255 | SFace ID protected | after JPEG 75 | s / photo |")
    print("|---|---|---|---|---|---|---|")
    for run, row in report["runs"].items():
        print(
            f"| {run} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['linf_255']:.1f} | "
            f"{row['sface_identification_protected']:.2f} | {row['sface_identification_protected_jpeg75']:.2f} | "
            f"{row['seconds_per_photo']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
