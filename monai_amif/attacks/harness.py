"""``amif attack``: every attack on one model, on the test split of a data folder (training on its train split)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from guard_core.keys import Key

from ..errors import AMIFError, PairsNotFound
from ..loading import load_plain_model
from . import ATTACKS, distill, finetune, key_search, removal, sealed_check, weight_key, wrong_keys  # noqa: F401
from .base import REGISTRY, Stages, Target
from .common import FAR_PSNR, MARK_VISIBLE, fusion_scores, load_pairs, quality, references

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
        # Run in the order of ATTACKS: the sealed check reuses the removal network when both run.
        known = tuple(a for a in ATTACKS if a in self.attacks)
        self.attacks = known + tuple(a for a in self.attacks if a not in ATTACKS)
        unknown = sorted(set(self.attacks) - set(REGISTRY))
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


def run_attacks(cfg: AttackConfig, key: Key) -> AttackRun:
    """Run every attack in ``cfg.attacks`` against the model ``cfg.weights`` whose licence key is ``key``.

    The key is used only to compute the authorised outputs the attacks are scored against (and key bits recovered);
    no attack sees it.
    """
    if key.is_none:
        raise AMIFError("amif attack needs the model's licence key to score attacks against the authorised output")
    torch.manual_seed(cfg.seed)
    net = load_plain_model(cfg.weights)
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
    target = Target(cfg, net, train, test, refs, right, key, crop, ex, net.degrade_sigma)
    target.examples.update({"authorised": refs.authorised[ex, 0], "unauthorised (no key)": refs.unauthorised[ex, 0]})
    attacks = [REGISTRY[name]() for name in cfg.attacks]
    stage = Stages(results, sum(a.stages for a in attacks))
    for attack in attacks:
        results[attack.name] = attack.run(target, stage)
    results["goals"] = {a.goal_name: a.goal(results[a.name], results) for a in attacks}
    stage.bar.close()
    return AttackRun(results, target.examples)
