"""One projected-gradient optimiser for two jobs.

* :class:`PGD` finds an L-inf-bounded perturbation ``δ`` of a batch of images that minimises a loss, with sign or Adam
  steps, a random start, momentum (MI-FGSM) and expectation over random transforms (EOT). photo_guard protects with it.
* :func:`optimise_vector` minimises a loss over an unbounded continuous vector (optionally squashed by ``tanh``) with
  the same step rules; monai_amif's white-box key-search attack uses it.

Losses are *minimised*. A loss function returns a scalar or a per-sample ``[B]`` tensor (summed, so each sample's
gradient does not depend on the batch size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from .eot import Transform

__all__ = ["PGDConfig", "PGD", "PGDResult", "optimise_vector", "VectorResult"]

LossFn = Callable[[Tensor], Tensor]
Method = Literal["sign", "adam"]


@dataclass
class PGDConfig:
    """Settings of :class:`PGD`.

    Attributes:
        eps: L-inf budget in ``[0, 1]`` intensity units (8/255 by default).
        steps: gradient steps.
        step_size: sign-step length or Adam learning rate; ``None`` -> ``2.5 * eps / steps`` (Madry et al.).
        method: ``"sign"`` (PGD) or ``"adam"``.
        random_start: start from a uniform draw in the budget instead of zero.
        momentum: MI-FGSM decay on the L1-normalised gradient (0 disables; sign steps only).
        eot_samples: transform draws averaged per step (each draw applies one transform chosen at random).
        seed: seeds the random start and the transform draws; ``None`` uses torch's global generator.
        scale: δ lives on a grid ``scale`` times the image's size and is upsampled bilinearly (1: every pixel free).
            A coarser δ is a low-frequency perturbation, which down-scaling and JPEG keep.
        low_scale: with ``0 < low_scale < 1``, δ gains a second, low-frequency part on a grid ``low_scale`` times the
            image's size, upsampled bilinearly and added; it keeps to ``low_eps`` everywhere, outside the per-pixel
            budget, and the sum to ``eps`` (0: no such part).
        low_eps: the low-frequency part's L-inf budget in intensity units (at most ``eps``).
    """

    eps: float = 8 / 255
    steps: int = 40
    step_size: float | None = None
    method: Method = "sign"
    random_start: bool = True
    momentum: float = 0.0
    eot_samples: int = 1
    seed: int | None = 0
    scale: float = 1.0
    low_scale: float = 0.0
    low_eps: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.eps <= 1:
            raise ValueError(f"eps must lie in [0, 1], got {self.eps}")
        if self.steps < 0 or self.eot_samples < 1:
            raise ValueError("steps must be >= 0 and eot_samples >= 1")
        if self.method not in ("sign", "adam"):
            raise ValueError(f"method must be 'sign' or 'adam', got {self.method!r}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must lie in (0, 1], got {self.scale}")
        if not 0 <= self.low_scale < 1 or not 0 <= self.low_eps <= self.eps:
            raise ValueError(
                f"low_scale must lie in [0, 1) and low_eps in [0, eps], got {self.low_scale}, {self.low_eps}"
            )

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / max(1, self.steps)


@dataclass
class PGDResult:
    """``delta``: the perturbation (``images + delta`` lies in ``[0, 1]``); ``losses``: the mean loss per step."""

    delta: Tensor
    losses: list[float] = field(default_factory=list)

    def apply(self, images: Tensor) -> Tensor:
        return (images + self.delta).clamp(0, 1)


def _reduce(loss: Tensor) -> Tensor:
    return loss.sum() if loss.dim() else loss


def _eot_loss(
    loss_fn: LossFn, x: Tensor, transforms: Sequence[Transform], samples: int, generator: torch.Generator | None
) -> Tensor:
    if not transforms:
        return _reduce(loss_fn(x))
    total = x.new_zeros(())
    for _ in range(samples):
        t = transforms[int(torch.randint(len(transforms), (), generator=generator))]
        total = total + _reduce(loss_fn(t(x, generator)))
    return total / samples


class PGD:
    """Batched L-inf projected gradient descent with EOT.

    Args:
        config: a :class:`PGDConfig`.
        transforms: random transforms to average the loss over (see :mod:`guard_core.eot`); empty for none.

    Example:
        >>> pgd = PGD(PGDConfig(eps=8/255, steps=10))
        >>> x = torch.rand(2, 3, 32, 32)
        >>> result = pgd.perturb(x, lambda adv: adv.mean((1, 2, 3)))
        >>> bool(result.delta.abs().max() <= 8/255)
        True
    """

    def __init__(self, config: PGDConfig | None = None, transforms: Sequence[Transform] = ()) -> None:
        self.config = config or PGDConfig()
        self.transforms = list(transforms)

    def perturb(
        self,
        images: Tensor,
        loss_fn: LossFn,
        eps: Tensor | None = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> PGDResult:
        """Find ``δ`` minimising ``loss_fn(images + δ)``.

        Args:
            images: ``[B, C, H, W]`` in ``[0, 1]``.
            loss_fn: maps perturbed images to a scalar or ``[B]`` loss.
            eps: optional per-pixel budget broadcastable to ``images`` (a perceptual mask); each entry is capped at
                ``config.eps``. It bounds the main part of δ; ``config.low_scale``'s low-frequency part adds within
                ``config.low_eps``.
            callback: called with ``(step, loss)`` after each step (progress bars).
        Returns:
            :class:`PGDResult`; ``|δ| <= eps`` holds exactly after every step (``config.eps`` with a low-frequency
            part) and ``images + δ`` stays in ``[0, 1]``.
        """
        cfg = self.config
        images = images.detach()
        budget = torch.full_like(images, cfg.eps) if eps is None else eps.to(images).clamp(0, cfg.eps).expand_as(images)
        gen = torch.Generator().manual_seed(cfg.seed) if cfg.seed is not None else None
        delta = _Delta(images, budget, cfg, gen)
        stepper = _Stepper(delta.params, cfg.method, cfg.alpha, cfg.momentum)
        losses: list[float] = []
        for step in range(cfg.steps):
            loss = _eot_loss(loss_fn, images + delta.full(), self.transforms, cfg.eot_samples, gen)
            stepper.step(loss)
            delta.project()
            losses.append(float(loss.detach()) / images.shape[0])
            if callback is not None:
                callback(step, losses[-1])
        with torch.no_grad():
            return PGDResult(delta.full().detach(), losses)


class _Delta:
    """δ as the loss sees it, made of the parameters the steps move: the main part on its grid (``scale``) within the
    per-pixel budget, plus, with ``low_scale``, a low-frequency part within ``low_eps`` everywhere; the sum stays
    within ``eps`` and keeps ``images + δ`` in ``[0, 1]``."""

    def __init__(self, images: Tensor, budget: Tensor, cfg: PGDConfig, gen: torch.Generator | None) -> None:
        self.lo, self.hi = torch.maximum(-budget, -images), torch.minimum(budget, 1 - images)
        self.grid = _Grid(images.shape, cfg.scale)
        coarse = self.grid.down(budget)
        # On a coarse grid δ keeps to the pooled budget; the full-resolution bounds hold after upsampling.
        self.c_lo, self.c_hi = (self.lo, self.hi) if self.grid.identity else (-coarse, coarse)
        main = torch.zeros_like(coarse)
        if cfg.random_start:
            main = (torch.rand(coarse.shape, generator=gen) * 2 - 1).to(images) * coarse
        self.main = torch.clamp(main, self.c_lo, self.c_hi).requires_grad_(True)
        self.params = [self.main]
        self.low: Tensor | None = None
        if cfg.low_scale:
            self.low_grid, self.low_eps = _Grid(images.shape, cfg.low_scale), cfg.low_eps
            self.low = images.new_zeros((*images.shape[:2], *self.low_grid.size)).requires_grad_(True)
            self.params.append(self.low)
            self.f_lo, self.f_hi = (-images).clamp(min=-cfg.eps), (1 - images).clamp(max=cfg.eps)

    def full(self) -> Tensor:
        """δ at the images' resolution ``[B, C, H, W]``."""
        d = self.main if self.grid.identity else torch.clamp(self.grid.up(self.main), self.lo, self.hi)
        if self.low is not None:
            d = torch.clamp(d + self.low_grid.up(self.low), self.f_lo, self.f_hi)
        return d

    @torch.no_grad()
    def project(self) -> None:
        """Each part back into its budget after a step."""
        self.main.copy_(torch.clamp(self.main, self.c_lo, self.c_hi))
        if self.low is not None:
            self.low.clamp_(-self.low_eps, self.low_eps)


class _Grid:
    """The coarse grid δ is optimised on (``scale < 1``) and the way to and from full resolution."""

    def __init__(self, shape: torch.Size, scale: float) -> None:
        self.full = (shape[-2], shape[-1])
        self.size = (max(1, round(shape[-2] * scale)), max(1, round(shape[-1] * scale)))
        self.identity = self.size == self.full

    def down(self, x: Tensor) -> Tensor:
        return x if self.identity else torch.nn.functional.adaptive_avg_pool2d(x, self.size)

    def up(self, x: Tensor) -> Tensor:
        if self.identity:
            return x
        return torch.nn.functional.interpolate(x, self.full, mode="bilinear", align_corners=False)


def _l1_normalise(g: Tensor) -> Tensor:
    """Scale each sample's gradient (the whole vector for 1-D) to unit mean absolute value."""
    dims = tuple(range(1, g.dim())) if g.dim() > 1 else tuple(range(g.dim()))
    return g / g.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12)


class _Stepper:
    """The shared update rule: sign steps (with optional momentum) or Adam, minimising."""

    def __init__(self, params: list[Tensor], method: Method, lr: float, momentum: float = 0.0) -> None:
        self.params, self.method, self.lr, self.momentum = params, method, lr, momentum
        self.velocity = [torch.zeros_like(p) for p in params]
        self.adam = torch.optim.Adam(params, lr=lr) if method == "adam" else None

    def step(self, loss: Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        with torch.no_grad():
            for p, g, v in zip(self.params, grads, self.velocity):
                g = torch.zeros_like(p) if g is None else g
                if self.adam is not None:
                    p.grad = g
                    continue
                if self.momentum:
                    g = v.mul_(self.momentum).add_(_l1_normalise(g))
                p.sub_(self.lr * g.sign())
        if self.adam is not None:
            self.adam.step()
            self.adam.zero_grad(set_to_none=True)


@dataclass
class VectorResult:
    """``vector``: the optimised value as the loss saw it (after ``tanh`` when bounded); ``losses`` per step."""

    vector: Tensor
    losses: list[float] = field(default_factory=list)


def optimise_vector(
    loss_fn: LossFn,
    init: Tensor,
    steps: int = 1000,
    lr: float = 0.05,
    method: Method = "adam",
    bound: Literal["none", "tanh"] = "none",
    momentum: float = 0.0,
    callback: Callable[[int, float], None] | None = None,
) -> VectorResult:
    """Minimise ``loss_fn(v)`` over an unbounded continuous vector ``v`` (e.g. a licence-key input).

    Args:
        init: starting value ``[..., D]``; with ``bound="tanh"`` the loss sees ``tanh(raw)``, so values stay in (-1, 1),
            and ``init`` is the starting *output* (clipped to ±0.999 and passed through ``atanh``).
        method: ``"adam"`` or ``"sign"`` steps of size ``lr``.
    """
    if bound == "tanh":
        raw = torch.atanh(init.detach().clamp(-0.999, 0.999)).clone().requires_grad_(True)
        view: Callable[[Tensor], Tensor] = torch.tanh
    elif bound == "none":
        raw = init.detach().clone().requires_grad_(True)
        view = lambda v: v  # noqa: E731
    else:
        raise ValueError(f"bound must be 'none' or 'tanh', got {bound!r}")
    stepper = _Stepper([raw], method, lr, momentum)
    losses: list[float] = []
    for step in range(steps):
        loss = _reduce(loss_fn(view(raw)))
        stepper.step(loss)
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(step, losses[-1])
    return VectorResult(view(raw).detach(), losses)
