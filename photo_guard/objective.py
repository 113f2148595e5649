"""DP2-VL's objective, the default registered under ``"dp2vl"`` (:mod:`photo_guard.default_plugins`): one term per
encoder (away from the photo's person, toward its target) and a quality term (SSIM to the clean photo), summed side by
side on the cores. :func:`photo_guard.protect.protect_set` calls it through :func:`photo_guard.registry.objective`
every PGD step, so any registered objective takes the same arguments."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor

from guard_core import ops
from guard_core.parallel import parallel_sum

from .encoders import Encoder

__all__ = ["dp2vl_loss", "dp2vl_terms"]


def dp2vl_loss(
    adv: Tensor,
    clean: Tensor,
    encoders: Sequence[Encoder],
    align: Tensor,
    centroid: dict[str, Tensor],
    target: dict[str, Tensor],
    quality_weight: float = 0.0,
) -> Tensor:
    """Per-photo DP2-VL loss ``[B]``: ``Σ_e w_e · (max(cos(z_e, c_e) - s_e, 0) - cos(z_e, t_e))`` (``centroid`` and
    ``target`` ``[B, D]`` per encoder: each photo's own; ``s_e`` the encoder's ``away_stop``, ``w_e`` its
    ``loss_weight``) plus ``quality_weight · (1 - SSIM)`` to the clean photo (which keeps the change where the eye
    does not look for it). ``encoders``: those whose terms this step takes (:func:`protect_set` passes an encoder with
    ``term_every = k`` on every k-th step only), as for any registered objective.

    The push away from the person's centroid stops at orthogonal or before: pushed on past it, an encoder that moves
    easily (EfficientNet-Lite0) put every set near the mirror of its person, which a head learns as an anti-label (its
    least likely class recovered 35-38 % of the affiliations; 21-22 % stopping at orthogonal, 12 % at cos 0.1,
    docs/photo_guard.md)."""
    terms = dp2vl_terms(clean, encoders, align, centroid, target, quality_weight)
    # One photo leaves a core idle in each term; a batch fills both (benchmarks/objective_speed.py). One encoder beside
    # the quality term, a fifth of its time, would leave a core idle most of the step: all threads on each in turn.
    return parallel_sum(adv, terms, side_by_side=len(adv) == 1 and len(encoders) > 1)


def dp2vl_terms(
    clean: Tensor,
    encoders: Sequence[Encoder],
    align: Tensor,
    centroid: dict[str, Tensor],
    target: dict[str, Tensor],
    quality_weight: float = 0.0,
) -> list[Callable[[Tensor], Tensor]]:
    """:func:`dp2vl_loss`'s terms, each a function of the perturbed photos ``[B, 3, H, W]`` -> ``[B]``: one per
    encoder, then the quality term (when ``quality_weight``). They share nothing but the photos."""

    def encoder_term(e: Encoder) -> Callable[[Tensor], Tensor]:
        def loss(x: Tensor) -> Tensor:
            z = e.embed(x, align if e.face else None)
            away = (F.cosine_similarity(z, centroid[e.name], dim=-1) - e.away_stop).clamp_min(0)  # not to its mirror
            return e.loss_weight * (away - F.cosine_similarity(z, target[e.name], dim=-1))

        return loss

    if not quality_weight:
        return [encoder_term(e) for e in encoders]
    ssim_to_clean = _ssim_to(clean)

    def quality_term(x: Tensor) -> Tensor:
        return quality_weight * (1 - ssim_to_clean(x))

    return [encoder_term(e) for e in encoders] + [quality_term]


_last_ssim_to: tuple[weakref.ref[Tensor], int, Callable[[Tensor], Tensor]] | None = None


def _ssim_to(clean: Tensor) -> Callable[[Tensor], Tensor]:
    """``ops.ssim_to(clean, 1.0)``, kept while the same unchanged tensor comes back: PGD asks for the objective's terms
    every step with the same clean photos, whose moments then are filtered once per set instead of once per step."""
    global _last_ssim_to
    if clean.requires_grad:  # a reference that is itself optimised: its gradient is followed, nothing kept
        return lambda x: ops.ssim(x, clean, 1.0)
    last = _last_ssim_to
    if last is not None and last[0]() is clean and last[1] == clean._version:
        return last[2]
    against = ops.ssim_to(clean, 1.0)
    _last_ssim_to = (weakref.ref(clean), clean._version, against)
    return against
