"""``amif attack``: every attack on one model, on the test split of a data folder (training on its train split)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from guard_core.keys import Key

from ..errors import AMIFError, PairsNotFound
from ..loading import load_model
from . import ATTACKS, distill, finetune, key_search, removal, sealed_check, wrong_keys
from .common import FAR_PSNR, MARK_VISIBLE, fusion_scores, load_pairs, quality, random_crops, references

__all__ = ["AttackConfig", "run_attacks", "AttackRun", "ATTACKS"]

log = logging.getLogger(__name__)


@dataclass
class AttackConfig:
    """What ``amif attack`` runs. ``data`` holds ``train/`` and ``test/`` split folders."""

    data: str
    weights: str
    random_keys: int = 10_000
    per_distance: int = 50
    removal_steps: int = 600
    distill_steps: int = 600
    search_steps: int = 1000
    restarts: int = 3
    search_crops: int = 2
    modulation_lr: float = 0.01
    sealed_wrong_keys: int = 1000
    finetune_snapshots: tuple[int, ...] = (0, 25, 50, 100, 200, 400)
    crop: int = 128
    test_limit: int | None = None
    train_limit: int | None = None
    example: int = 0
    seed: int = 0
    attacks: tuple[str, ...] = ATTACKS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown:
            raise AMIFError(f"unknown attacks {unknown}; choose from {list(ATTACKS)}")


@dataclass
class AttackRun:
    """``results``: every number (what the JSON holds); ``examples``: named ``[H, W]`` outputs on one test pair."""

    results: dict
    examples: dict[str, Tensor]


def _split(data: str, name: str) -> Path:
    path = Path(data) / name
    if not path.is_dir():
        raise PairsNotFound(f"{data}: no {name}/ folder (amif attack needs <data>/train and <data>/test)")
    return path


_STAGES = {"wrong_keys": 1, "removal": 1, "distillation": 1, "key_search": 3, "finetune": 1, "sealed": 1}


class _Stages:
    """Runs the attack stages: times each into ``results["seconds"]`` and shows progress with the time left."""

    def __init__(self, results: dict, attacks: tuple[str, ...]) -> None:
        self.results = results
        self.bar = tqdm(total=sum(_STAGES.get(a, 1) for a in attacks), desc="amif attack", unit="stage")

    def __call__(self, name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        log.info("attack: %s", name)
        self.bar.set_postfix_str(name)
        out = fn(*args, **kwargs)
        self.results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        self.bar.update(1)
        return out


def run_attacks(cfg: AttackConfig, key: Key) -> AttackRun:
    """Run every attack in ``cfg.attacks`` against the model ``cfg.weights`` whose licence key is ``key``.

    The key is used only to compute the authorised outputs the attacks are scored against (and key bits recovered);
    no attack sees it.
    """
    if key.is_none:
        raise AMIFError("amif attack needs the model's licence key to score attacks against the authorised output")
    torch.manual_seed(cfg.seed)
    net = load_model(cfg.weights)
    test = load_pairs(str(_split(cfg.data, "test")), cfg.test_limit)
    train = load_pairs(str(_split(cfg.data, "train")), cfg.train_limit)
    right = key.tensor()
    refs = references(net, test.images, right)
    side = min(*train.images.shape[-2:], *test.images.shape[-2:])
    crop = min(cfg.crop, side - side % 16)  # crops must fit the images; BasicUNet wants multiples of 16
    ex = min(cfg.example, len(test) - 1)
    results: dict = {
        "config": asdict(cfg),
        "model": {
            "weights": str(cfg.weights),
            "fingerprint": key.fingerprint(),
            "key_path": net.key_path_name,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "data": {"test_pairs": len(test), "train_pairs": len(train), "example": test.names[ex]},
        "thresholds": {"mark_visible": MARK_VISIBLE, "far_psnr_db": FAR_PSNR},
        "reference": {
            "unauthorised": quality(refs.unauthorised, refs),
            "authorised_fusion": fusion_scores(refs.authorised, test.images),
            "unauthorised_fusion": fusion_scores(refs.unauthorised, test.images),
        },
    }
    examples = {"authorised": refs.authorised[ex, 0], "unauthorised (no key)": refs.unauthorised[ex, 0]}
    sigma = float(getattr(net, "degrade_sigma", 3.0))
    rnet = None
    stage = _Stages(results, cfg.attacks)

    if "wrong_keys" in cfg.attacks:
        results["wrong_keys"] = stage(
            "wrong_keys",
            wrong_keys.wrong_key_attack,
            net,
            test,
            refs,
            right,
            cfg.random_keys,
            cfg.per_distance,
            seed=cfg.seed,
        )
    if "removal" in cfg.attacks:
        rnet, rlog = stage(
            "removal_net_training",
            removal.train_removal_net,
            train.images,
            refs.mask,
            refs.intensity,
            cfg.removal_steps,
            crop,
            seed=cfg.seed,
            sigma=sigma,
        )
        rows = {}
        for name, clean in removal.cleaners(refs.mask, refs.intensity, sigma, rnet).items():
            out = clean(refs.unauthorised)
            rows[name] = quality(out, refs)
            examples[f"removal: {name}"] = out[ex, 0]
        results["removal"] = {"cleaners": rows, "removal_net": {"steps": cfg.removal_steps, **rlog}}
    if "distillation" in cfg.attacks:
        with torch.inference_mode():  # what the thief collects: unlicensed outputs of the training inputs
            train_unauth = torch.cat([net(x) for x in train.images.split(16)])
        student, dlog = stage(
            "distillation", distill.distil, train.images, train_unauth, cfg.distill_steps, crop, seed=cfg.seed
        )
        out = distill.run_student(student, test.images)
        examples["distilled student"] = out[ex, 0]
        results["distillation"] = {
            "steps": cfg.distill_steps,
            **dlog,
            "result": quality(out, refs),
            "fusion": fusion_scores(out, test.images),
        }
    if "key_search" in cfg.attacks or "finetune" in cfg.attacks:
        g = torch.Generator().manual_seed(cfg.seed + 1)
        crops, templates = random_crops(
            [train.images, net.template_at(*train.images.shape[-2:])], crop, cfg.search_crops, g
        )
    if "key_search" in cfg.attacks:
        ks = {}
        for bound in ("none", "tanh"):
            r = stage(
                f"key_search_{bound}",
                key_search.search_key,
                net,
                crops,
                templates,
                test.images,
                refs,
                right,
                bound,
                cfg.restarts,
                cfg.search_steps,
                seed=cfg.seed,
            )
            with torch.inference_mode():
                examples[f"key search ({'raw' if bound == 'none' else 'tanh'})"] = net(
                    test.images[ex : ex + 1], r.pop("value")[None]
                )[0, 0]
            ks["raw" if bound == "none" else "tanh"] = r
        m = stage(
            "modulation_search",
            key_search.search_modulation,
            net,
            crops,
            templates,
            test.images,
            refs,
            right,
            cfg.search_steps,
            cfg.modulation_lr,
        )
        v = m.pop("value")
        c = v.shape[1] // 2
        with torch.inference_mode():
            examples["modulation search"] = key_search.apply_modulation(
                net, test.images[ex : ex + 1], v[:, :c], v[:, c:]
            )[0, 0]
        ks["modulation"] = m
        results["key_search"] = ks
    if "finetune" in cfg.attacks:
        hs = stage(
            "finetune",
            finetune.head_start,
            net,
            train.images,
            test.images,
            refs,
            list(cfg.finetune_snapshots),
            seed=cfg.seed,
            crop=crop,
        )
        for name in ("stolen", "scratch"):
            trained = hs[name].pop("net")
            with torch.inference_mode():
                out = torch.cat([trained(x) for x in test.images.split(16)])
            hs[name]["fusion"] = fusion_scores(out, test.images)
            examples[f"fine-tuned {name} ({max(cfg.finetune_snapshots)} steps)"] = out[ex, 0]
        results["finetune"] = hs
    if "sealed" in cfg.attacks:
        sres, preview = stage(
            "sealed",
            sealed_check.sealed_attack,
            cfg.weights,
            key,
            test,
            refs,
            removal.cleaners(refs.mask, refs.intensity, sigma, rnet),
            cfg.sealed_wrong_keys,
        )
        results["sealed"] = sres
        examples["sealed, no key (preview)"] = preview[ex, 0]
    results["goals"] = goals(results)
    stage.bar.close()
    return AttackRun(results, examples)


def goals(results: dict) -> dict[str, dict]:
    """Each goal of the issue: ``{"met": bool, "detail": str}`` for the attacks that ran."""
    out: dict[str, dict] = {}
    if "wrong_keys" in results:
        wk = results["wrong_keys"]
        worst = max(r["far"] for r in wk["by_distance"].values())
        out["wrong keys rejected"] = {
            "met": wk["random"]["accepted"] == 0 and worst == 0,
            "detail": f"random FAR {wk['random']['far']:.4f} ({wk['random']['keys']} keys); "
            f"worst FAR at 1-128 bits {worst:.3f}",
        }
    if "removal" in results:
        bad = {n: r["escaped"] for n, r in results["removal"]["cleaners"].items() if r["escaped"] > 0}
        out["removal leaves the mark or stays far"] = {
            "met": not bad,
            "detail": "every cleaner"
            if not bad
            else "escaped on " + ", ".join(f"{n} ({100 * e:.0f}% of pairs)" for n, e in bad.items()),
        }
    if "distillation" in results:
        auth, st = results["reference"]["authorised_fusion"], results["distillation"]["fusion"]
        worse = [c for c in ("VIF", "Qabf") if st[c] <= 0.8 * auth[c]]
        out["student fuses clearly worse"] = {
            "met": len(worse) == 2 and results["distillation"]["result"]["escaped"] == 0,
            "detail": ", ".join(f"{c} {st[c]:.3f} vs {auth[c]:.3f}" for c in ("VIF", "Qabf"))
            + f"; mark_ncc {results['distillation']['result']['mark_ncc']:.3f}",
        }
    if "key_search" in results:
        ks = results["key_search"]
        # The thief's best: the restart and view (continuous key or its signs) that shows the least mark.
        ncc = {
            f"{name} key": min(r[v]["mark_ncc"] for r in ks[name]["runs"] for v in ("continuous", "signs"))
            for name in ("raw", "tanh")
        }
        ncc["modulation"] = ks["modulation"]["result"]["mark_ncc"]
        out["key search fails"] = {
            "met": all(v >= MARK_VISIBLE for v in ncc.values()),
            "detail": "; ".join(f"{k}: mark_ncc {v:.3f}" for k, v in ncc.items()),
        }
    if "finetune" in results:
        st, sc = results["finetune"]["stolen"], results["finetune"]["scratch"]
        gaps = [a["psnr"] - b["psnr"] for a, b in zip(st["curve"], sc["curve"])][1:]
        out["small fine-tuning head start"] = {
            "met": max(gaps, default=0.0) < 1.0,
            "detail": "PSNR to authorised, stolen minus scratch: "
            + ", ".join(f"{s}: {g:+.1f} dB" for s, g in zip(st["steps"][1:], gaps)),
        }
    if "sealed" in results:
        sr = results["sealed"]
        bad = [n for n, r in sr["cleaners"].items() if r["escaped"] > 0]
        out["sealed: no other key opens it, nothing learned without it"] = {
            "met": sr["wrong_keys_opened"] == 0 and sr["learned_parameters_without_key"] == 0 and not bad,
            "detail": f"{sr['wrong_keys_opened']} of {sr['wrong_keys_tried']} random keys opened it; "
            f"{sr['learned_parameters_without_key']} learned parameters readable; cleaners on the preview: "
            + ("none escaped" if not bad else "escaped: " + ", ".join(bad)),
        }
    return out
