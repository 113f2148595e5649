"""Who is in the simulation, what runs: the evaluation config, the protection runs and the sampled task."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from ..encoders import DEFAULT_ENCODERS
from ..errors import PhotoGuardError
from ..photo_io import SUPPORTED_SUFFIXES
from ..protect import ProtectConfig, Target

__all__ = ["EvalConfig", "ProtectRun", "Task", "sample_task", "ImageSet"]

ImageSet = list[Tensor]  # [3, H, W] RGB in [0, 1]


@dataclass
class EvalConfig:
    """What the simulation runs (see :meth:`protect_runs` for the protection runs)."""

    people: int = 20
    train: int = 5
    queries: int = 10
    labels: int = 10
    draws: int = 5
    steps: int = ProtectConfig.steps  # the tool's default
    seed: int = 0
    attackers: tuple[str, ...] = DEFAULT_ENCODERS  # every encoder protection uses is also an attacker
    heads: tuple[str, ...] = ("linear", "mlp")
    ensemble: tuple[str, ...] = DEFAULT_ENCODERS
    strengths: tuple[str, ...] = ("low", "default", "strong")
    ratios: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    postprocess: tuple[str, ...] = ("jpeg50", "jpeg75", "jpeg90", "resize0.5", "blur", "screenshot")
    targets: tuple[Target, ...] = ("antithetical",)  # other DP2-VL targets compared at default strength
    one_by_one: bool = True  # also protect every photo on its own, as the hosts do (goal 5)
    adaptive_photos: int = 40  # the adaptive attacker's own photos (0: no adaptive attacker)
    learners: tuple[str, ...] = ("finetune", "vlm")  # learners that adapt (goal 4), on the main run
    finetune_draws: int = 2  # affiliation draws for the (costly) end-to-end fine-tuning
    finetune_epochs: int = 10
    vlm_steps: int = 300  # the mini VLM's training steps (full batch)
    device: str = "cpu"

    def protect_runs(self) -> dict[str, ProtectRun]:
        """The full ensemble at every strength; the ensemble less one encoder at default strength, for each encoder
        (leave-one-encoder-out: each attacker encoder is met once not optimised against, the transfer case); the
        other ``targets`` at default strength; every photo protected on its own (``one_by_one``)."""
        runs = [ProtectRun(self.ensemble, s) for s in self.strengths]
        if len(self.ensemble) > 1:
            runs += [
                ProtectRun(tuple(e for e in self.ensemble if e != out), "default", experiment="ensemble")
                for out in reversed(self.ensemble)  # for two encoders: each alone, in ensemble order
            ]
        runs += [ProtectRun(self.ensemble, "default", t, "target") for t in self.targets if t != "anchor"]
        if self.one_by_one:
            runs.append(ProtectRun(self.ensemble, "default", arrival="one", experiment="arrival"))
        return {r.name: r for r in runs}


@dataclass(frozen=True)
class ProtectRun:
    """One way of protecting every shared set: the ensemble optimised against, the strength, the DP2-VL target, and
    whether each set is protected together (``arrival="set"``) or photo by photo as it arrives (``"one"``)."""

    ensemble: tuple[str, ...]
    strength: str = "default"
    target: Target = "anchor"
    experiment: str = "strength"  # which report table: strength, ensemble (transfer), target or arrival
    arrival: str = "set"

    @property
    def name(self) -> str:
        target = "" if self.target == "anchor" else f"/{self.target}"
        return f"{'+'.join(self.ensemble)}@{self.strength}{target}" + ("/one-by-one" if self.arrival == "one" else "")


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
