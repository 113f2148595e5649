"""How well the owner's people memory tells people apart (photo_guard.people, issue 14 goal 5).

    python benchmarks/photo_people.py --data ../shared/data/lfw10 --people 40 --photos 6

Photos of ``--people`` LFW identities arrive one at a time in a random order, as a watch folder or a photo booth sees
them. Prints the cosine between centred SFace embeddings (what protect sees) of the same and of different people,
then for each threshold what :class:`photo_guard.people.PeopleMemory` makes of the stream: how many people it found,
the share of photos filed with a different person's photos (merged), and the share filed apart from their own
person's first photo (split). A merge pushes a photo away from a mix of two people; a split only from fewer photos.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from photo_guard.clean_view import clean_view
from photo_guard.encoders import build_encoder
from photo_guard.people import SAME_PERSON_COS, PeopleMemory
from photo_guard.photo_io import SUPPORTED_SUFFIXES, load_rgb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/lfw10"))
    p.add_argument("--people", type=int, default=40)
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--thresholds", default="0.2,0.25,0.3,0.35,0.4,0.5")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    rng = random.Random(args.seed)
    folders = sorted(d for d in args.data.iterdir() if d.is_dir())
    folders = [d for d in folders if sum(f.suffix.lower() in SUPPORTED_SUFFIXES for f in d.iterdir()) >= args.photos]
    stream = [
        (who, f)
        for who, d in enumerate(rng.sample(folders, min(args.people, len(folders))))
        for f in rng.sample(sorted(f for f in d.iterdir() if f.suffix.lower() in SUPPORTED_SUFFIXES), args.photos)
    ]
    rng.shuffle(stream)
    enc = build_encoder("sface")
    z = torch.cat([clean_view([load_rgb(f)], [enc], 320, torch.device("cpu")).embeddings["sface"] for _, f in stream])
    who = torch.tensor([w for w, _ in stream])
    _print_cosines(F.normalize(z, dim=-1), who)
    people = int(who.max()) + 1
    print(f"\n{len(stream)} photos of {people} people, one at a time (default threshold {SAME_PERSON_COS})\n")
    print("| threshold | people found | photos merged with another person | photos split from their person |")
    print("|---|---|---|---|")
    for t in (float(s) for s in args.thresholds.split(",")):
        found, merged, split = _stream(z, who, t)
        print(f"| {t:.2f} | {found} | {100 * merged:.1f} % | {100 * split:.1f} % |")


def _stream(z: torch.Tensor, who: torch.Tensor, t: float) -> tuple[int, float, float]:
    """Feed the photos ``z [N, D]`` to a memory one at a time; people found, merged and split shares."""
    memory = PeopleMemory("sface", threshold=t)
    cluster = []
    for i in range(len(z)):
        cluster.append(memory.identify(z[i]))
        memory.assign({"sface": z[i : i + 1]})
    cluster_t = torch.tensor(cluster)
    merged = split = 0
    for i in range(len(z)):
        mates = who[cluster_t == cluster_t[i]]
        merged += int((mates != who[i]).any())
        first = int((who == who[i]).nonzero()[0])
        split += int(cluster_t[first] != cluster_t[i])
    return memory.people, merged / len(z), split / len(z)


def _print_cosines(u: torch.Tensor, who: torch.Tensor) -> None:
    cos = u @ u.T
    same = who[:, None] == who[None, :]
    off = ~torch.eye(len(u), dtype=torch.bool)
    q = torch.tensor([0.05, 0.5, 0.95])
    print("| pairs | count | 5 % | median | 95 % |")
    print("|---|---|---|---|---|")
    for name, m in (("same person", same & off), ("different people", ~same)):
        v = cos[m]
        print(f"| {name} | {v.numel()} | " + " | ".join(f"{float(x):.3f}" for x in v.quantile(q)) + " |")


if __name__ == "__main__":
    main()
