"""Features of photos as an attacker embeds them, and each identity's set protected (cached, resumable)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from guard_core.atomic import atomic_output

from ..encoders import Encoder
from ..faces import face_alignments
from ..people import people_memory
from ..photo_io import load_rgb
from ..protect import ProtectConfig, protect_set
from .postprocess import to_pil
from .task import EvalConfig, ImageSet, ProtectRun

__all__ = ["model_inputs", "embed_images", "protected_sets"]

log = logging.getLogger(__name__)


def model_inputs(encoder: Encoder, images: ImageSet, batch: int = 32) -> Tensor:
    """What ``encoder``'s network sees, ``[N, C, h, w]``: each photo preprocessed (faces found and aligned on the
    image itself, as an attacker's pipeline would). The learners that train the network itself start from these."""
    out: list[Tensor] = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            chunk = images[i : i + batch]
            groups: dict[tuple, list[int]] = {}
            for j, x in enumerate(chunk):
                groups.setdefault(tuple(x.shape), []).append(j)
            z: list[Tensor] = [torch.empty(0)] * len(chunk)
            for idx in groups.values():
                x = torch.stack([chunk[j] for j in idx])
                align = face_alignments(x)[0] if encoder.face else None
                for j, f in zip(idx, encoder.preprocess(x, align)):
                    z[j] = f
            out.extend(z)
    return torch.stack(out).cpu()


def embed_images(encoder: Encoder, images: ImageSet, batch: int = 32) -> Tensor:
    """Centred features ``[N, D]`` of :func:`model_inputs` (what a frozen-encoder attacker trains on)."""
    x = model_inputs(encoder, images, batch)
    with torch.inference_mode():
        f = torch.cat([encoder.features(x[i : i + batch]) for i in range(0, len(x), batch)])
    return encoder.centred(f).cpu()


def protected_sets(
    sets: list[ImageSet],
    names: list[str],
    run: ProtectRun,
    cfg: EvalConfig,
    encoders: dict[str, Encoder],
    cache: Path | None,
    config: ProtectConfig | None = None,
    memory: bool = True,
) -> tuple[list[ImageSet], float]:
    """Each identity's set protected (together, or photo by photo for ``run.arrival == "one"``) under that identity's
    own anchor (loaded from ``cache`` when there); returns the sets and the seconds per photo this call spent
    protecting (0 when everything came from the cache).

    ``config`` replaces the :class:`ProtectConfig` made from ``run`` and ``cfg`` (ablations); ``memory=False`` drops
    the owner's people memory, so each call pushes its photos from their own centroid."""
    pcfg = config or ProtectConfig(
        strength=run.strength,
        steps=cfg.steps,
        encoders=run.ensemble,
        target=run.target,
        seed=cfg.seed,
        device=cfg.device,
    )
    encs = [encoders[e] for e in run.ensemble]
    folder = cache / run.name.replace("/", "_") / f"steps{cfg.steps}_seed{cfg.seed}_{run.target}" if cache else None
    out, seconds, done = [], 0.0, 0
    for images, name in tqdm(list(zip(sets, names)), desc=f"protect {run.name}", unit="set", leave=False):
        files = [folder / name / f"{i}.png" for i in range(len(images))] if folder else []
        if files and all(f.exists() for f in files):
            out.append([load_rgb(f) for f in files])
            continue
        t0 = time.perf_counter()
        owner = f"{cfg.seed}:{name}".encode()  # each identity is its own owner, with its own anchor and memory
        people = people_memory(encs, None) if memory else None
        batches = [images] if run.arrival == "set" else [[x] for x in images]  # one call per photo: the hosts' way
        prot = [
            r.pixels
            for batch in batches
            for r in protect_set(batch, pcfg, encoders=encs, owner=owner, people=people, measure_result=False)
        ]
        seconds += time.perf_counter() - t0
        done += len(images)
        for f, x in zip(files, prot):
            f.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(f) as tmp:
                to_pil(x).save(tmp, format="PNG")
        out.append(prot)
        log.info("protected %s (%s)", name, run.name)
    return out, seconds / max(done, 1)
