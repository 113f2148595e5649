"""The fine-tuning attack simulation: does a model trained on protected photos learn who a person is linked to?

The scraper's task (docs/design.md, photo_guard):

1. every identity gets a secret *affiliation* (one of ``labels`` classes, balanced, re-drawn ``draws`` times);
2. per identity a few photos (``train``) are shared, protected together as their owner would protect their set;
   the identity's other photos (up to ``queries``) stay clean and are the attacker's questions;
3. the attacker trains a head (linear probe, 2-layer MLP) on frozen encoder features of the shared photos to predict
   the affiliation, and is scored on the clean questions. Baseline: the same attacker trained on the clean photos.

Leakage is the attacker's accuracy on the questions; chance is ``1 / labels``. Protected sets are cached as PNG
(lossless, so the cache holds exactly the 8-bit pixels a protected PNG would) so a run resumes where it stopped.
"""

from __future__ import annotations

import io
import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from torch import Tensor, nn
from tqdm import tqdm

from guard_core import ops
from guard_core.atomic import atomic_output
from guard_core.quality import psnr, ssim

from .encoders import Encoder, build_encoder
from .errors import PhotoGuardError
from .faces import face_alignments
from .photo_io import SUPPORTED_SUFFIXES, load_rgb
from .protect import ProtectConfig, protect_set

__all__ = [
    "EvalConfig",
    "ProtectRun",
    "Evaluation",
    "Task",
    "POSTPROCESS",
    "sample_task",
    "train_head",
    "leakage",
    "run_evaluation",
    "goals",
]

log = logging.getLogger(__name__)

ImageSet = list[Tensor]  # [3, H, W] RGB in [0, 1]


@dataclass
class EvalConfig:
    """What the simulation runs (see :meth:`protect_runs` for the protection runs)."""

    people: int = 20
    train: int = 5
    queries: int = 10
    labels: int = 10
    draws: int = 5
    steps: int = 40
    seed: int = 0
    attackers: tuple[str, ...] = ("sface", "efficientnet_lite0")
    heads: tuple[str, ...] = ("linear", "mlp")
    ensemble: tuple[str, ...] = ("sface", "efficientnet_lite0")
    strengths: tuple[str, ...] = ("low", "default", "strong")
    ratios: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    postprocess: tuple[str, ...] = ("jpeg50", "jpeg75", "jpeg90", "resize0.5", "blur", "screenshot")
    targets: tuple[str, ...] = ("anchor",)  # other DP2-VL targets compared at default strength
    device: str = "cpu"

    def protect_runs(self) -> dict[str, ProtectRun]:
        """The full ensemble at every strength; each encoder alone at default strength (so each attacker encoder is
        met once not optimised against: the transfer case); the other ``targets`` at default strength."""
        runs = [ProtectRun(self.ensemble, s) for s in self.strengths]
        if len(self.ensemble) > 1:
            runs += [ProtectRun((e,), "default", experiment="ensemble") for e in self.ensemble]
        runs += [ProtectRun(self.ensemble, "default", t, "target") for t in self.targets if t != "antithetical"]
        return {r.name: r for r in runs}


@dataclass(frozen=True)
class ProtectRun:
    """One way of protecting every shared set: the ensemble optimised against, the strength, the DP2-VL target."""

    ensemble: tuple[str, ...]
    strength: str = "default"
    target: str = "antithetical"
    experiment: str = "strength"  # which report table: strength, ensemble (transfer) or target

    @property
    def name(self) -> str:
        return f"{'+'.join(self.ensemble)}@{self.strength}" + (
            "" if self.target == "antithetical" else f"/{self.target}"
        )


@dataclass
class Task:
    """Who is in the simulation: per identity the shared (training) and the question (query) files."""

    identities: list[str]
    train_files: list[list[Path]]
    query_files: list[list[Path]]
    affiliations: list[list[int]] = field(default_factory=list)  # one balanced draw per entry: label per identity


def sample_task(data: Path, cfg: EvalConfig) -> Task:
    """Pick ``cfg.people`` identities with at least ``train + 1`` photos and split each one's photos (seeded)."""
    folders = sorted(d for d in Path(data).iterdir() if d.is_dir())
    usable = [(d, sorted(f for f in d.iterdir() if f.suffix.lower() in SUPPORTED_SUFFIXES)) for d in folders]
    usable = [(d, fs) for d, fs in usable if len(fs) > cfg.train]
    if len(usable) < cfg.people:
        raise PhotoGuardError(
            f"{data}: {len(usable)} identity folders with more than {cfg.train} photos; "
            f"the simulation needs {cfg.people}"
        )
    rng = random.Random(cfg.seed)
    chosen = sorted(rng.sample(usable, cfg.people), key=lambda t: t[0].name)
    task = Task([d.name for d, _ in chosen], [], [])
    for _, files in chosen:
        files = files[:]
        rng.shuffle(files)
        task.train_files.append(files[: cfg.train])
        task.query_files.append(files[cfg.train : cfg.train + cfg.queries])
    for _ in range(cfg.draws):
        labels = [i % cfg.labels for i in range(cfg.people)]
        rng.shuffle(labels)
        task.affiliations.append(labels)
    return task


# --- what the attacker does to the shared photos before training -------------------------------------------------


def _pil(x: Tensor) -> Image.Image:
    return Image.fromarray(ops.to_uint8(x))


def _tensor(im: Image.Image) -> Tensor:
    return ops.from_uint8(np.asarray(im.convert("RGB")))


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def f(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue()))

    return f


def _resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)


POSTPROCESS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg50": _jpeg(50),
    "jpeg75": _jpeg(75),
    "jpeg90": _jpeg(90),
    "resize0.5": _resize(0.5),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(1.0)),
    # a phone screenshot of the photo shown smaller, shared again as JPEG
    "screenshot": lambda im: _jpeg(85)(_resize(0.8)(im)),
}


def postprocess(images: ImageSet, name: str | None) -> ImageSet:
    if not name:
        return images
    if name not in POSTPROCESS:
        raise PhotoGuardError(f"unknown post-processing {name!r}; known: {', '.join(POSTPROCESS)}")
    return [_tensor(POSTPROCESS[name](_pil(x))) for x in images]


# --- the attacker's heads ------------------------------------------------------------------------------------------


def train_head(
    features: Tensor, labels: Tensor, classes: int, kind: str = "linear", epochs: int = 300, seed: int = 0
) -> nn.Module:
    """Fit a head on frozen features ``[N, D]`` (L2-normalised inside) to ``labels [N]``, full batch, Adam."""
    torch.manual_seed(seed)
    d = features.shape[1]
    if kind == "linear":
        head, lr = nn.Linear(d, classes), 1e-2
    elif kind == "mlp":
        head, lr = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, classes)), 3e-3
    else:
        raise PhotoGuardError(f"unknown head {kind!r}; use linear or mlp")
    x = F.normalize(features.float(), dim=1)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(head(x), labels).backward()
        opt.step()
    return head.eval()


def leakage(
    train_x: Tensor,
    train_id: Tensor,
    query_x: Tensor,
    query_id: Tensor,
    affiliations: Sequence[Sequence[int]],
    classes: int,
    kind: str,
) -> tuple[float, float]:
    """Mean accuracy over the affiliation draws of a head trained on ``train_x`` and asked about ``query_x``, and the
    same for an attacker who knows the training photos were pushed to the opposite side and answers with the head's
    *least* likely class. ``*_id`` give each row's identity index; a draw maps identity index -> affiliation label."""
    accs, inverted = [], []
    for k, draw in enumerate(affiliations):
        lab = torch.as_tensor(draw)
        head = train_head(train_x, lab[train_id], classes, kind, seed=k)
        with torch.no_grad():
            logits = head(F.normalize(query_x.float(), dim=1))
        accs.append(float((logits.argmax(1) == lab[query_id]).float().mean()))
        inverted.append(float((logits.argmin(1) == lab[query_id]).float().mean()))
    return statistics.mean(accs), statistics.mean(inverted)


# --- features and protection -----------------------------------------------------------------------------------------


def embed_images(encoder: Encoder, images: ImageSet, batch: int = 32) -> Tensor:
    """Centred features ``[N, D]``; faces are found on each image itself, as an attacker's pipeline would."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            chunk = images[i : i + batch]
            groups: dict[tuple, list[int]] = {}
            for j, x in enumerate(chunk):
                groups.setdefault(tuple(x.shape), []).append(j)
            z = [None] * len(chunk)
            for idx in groups.values():
                x = torch.stack([chunk[j] for j in idx])
                align = face_alignments(x)[0] if encoder.face else None
                for j, f in zip(idx, encoder.embed(x, align)):
                    z[j] = f
            out.extend(z)
    return torch.stack(out).cpu()


def protected_sets(
    sets: list[ImageSet],
    names: list[str],
    run: ProtectRun,
    cfg: EvalConfig,
    encoders: dict[str, Encoder],
    cache: Path | None,
) -> tuple[list[ImageSet], float]:
    """Each identity's set protected together (loaded from ``cache`` when there); returns the sets and the seconds
    per photo this call spent protecting (0 when everything came from the cache)."""
    pcfg = ProtectConfig(
        strength=run.strength,
        steps=cfg.steps,
        encoders=run.ensemble,
        target=run.target,
        seed=cfg.seed,
        device=cfg.device,
    )
    encs = [encoders[e] for e in run.ensemble]
    anchor = _anchors(encs, sets[0][0], cfg.seed) if run.target == "anchor" else None
    folder = cache / run.name.replace("/", "_") / f"steps{cfg.steps}_seed{cfg.seed}" if cache else None
    out, seconds, done = [], 0.0, 0
    for images, name in tqdm(list(zip(sets, names)), desc=f"protect {run.name}", unit="set", leave=False):
        files = [folder / name / f"{i}.png" for i in range(len(images))] if folder else []
        if files and all(f.exists() for f in files):
            out.append([load_rgb(f) for f in files])
            continue
        t0 = time.perf_counter()
        prot = [r.pixels for r in protect_set(images, pcfg, encoders=encs, anchor=anchor, measure_result=False)]
        seconds += time.perf_counter() - t0
        done += len(images)
        for f, x in zip(files, prot):
            f.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(f) as tmp:
                _pil(x).save(tmp, format="PNG")
        out.append(prot)
        log.info("protected %s (%s)", name, run.name)
    return out, seconds / max(done, 1)


def _anchors(encoders: Sequence[Encoder], example: Tensor, seed: int) -> dict[str, Tensor]:
    """One fixed random direction per encoder, the same for every identity: all shared sets are pushed to one
    common region, so neither the identity nor its opposite can be read from where a set lands."""
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        dims = {
            e.name: e.embed(example[None], None if not e.face else face_alignments(example[None])[0]).shape[-1]
            for e in encoders
        }
    return {n: F.normalize(torch.randn(d, generator=g), dim=0) for n, d in dims.items()}


@dataclass
class _Attack:
    """Everything the experiments share: the task, the clean photos, the query features per attacker encoder."""

    cfg: EvalConfig
    task: Task
    clean: list[ImageSet]
    encoders: dict[str, Encoder]
    query_feats: dict[str, Tensor]
    query_id: Tensor

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
    atk: _Attack, attacker: str, runs: dict, prot: dict, clean: list[ImageSet], cfg: EvalConfig, main: str
) -> list[dict]:
    """Every experiment's row for one attacker encoder (each training-set variant embedded once, shared by heads)."""
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
        for pp in cfg.postprocess:
            pp_base = leak(f"clean {pp}", lambda pp=pp: postprocess_sets(clean, pp), head)[0]
            row(
                "postprocess",
                main,
                head,
                f"{main} {pp}",
                lambda pp=pp: postprocess_sets(prot[main], pp),
                pp_base,
                postprocess=pp,
            )
        log.info("attacker %s/%s done", attacker, head)
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
    atk = _Attack(cfg, task, clean, encs, {a: embed_images(encs[a], queries) for a in cfg.attackers}, query_id)

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
    rows = []

    for attacker in tqdm(cfg.attackers, desc="attackers", unit="encoder"):
        rows += _attacker_rows(atk, attacker, runs, prot, clean, cfg, main)
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


def postprocess_sets(sets: list[ImageSet], name: str) -> list[ImageSet]:
    return [postprocess(s, name) for s in sets]


def goals(rows: list[dict], cfg: EvalConfig) -> dict:
    """The three goals, per attacker encoder and head: white-box leakage within 10 points of chance (also judged for
    the attacker who answers with the least likely class), transfer leakage at least halfway down to chance, and
    JPEG 75 / resize 0.5 costing at most 10 points of protection."""
    chance, main = 1 / cfg.labels, ProtectRun(cfg.ensemble).name
    out: dict[str, dict] = {"white_box": {}, "transfer": {}, "postprocess": {}}
    for r in rows:
        key = f"{r['attacker']}/{r['head']}"
        if r["experiment"] == "target" or (r["experiment"] == "strength" and r["strength"] == "default"):
            key += "" if r["run"] == main else f" ({r['run']})"
            out["white_box"][key] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "met": abs(r["protected_acc"] - chance) <= 0.10,
                "inverted_acc": r["protected_inverted_acc"],
                "inverted_met": abs(r["protected_inverted_acc"] - chance) <= 0.10,
            }
        elif r["experiment"] == "ensemble" and not r["white_box"]:
            halfway = r["clean_acc"] - (r["clean_acc"] - chance) / 2
            out["transfer"][f"{key} vs {r['run']}"] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "needed": halfway,
                "met": r["protected_acc"] <= halfway,
            }
    protection = {
        f"{r['attacker']}/{r['head']}": r["clean_acc"] - r["protected_acc"]
        for r in rows
        if r["experiment"] == "strength" and r["run"] == main
    }
    for r in rows:
        if r["experiment"] == "postprocess" and r["postprocess"] in ("jpeg75", "resize0.5"):
            key = f"{r['attacker']}/{r['head']}"
            kept = r["clean_acc"] - r["protected_acc"]
            out["postprocess"][f"{key} {r['postprocess']}"] = {
                "protection": protection[key],
                "protection_after": kept,
                "met": protection[key] - kept <= 0.10,
            }
    return out
