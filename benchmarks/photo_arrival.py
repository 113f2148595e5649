"""Photos protected one at a time against the same photos protected as a set (issue 14, goal 5), quickly.

    python benchmarks/photo_arrival.py --mode memory --out runs/arrival [--steps 20] [--threads 1]
        [--set transforms=RandomJPEG,RandomResize --set delta_scale=0.5 --tag name] [--post jpeg75,resize0.5]
        [--ensemble face_student,efficientnet_lite0 --attackers sface] [--finetune sface]
        [--weight efficientnet_lite0=1.5] [--adaptive 0,1,2]

The evaluation's task (20 LFW identities, 5 shared photos each, 10 affiliations, 5 draws, ``photo-guard evaluate``'s
defaults) with only the frozen-feature heads, so one way of arriving costs minutes, not the full report's hour. Modes:
``set`` (each identity's photos in one call), ``one`` (one call per photo, no people memory: the photo is pushed from
its own embedding), ``memory`` (one call per photo with the owner's people memory: what the hosts do by default).
``--set`` overrides a :class:`~photo_guard.protect.ProtectConfig` field (the ablations in docs/photo_guard.md);
``--ensemble`` / ``--attackers`` pick the encoders optimised against and attacked (transfer: one not in the ensemble);
protected photos are kept under ``--out/<mode>_steps<steps>[_<tag>]`` and reused. Prints the leakage (and the
least-likely-class attacker's) per encoder and head, then the protection left after each ``--post`` processing
(clean-trained minus protected-trained leakage, both sets processed alike, as in the evaluation). ``--finetune``
adds goal 4's learner that fine-tunes the named encoders end to end (the evaluation's draws and epochs; minutes each).
``--weight`` sets an encoder's share of the objective (``Encoder.loss_weight``). ``--adaptive`` adds goal 1's adaptive
attacker once per seed: the attacker's own photos (``photo_guard.evaluate.adaptive.own_photos`` with that seed; seed 0
is the report's draw) protected as one set with the same settings, kept under ``<folder>/own<seed>``, and the map back
fitted on them; the attacker's leakage is one more column, one figure per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from guard_core import quality
from photo_guard.encoders import build_encoder
from photo_guard.evaluate.adaptive import apply_inverse, fit_inverse, own_photos
from photo_guard.evaluate.finetune import sets_finetune_leakage
from photo_guard.evaluate.heads import leakage
from photo_guard.evaluate.postprocess import postprocess_sets
from photo_guard.evaluate.protection import embed_images, model_inputs, protected_sets
from photo_guard.evaluate.task import EvalConfig, ProtectRun, sample_task
from photo_guard.photo_io import load_rgb
from photo_guard.protect import ProtectConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/lfw10"))
    p.add_argument("--mode", choices=["set", "one", "memory"], default="memory")
    p.add_argument("--out", type=Path, default=Path("runs/arrival"))
    p.add_argument("--steps", type=int, default=EvalConfig.steps, help="PGD steps (default: the evaluation's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a ProtectConfig override")
    p.add_argument("--tag", default="", help="names the folder of photos protected with --set")
    p.add_argument("--post", default="jpeg75,resize0.5", help="post-processings to measure (comma-separated)")
    p.add_argument("--ensemble", default=",".join(EvalConfig.ensemble), help="encoders optimised against")
    p.add_argument("--attackers", default=",".join(EvalConfig.attackers), help="encoders the attacker trains on")
    p.add_argument("--finetune", default="", help="encoders fine-tuned end to end on the shared photos (goal 4)")
    p.add_argument("--weight", action="append", default=[], metavar="ENCODER=W", help="an encoder's share of the loss")
    p.add_argument("--adaptive", default="", help="seeds of the adaptive attacker's own photos (goal 1), e.g. 0,1,2")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ensemble, attackers = tuple(args.ensemble.split(",")), tuple(args.attackers.split(","))
    cfg = EvalConfig(steps=args.steps, ensemble=ensemble, attackers=attackers)
    task = sample_task(args.data, cfg)
    encs = [build_encoder(n) for n in dict.fromkeys(ensemble + attackers)]
    for item in args.weight:
        name, _, weight = item.partition("=")
        next(e for e in encs if e.name == name).loss_weight = float(weight)
    pcfg = ProtectConfig(steps=cfg.steps, encoders=cfg.ensemble, seed=cfg.seed, device="cpu", **_overrides(args.set))
    clean = [[load_rgb(f) for f in fs] for fs in task.train_files]
    folder = args.out / (f"{args.mode}_steps{args.steps}" + (f"_{args.tag}" if args.tag else ""))
    run = ProtectRun(cfg.ensemble, arrival="set" if args.mode == "set" else "one")
    by_name = {e.name: e for e in encs if e.name in ensemble}
    prot, _ = protected_sets(clean, task.identities, run, cfg, by_name, folder, pcfg, memory=args.mode == "memory")
    pairs = [(x, y) for cs, ps in zip(clean, prot) for x, y in zip(cs, ps)]
    a, b = torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])
    print(f"PSNR {float(quality.psnr(a, b, 1.0).mean()):.2f} dB, SSIM {float(quality.ssim(a, b, 1.0).mean()):.4f}")
    seeds = [int(s) for s in args.adaptive.split(",") if s]
    inverses = {s: _inverses(args.data, task, cfg, by_name, encs, pcfg, folder / f"own{s}", s) for s in seeds}

    queries = [load_rgb(f) for fs in task.query_files for f in fs]
    qid = _ids([len(q) for q in task.query_files])
    tid = _ids([len(s) for s in prot])
    posts = [n for n in args.post.split(",") if n]
    heads_table, post_table = [], []
    for enc in (e for e in encs if e.name in cfg.attackers):
        qf = embed_images(enc, queries)  # the clean questions, embedded once per encoder
        # "" is no processing (postprocess_sets passes the sets through)
        feats = {n: tuple(_embed_sets(enc, postprocess_sets(sets, n)) for sets in (clean, prot)) for n in ("", *posts)}
        for head in cfg.heads:
            scores = {}
            for n, (fc, fp) in feats.items():
                base, _ = leakage(fc, tid, qf, qid, task.affiliations, cfg.labels, head)
                acc, inv = leakage(fp, tid, qf, qid, task.affiliations, cfg.labels, head)
                scores[n] = (base, acc, inv)
            base, acc, inv = scores.pop("")
            adapt = [
                leakage(apply_inverse(feats[""][1], w[enc.name]), tid, qf, qid, task.affiliations, cfg.labels, head)[0]
                for w in inverses.values()
            ]
            cells = [f"{100 * base:.0f} %", f"{100 * acc:.0f} %", f"{100 * inv:.0f} %"]
            cells += [" / ".join(f"{100 * x:.0f}" for x in adapt) + " %"] if adapt else []
            heads_table.append(f"| {enc.name} | {head} | " + " | ".join(cells) + " |")
            cells = [f"{100 * (b - a):.0f} points ({100 * b:.0f} % -> {100 * a:.0f} %)" for b, a, _ in scores.values()]
            post_table.append(f"| {enc.name} | {head} | " + " | ".join(cells) + " |")
    adaptive_col = f" adaptive, own photos of seeds {args.adaptive} |" if seeds else ""
    print(
        f"| attacker | head | clean-trained | {args.mode}: standard | {args.mode}: least likely class |{adaptive_col}"
    )
    print("|---|---|---|---|---|" + ("---|" if seeds else ""))
    print("\n".join(heads_table))
    if posts:
        print("\n| attacker | head | " + " | ".join(f"protection after {n}" for n in posts) + " |")
        print("|---|---|" + "---|" * len(posts))
        print("\n".join(post_table))
    for name in (n for n in args.finetune.split(",") if n):  # goal 4's end-to-end learner, as the evaluation runs it
        enc = next((e for e in encs if e.name == name), None) or build_encoder(name)
        qx, draws = model_inputs(enc, queries), task.affiliations[: cfg.finetune_draws]
        base, acc = (
            sets_finetune_leakage(enc, sets, qx, qid, draws, cfg.labels, cfg.finetune_epochs) for sets in (clean, prot)
        )
        print(f"\n{name} fine-tuned end to end: clean-trained {100 * base:.0f} %, protected {100 * acc:.0f} %")


def _inverses(
    data: Path, task, cfg: EvalConfig, ensemble: dict, encs: list, pcfg: ProtectConfig, cache: Path, seed: int
) -> dict[str, torch.Tensor]:
    """The adaptive attacker's map back per attacking encoder, fitted on their own photos drawn with ``seed`` and
    protected as one set with ``pcfg`` (as the evaluation does for seed 0)."""
    own = own_photos(data, task, cfg.adaptive_photos, seed)
    (prot,), _ = protected_sets([own], ["adaptive-attacker"], ProtectRun(cfg.ensemble), cfg, ensemble, cache, pcfg)
    return {e.name: fit_inverse(embed_images(e, prot), embed_images(e, own)) for e in encs if e.name in cfg.attackers}


def _embed_sets(enc, sets: list[list[torch.Tensor]]) -> torch.Tensor:
    return embed_images(enc, [x for s in sets for x in s])


def _overrides(items: list[str]) -> dict:
    """``FIELD=VALUE`` pairs as ProtectConfig keyword arguments, typed by the field's default (a list for tuples)."""
    defaults = ProtectConfig()
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        current = getattr(defaults, key)
        if isinstance(current, tuple) or current is None:  # None: an optional tuple of names
            out[key] = tuple(v for v in value.split(",") if v)
        elif isinstance(current, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = type(current)(value)
    return out


def _ids(sizes: list[int]) -> torch.Tensor:
    """Each row's identity index, for ``sizes[i]`` rows of identity ``i``."""
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


if __name__ == "__main__":
    main()
