"""One interface for every attack on the key gate (torchattacks' shape): a class per attack, registered by name.

An attack gets the :class:`Target` (the model, its data and the references it is scored against), returns the numbers
for its section of ``results.json`` and judges its own goal. A new attack is one class in one file with
``@register``; the harness, the CLI's ``--attacks`` list and the report's goal table pick it up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm import tqdm

from guard_core.keys import Key

from ..networks import AMIFNet
from .common import PairSet, References, random_crops

__all__ = ["Attack", "Target", "REGISTRY", "register", "Stages"]

log = logging.getLogger(__name__)


@dataclass
class Target:
    """What every attack may use. ``right`` (the licence key) only scores results; no attack optimises against it.

    ``examples`` collects named ``[H, W]`` outputs on test pair ``ex`` for the report's grid; ``shared`` holds what
    one attack leaves for a later one (the trained removal network, the training crops).
    """

    cfg: Any  # AttackConfig (harness imports this module)
    net: AMIFNet
    train: PairSet
    test: PairSet
    refs: References
    right: Tensor = field(repr=False)
    key: Key = field(repr=False)
    crop: int = 128
    ex: int = 0
    sigma: float = 3.0
    examples: dict[str, Tensor] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def training_crops(self) -> tuple[Tensor, Tensor]:
        """Random training crops and the template under each, drawn once and shared by the white-box attacks."""
        if "crops" not in self.shared:
            g = torch.Generator().manual_seed(self.cfg.seed + 1)
            images = self.train.images
            self.shared["crops"] = random_crops(
                [images, self.net.template_at(*images.shape[-2:])], self.crop, self.cfg.search_crops, g
            )
        crops, templates = self.shared["crops"]
        return crops, templates


class Stages:
    """Runs timed stages: each one's seconds go to ``results["seconds"]``, a bar shows the time left."""

    def __init__(self, results: dict, total: int) -> None:
        self.results = results
        self.bar = tqdm(total=total, desc="amif attack", unit="stage")

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        log.info("attack: %s", name)
        self.bar.set_postfix_str(name)
        out = fn(*args, **kwargs)
        self.results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        self.bar.update(1)
        return out


class Attack:
    """Base class. Subclasses set ``name`` (the ``--attacks`` name and the ``results.json`` section), ``stages`` (how
    many timed stages ``run`` reports, for the progress bar) and ``goal_name``; their docstring names the threat
    model."""

    name: ClassVar[str]
    goal_name: ClassVar[str]
    stages: ClassVar[int] = 1

    def run(self, target: Target, stage: Stages) -> dict:
        """Attack ``target``; returns this attack's section of the results."""
        raise NotImplementedError

    def goal(self, section: dict, results: dict) -> dict:
        """``{"met": bool, "detail": str}`` for this attack's section (``results``: every section that ran)."""
        raise NotImplementedError


REGISTRY: dict[str, type[Attack]] = {}


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make ``cls`` runnable by its ``name``."""
    REGISTRY[cls.name] = cls
    return cls
