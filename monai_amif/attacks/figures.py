"""``amif attack``'s PNG figures (:mod:`.report` writes them beside the tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from guard_core.report import pyplot, save_figure

__all__ = ["grid_figure", "far_figure", "finetune_figure"]


def grid_figure(examples: dict, path: Path) -> Path:
    """The example outputs, one panel each (``name -> [H, W]`` image in [0, 1])."""
    plt = pyplot()
    n = len(examples)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, img) in zip(axes.flat, examples.items()):
        ax.imshow(np.asarray(img), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
    return save_figure(fig, path)


def far_figure(wk: dict, path: Path) -> Path:
    """The wrong-key attack: false-accept rate and lowest mark NCC against bits flipped from the right key."""
    plt = pyplot()
    d = [int(k) for k in wk["by_distance"]]
    far = [v["far"] for v in wk["by_distance"].values()]
    ncc = [v["mark_ncc_min"] for v in wk["by_distance"].values()]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(d, far, "o-", label="false-accept rate")
    ax.plot(d, ncc, "s--", label="lowest mark_ncc")
    ax.axhline(wk["random"]["far"], color="grey", lw=0.8, label=f"FAR, {wk['random']['keys']} random keys")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits flipped from the right key")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def finetune_figure(ft: dict, path: Path) -> Path:
    """The fine-tuning attack: PSNR to the authorised output and mark NCC along the steps, stolen and scratch."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, style in (("stolen", "o-"), ("scratch", "s--")):
        steps = ft[name]["steps"]
        a.plot(steps, [c["psnr"] for c in ft[name]["curve"]], style, label=name)
        b.plot(steps, [c["mark_ncc"] for c in ft[name]["curve"]], style, label=name)
    a.set(xlabel="fine-tuning steps", ylabel="PSNR to authorised (dB)")
    b.set(xlabel="fine-tuning steps", ylabel="mark_ncc")
    a.legend(fontsize=8)
    return save_figure(fig, path)
