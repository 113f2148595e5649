"""DP2-VL: a dataset-level perturbation that moves a photo set's embeddings into the antithetical region.

For a set of photos of one person and an ensemble of encoders ``f_e``:

1. clean centred embeddings ``z = f_e(x) - μ_e``; each photo's person centroid ``c_e = normalise(mean(normalise(z)))``
   over the set, or over every photo of that person the owner has protected (:mod:`photo_guard.people`);
2. a target ``t_e``: the owner's anchor (default: a fixed direction drawn from the owner secret, see
   :func:`photo_guard.owner_state.anchor_direction`), ``-c_e`` (antithetical: DP2-VL's original target) or
   ``-normalise(z_i)`` per photo;
3. minimise ``Σ_e [max(cos(f_e(x + δ) - μ_e, c_e) - s_e, 0) - cos(f_e(x + δ) - μ_e, t_e)]`` (``s_e``: the encoder's
   ``away_stop``) under ``|δ| <= ε`` with expectation over what sharing does (JPEG, resize, blur, face re-alignment),
   so a model fine-tuned on the set learns features that do not fire on clean photos of the person.

Why the anchor is the default: the antithetical target puts each set at the mirror of its own centroid, a fixed
relation to the identity that a head learns as an anti-label (an attacker answering its least likely class recovered
88 % of the affiliations, docs/photo_guard.md). The anchor depends on nothing about the photos, and it is the same for
every call of one owner, so a photo protected on its own (a photo booth, a watch folder) moves where its set would.

δ is optimised at a working resolution (the encoders see no more than that) and carried to full resolution; the
budget is shaped by local texture so smooth skin and sky get less of it (imperceptibility), and a second, low-frequency
part on a quarter-size grid (at most ε/2, anywhere) carries what a resized or re-encoded copy keeps; a stronger SSIM
term keeps the sum's SSIM above 0.90 (0.904 on the evaluation's sets, against 0.906 without the part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from guard_core import ops
from guard_core.device import resolve
from guard_core.pgd import PGD, PGDConfig

from . import registry
from .clean_view import CleanView, clean_view
from .encoders import DEFAULT_ENCODERS, Encoder, build_encoder
from .errors import PhotoGuardError
from .measure import measure
from .owner_state import anchor_direction, photo_seed
from .people import PeopleMemory
from .redetect import Redetected, redetected_warps
from .step_terms import StepTerms

__all__ = [
    "STRENGTHS",
    "ProtectConfig",
    "ProtectedPhoto",
    "protect_set",
    "perceptual_budget",
]

STRENGTHS = {"low": 4 / 255, "default": 8 / 255, "strong": 16 / 255}
Target = Literal["antithetical", "per-photo", "anchor"]


@dataclass
class ProtectConfig:
    """How to protect. ``strength`` picks ε (4/8/16 /255); the rest is for experiments."""

    strength: str = "default"
    # SFace leakage 33-37 % at 10 steps, 17-21 % at 14, 9-12 % at 20 (set mode); 1.4-1.6 s per face here (Speed table)
    steps: int = 20
    encoders: tuple[str, ...] = DEFAULT_ENCODERS
    target: Target = "anchor"
    eot_samples: int = 1
    work_size: int = 320
    perceptual: bool = True
    # 1 - SSIM's weight: 2.0 left SSIM under 0.90 with the low-frequency part; with redetect 10 left one photo per call
    # at 0.899, 11 at 0.9004
    quality_weight: float = 11.0
    objective: str = "dp2vl"  # by name, from the plugins' register_objectives
    # EOT transforms by name (None: every registered one). What sharing does to a photo, without the no-change draw,
    # crop and mirror: JPEG 75 / resize 0.5 left SFace 27 / 45 % of affiliations, against 34 / 57 % with every one.
    transforms: tuple[str, ...] | None = ("RandomJPEG", "RandomResize", "RandomBlur", "RandomAlign")
    method: Literal["sign", "adam"] = "adam"
    step_size: float = 0.25  # Adam's step as a fraction of ε (sign steps: 2.5·ε / steps)
    momentum: float = 0.0
    delta_scale: float = 1.0  # δ optimised on a grid this fraction of the working size (low frequency)
    # A second part of δ on a quarter-size grid within low_eps·ε everywhere, texture or not: what resize 0.5 and JPEG
    # keep of a photo. Resize 0.5 cost SFace 33-36 points of protection without it, 23-25 with it (docs/photo_guard.md).
    low_scale: float = 0.25
    low_eps: float = 0.5
    # On the steps EfficientNet-Lite0 sits out, SFace also sees a further EOT draw on the idle core (step_terms): after
    # JPEG 75 / resize 0.5 SFace leaked 19 / 28 % instead of 20 / 31 % (the report's linear heads); a face 1.21->1.40 s.
    second_view: bool = True
    # The EOT draws (by name) the second view takes; None: any of the step's. JPEG only (seventeenth session,
    # docs/photo_guard.md): one photo per call JPEG 75 cost SFace about 7 / 9 points instead of 10 / 12, resize 0.5
    # 10 / 12 instead of 8 / 10, and at 24 steps the MLP head's JPEG cost stayed at 12: a trade, not the default.
    second_view_draws: tuple[str, ...] | None = None
    # After each resize draw, move every face to where a face finder puts it on the photo's half-size copy
    # (photo_guard.redetect). In the report resize 0.5 then costs SFace 9.5 / 9.3 points of protection instead of
    # 17 / 18; one photo per call 8 / 10 instead of 18 / 18 (docs/photo_guard.md, "A resize draw that moves the face").
    redetect: bool = True
    chunk: int = 8
    people: bool = True  # remember the people seen across calls (photo_guard.people), in the owner's private state
    seed: int = 0
    device: str = "auto"

    @property
    def eps(self) -> float:
        if self.strength not in STRENGTHS:
            raise PhotoGuardError(f"strength must be one of {', '.join(STRENGTHS)}, got {self.strength!r}")
        return STRENGTHS[self.strength]

    def to_dict(self) -> dict:
        return {**asdict(self), "eps": self.eps}


@dataclass
class ProtectedPhoto:
    """The protected pixels ``[3, H, W]`` (8-bit values in [0, 1]) and what was measured on them."""

    pixels: Tensor
    stats: dict = field(default_factory=dict)


def perceptual_budget(images: Tensor, eps: float, floor: float = 0.25) -> Tensor:
    """Per-pixel budget ``[B, 1, H, W]`` in ``[floor·ε, ε]``: full ε in texture and edges, less on smooth areas, where
    the eye sees noise first (contrast masking)."""
    y = ops.rgb_to_ycbcr(images)[:, :1]
    mean = F.avg_pool2d(y, 5, 1, 2, count_include_pad=False)
    std = (F.avg_pool2d(y * y, 5, 1, 2, count_include_pad=False) - mean * mean).clamp_min(0).sqrt()
    scale = std.flatten(1).quantile(0.6, dim=1).clamp_min(1e-3).view(-1, 1, 1, 1)
    return eps * (floor + (1 - floor) * (std / scale).clamp(0, 1))


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


def protect_set(
    images: Sequence[Tensor],
    config: ProtectConfig | None = None,
    encoders: Sequence[Encoder] | None = None,
    anchor: dict[str, Tensor] | None = None,
    owner: bytes | None = None,
    people: PeopleMemory | None = None,
    progress=None,
    measure_result: bool = True,
    view: CleanView | None = None,
) -> list[ProtectedPhoto]:
    """Protect one person's photo set together.

    Args:
        images: ``[3, H, W]`` RGB tensors in [0, 1], any sizes.
        config: :class:`ProtectConfig`.
        encoders: ready encoders (else built from ``config.encoders``).
        anchor: for ``target="anchor"``, the target embedding per encoder name (default: the owner's anchors).
        owner: the secret the default anchors are drawn from (default: this machine's owner secret; the evaluation
            simulates many owners).
        people: the owner's :class:`~photo_guard.people.PeopleMemory`: each photo is pushed away from its person's
            centroid over every call so far (default: from the whole set's centroid, this call's photos only).
        progress: optional callable ``(step, loss)`` per PGD step.
        measure_result: fill each result's ``stats`` with :func:`measure` (callers that measure the written files
            instead pass False).
        view: the photos' :class:`CleanView` when the caller already has it (it measures the result with it too).
    Returns:
        one :class:`ProtectedPhoto` per input, in order.
    """
    cfg = config or ProtectConfig()
    device = resolve(cfg.device)
    encs = [e.to(device) for e in (encoders or [build_encoder(n) for n in cfg.encoders])]
    names = cfg.transforms if cfg.transforms is not None else tuple(registry.transform_names())
    second = _second_view_names(cfg, names)  # checked before the work, not once per chunk
    # Each photo gets a working copy at its own aspect ratio; photos sharing a working shape are optimised together.
    view = view or clean_view(images, encs, cfg.work_size, device)
    works, groups, aligns, clean = view.works, view.groups, view.aligns, view.embeddings
    if people is not None:
        centroid = people.assign(clean)  # [N, D]: each photo's person, across calls
    else:
        centroid = {n: _unit(_unit(z).mean(0)).expand_as(z) for n, z in clean.items()}  # the whole set's
    target = _targets(cfg.target, clean, centroid, anchor, owner, device)

    eps = cfg.eps
    transforms = registry.transforms(cfg.transforms) if cfg.eot_samples else []
    objective = registry.objective(cfg.objective)
    step = cfg.step_size * eps if cfg.method == "adam" else 2.5 * eps / max(1, cfg.steps)
    pgd_config = PGDConfig(
        eps=eps,
        steps=cfg.steps,
        step_size=step,
        method=cfg.method,
        momentum=cfg.momentum,
        eot_samples=max(1, cfg.eot_samples),
        seed=cfg.seed,
        scale=cfg.delta_scale,
        low_scale=cfg.low_scale,
        low_eps=cfg.low_eps * eps,
    )
    deltas: dict[int, Tensor] = {}
    for idx in groups.values():
        for chunk in (idx[i : i + cfg.chunk] for i in range(0, len(idx), cfg.chunk)):
            x = torch.stack([works[i] for i in chunk])
            align = torch.stack([aligns[i] for i in chunk])
            tgt = {n: t[chunk] for n, t in target.items()}
            cen = {n: c[chunk] for n, c in centroid.items()}

            seed = photo_seed(x, cfg.seed, owner)  # draws differ per photo
            views = torch.Generator().manual_seed((seed + 1) % 2**63)
            draws = _redetected(transforms, names, x, align) if cfg.redetect else transforms
            steps = StepTerms(encs, progress, [t for n, t in zip(names, draws) if n in second], views)

            def loss_fn(adv: Tensor, align=align, tgt=tgt, cen=cen, x=x, steps=steps) -> Tensor:
                return objective(adv, x, steps.encoders(), align, cen, tgt, cfg.quality_weight)

            budget = perceptual_budget(x, eps) if cfg.perceptual else None
            pgd = PGD(replace(pgd_config, seed=seed), draws)
            delta = pgd.perturb(x, loss_fn, eps=budget, callback=steps.done).delta
            deltas.update({i: delta[j] for j, i in enumerate(chunk)})

    results = []
    for i, img in enumerate(images):
        full = img.to(device)
        d = ops.resize(deltas[i][None], (full.shape[-2], full.shape[-1]), antialias=False)[0].clamp(-eps, eps)
        out = ((full + d).clamp(0, 1) * 255).round() / 255  # what the 8-bit file will hold
        results.append(ProtectedPhoto(out.cpu()))
    if measure_result:
        stats_list = measure(images, [r.pixels for r in results], encs, cfg.work_size, device, view)
        for r, stats in zip(results, stats_list):
            r.stats = stats
    return results


def _second_view_names(cfg: ProtectConfig, names: Sequence[str]) -> set[str]:
    """The EOT draws (by name, among ``names``) the face encoders' second view picks from: ``cfg.second_view_draws``,
    every one when that is None, none with ``second_view`` off."""
    if not cfg.second_view:
        return set()
    wanted = set(names if cfg.second_view_draws is None else cfg.second_view_draws)
    unknown = sorted(wanted - set(names))
    if unknown:
        raise PhotoGuardError(f"second_view_draws {', '.join(unknown)} not among the EOT draws {', '.join(names)}")
    return wanted


def _redetected(transforms: list, names: Sequence[str], x: Tensor, align: Tensor) -> list:
    """``transforms`` with the resize draw followed by each photo's re-detected face warp (:mod:`.redetect`)."""
    if "RandomResize" not in names[: len(transforms)]:
        return transforms  # no resize draw (or no EOT at all): no face detection to pay for
    matrix = redetected_warps(x, align)
    return [Redetected(t, matrix) if n == "RandomResize" else t for n, t in zip(names, transforms)]


def _targets(
    kind: str,
    clean: dict[str, Tensor],
    centroid: dict[str, Tensor],
    anchor: dict[str, Tensor] | None,
    owner: bytes | None,
    device: torch.device,
) -> dict[str, Tensor]:
    if kind == "antithetical":
        return {n: -c for n, c in centroid.items()}
    if kind == "per-photo":
        return {n: -_unit(z) for n, z in clean.items()}
    if kind == "anchor":
        anchor = anchor or {n: anchor_direction(n, z.shape[-1], owner) for n, z in clean.items()}
        return {n: _unit(anchor[n].to(device)).expand_as(clean[n]) for n in clean}
    raise PhotoGuardError(f"unknown target {kind!r}; use antithetical, per-photo or anchor")
