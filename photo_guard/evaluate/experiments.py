"""Every experiment of the simulation, run against every attacker encoder and head."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from guard_core.quality import psnr, ssim

from ..encoders import Encoder, build_encoder
from ..photo_io import load_rgb
from .adaptive import apply_inverse, fit_inverse, own_photos
from .finetune import sets_finetune_leakage
from .goals import goals
from .heads import leakage
from .mini_vlm import vlm_leakage
from .postprocess import postprocess_sets
from .protection import embed_images, model_inputs, protected_sets
from .task import EvalConfig, ImageSet, ProtectRun, Task, sample_task

__all__ = ["Evaluation", "run_evaluation"]

log = logging.getLogger(__name__)


@dataclass
class _Attack:
    """Everything the experiments share: the task, the clean photos, the query features per attacker encoder."""

    cfg: EvalConfig
    task: Task
    clean: list[ImageSet]
    encoders: dict[str, Encoder]
    query_feats: dict[str, Tensor]
    query_id: Tensor
    queries: ImageSet

    def features(self, sets: list[ImageSet], attacker: str) -> tuple[Tensor, Tensor]:
        """Training features ``[N, D]`` and each row's identity index."""
        feats = embed_images(self.encoders[attacker], [x for s in sets for x in s])
        return feats, torch.repeat_interleave(torch.arange(len(sets)), torch.tensor([len(s) for s in sets]))

    def leak(self, train: tuple[Tensor, Tensor], attacker: str, head: str) -> tuple[float, float]:
        return leakage(*train, self.query_feats[attacker], self.query_id, self.task.affiliations, self.cfg.labels, head)


def _mix(clean: list[ImageSet], protected: list[ImageSet], ratio: float) -> list[ImageSet]:
    """The first ``round(ratio · n)`` photos of each set protected, the rest clean."""
    return [p[: round(ratio * len(c))] + c[round(ratio * len(c)) :] for c, p in zip(clean, protected)]


def _quality(clean: list[ImageSet], protected: list[ImageSet]) -> dict:
    a = torch.stack([x for s in clean for x in s])
    b = torch.stack([x for s in protected for x in s])
    return {
        "psnr": float(psnr(b, a, 1.0).mean()),
        "ssim": float(ssim(b, a, 1.0).mean()),
        "linf_255": float((b - a).abs().amax() * 255),
    }


@dataclass
class Evaluation:
    """``results``: JSON-ready, every number the report shows; ``examples``: (clean, protected) photo pairs for the
    before/after figure."""

    results: dict
    examples: list[tuple[Tensor, Tensor]]


def _attacker_rows(
    atk: _Attack,
    attacker: str,
    runs: dict,
    prot: dict,
    clean: list[ImageSet],
    cfg: EvalConfig,
    main: str,
    inverse: Tensor | None = None,
) -> list[dict]:
    """Every experiment's row for one attacker encoder (each training-set variant embedded once, shared by heads).
    ``inverse``: the adaptive attacker's map from protected back to clean features, when there is one."""
    rows: list[dict] = []
    feats: dict[str, tuple[Tensor, Tensor]] = {}

    def leak(variant: str, make_sets: Callable[[], list[ImageSet]], head: str) -> tuple[float, float]:
        if variant not in feats:
            feats[variant] = atk.features(make_sets(), attacker)
        return atk.leak(feats[variant], attacker, head)

    def row(experiment: str, run: str, head: str, variant: str, make_sets, baseline: float, **extra) -> None:
        acc, inverted = leak(variant, make_sets, head)
        rows.append(
            {
                "experiment": experiment,
                "run": run,
                "attacker": attacker,
                "head": head,
                "white_box": attacker in runs[run]["ensemble"],
                "clean_acc": baseline,
                "protected_acc": acc,
                "protected_inverted_acc": inverted,
                **extra,
            }
        )

    for head in cfg.heads:
        base = leak("clean", lambda: clean, head)[0]
        for run, r in runs.items():
            row(
                r["experiment"],
                run,
                head,
                run,
                lambda run=run: prot[run],
                base,
                strength=r["strength"],
                target=r["target"],
            )
        if inverse is not None:
            if "adaptive" not in feats:
                f, ids = feats.get(main) or atk.features(prot[main], attacker)
                feats["adaptive"] = (apply_inverse(f, inverse), ids)
            row("adaptive", main, head, "adaptive", lambda: [], base)
        for ratio in cfg.ratios:
            row(
                "ratio",
                main,
                head,
                f"ratio {ratio}",
                lambda ratio=ratio: _mix(clean, prot[main], ratio),
                base,
                ratio=ratio,
            )
        # the sets and, as the hosts protect them, the photos one at a time (goal 5 measures goal 3 both ways)
        pp_runs = [main, *(run for run, r in runs.items() if r["experiment"] == "arrival")]
        for pp in cfg.postprocess:
            pp_base = leak(f"clean {pp}", partial(postprocess_sets, clean, pp), head)[0]
            for run in pp_runs:
                row(
                    "postprocess",
                    run,
                    head,
                    f"{run} {pp}",
                    lambda run=run, pp=pp: postprocess_sets(prot[run], pp),
                    pp_base,
                    postprocess=pp,
                )
        log.info("attacker %s/%s done", attacker, head)
    return rows


def _learner_rows(
    atk: _Attack, attacker: str, clean: list[ImageSet], protected: list[ImageSet], run: str, white_box: bool
) -> list[dict]:
    """Goal 4's learners that adapt, trained on the clean and on the protected shared photos: the encoder fine-tuned
    end to end (``finetune``), and a miniature VLM on captions, scored on the place (``vlm place``, the affiliation)
    and on the name (``vlm name``, the identity; chance 1 / people)."""
    cfg, task, enc = atk.cfg, atk.task, atk.encoders[attacker]
    rows: list[dict] = []

    def row(learner: str, chance: float, clean_acc: float, protected_acc: float) -> None:
        rows.append(
            {
                "experiment": "learner",
                "learner": learner,
                "run": run,
                "attacker": attacker,
                "white_box": white_box,
                "chance": chance,
                "clean_acc": clean_acc,
                "protected_acc": protected_acc,
            }
        )

    if "finetune" in cfg.learners:
        query_x = model_inputs(enc, atk.queries)
        draws = task.affiliations[: cfg.finetune_draws]
        accs = [
            sets_finetune_leakage(enc, sets, query_x, atk.query_id, draws, cfg.labels, cfg.finetune_epochs)
            for sets in (clean, protected)
        ]
        row("finetune", 1 / cfg.labels, *accs)
    if "vlm" in cfg.learners:
        query = (atk.query_feats[attacker], atk.query_id)
        clean_vlm, prot_vlm = (
            vlm_leakage(*atk.features(sets, attacker), *query, task.affiliations, cfg.people, cfg.labels, cfg.vlm_steps)
            for sets in (clean, protected)
        )
        row("vlm place", 1 / cfg.labels, clean_vlm[0], prot_vlm[0])
        row("vlm name", 1 / cfg.people, clean_vlm[1], prot_vlm[1])
    log.info("learners for %s done", attacker)
    return rows


def run_evaluation(
    data: Path,
    cfg: EvalConfig | None = None,
    cache: Path | None = None,
    encoders: dict[str, Encoder] | None = None,
    examples: int = 3,
) -> Evaluation:
    """Run every experiment on the identity folders under ``data``."""
    cfg = cfg or EvalConfig()
    task = sample_task(data, cfg)
    names = sorted({*cfg.attackers, *cfg.ensemble})
    encs = encoders or {n: build_encoder(n) for n in names}
    clean = [[load_rgb(f) for f in fs] for fs in task.train_files]
    queries = [load_rgb(f) for fs in task.query_files for f in fs]
    query_id = torch.repeat_interleave(torch.arange(cfg.people), torch.tensor([len(fs) for fs in task.query_files]))
    query_feats = {a: embed_images(encs[a], queries) for a in cfg.attackers}
    atk = _Attack(cfg, task, clean, encs, query_feats, query_id, queries)

    runs, prot = {}, {}
    for name, run in cfg.protect_runs().items():
        prot[name], sec = protected_sets(clean, task.identities, run, cfg, encs, cache)
        runs[name] = {
            "ensemble": list(run.ensemble),
            "strength": run.strength,
            "target": run.target,
            "experiment": run.experiment,
            "seconds_per_photo": sec,
            **_quality(clean, prot[name]),
        }
    main = ProtectRun(cfg.ensemble).name
    inverses = _adaptive_inverses(data, task, cfg, encs, atk, cache) if cfg.adaptive_photos else {}
    rows = []
    for attacker in tqdm(cfg.attackers, desc="attackers", unit="encoder"):
        rows += _attacker_rows(atk, attacker, runs, prot, clean, cfg, main, inverses.get(attacker))
        rows += _learner_rows(atk, attacker, clean, prot[main], main, attacker in cfg.ensemble)
    results = {
        "config": asdict(cfg),
        "chance": 1 / cfg.labels,
        "identities": task.identities,
        "train_photos": sum(map(len, task.train_files)),
        "query_photos": len(queries),
        "runs": runs,
        "rows": rows,
        "goals": goals(rows, cfg),
    }
    return Evaluation(results, [(clean[i][0], prot[main][i][0]) for i in range(min(examples, cfg.people))])


def _adaptive_inverses(
    data: Path, task: Task, cfg: EvalConfig, encs: dict[str, Encoder], atk: _Attack, cache: Path | None
) -> dict[str, Tensor]:
    """The adaptive attacker protects photos of their own with the main run's settings (as one more owner) and fits,
    per attacker encoder, the map from protected back to clean features."""
    own = own_photos(data, task, cfg.adaptive_photos, cfg.seed)
    (own_prot,), _ = protected_sets([own], ["adaptive-attacker"], ProtectRun(cfg.ensemble), cfg, encs, cache)
    return {a: fit_inverse(embed_images(encs[a], own_prot), embed_images(encs[a], own)) for a in cfg.attackers}
