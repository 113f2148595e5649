"""Writing the fine-tuning attack simulation's report: Markdown tables, the JSON of every number, PNG figures."""

from __future__ import annotations

from pathlib import Path

import torch

from guard_core.report import pyplot, save_figure, write_results

from .experiments import Evaluation

__all__ = ["write_report", "markdown"]

HEAD_NAMES = {"linear": "linear probe", "mlp": "2-layer MLP"}


def write_report(ev: Evaluation, out_dir: Path, command: str = "") -> list[Path]:
    """``report.md``, ``results.json``, ``leakage.png`` and ``before_after.png`` under ``out_dir``; returns the
    paths."""
    paths = write_results(out_dir, ev.results, markdown(ev.results, command), command)
    paths.append(_leakage_figure(ev.results, out_dir / "leakage.png"))
    paths.append(_before_after_figure(ev.examples, out_dir / "before_after.png"))
    return paths


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(res: dict, command: str = "") -> str:
    cfg, chance = res["config"], res["chance"]
    lines = [
        "# photo_guard: the fine-tuning attack simulation",
        "",
        f"{len(res['identities'])} LFW identities, each given a secret affiliation (one of {cfg['labels']}, "
        f"balanced; {cfg['draws']} independent draws averaged). Per identity {cfg['train']} photos are shared "
        "(protected together "
        f"as one owner's set); up to {cfg['queries']} other clean photos per identity are the attacker's questions "
        f"({res['train_photos']} training and {res['query_photos']} question photos). The attacker trains a head on "
        f"frozen encoder features of the shared photos and predicts the affiliation of the questions. Leakage = its "
        f"accuracy; chance = {_pct(chance)}. PGD steps: {cfg['steps']}.",
        "",
    ]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += _goal_lines(res) + _run_table(res) + _strength_table(res) + _learner_table(res)
    lines += _ratio_table(res) + _pp_table(res)
    lines += [
        "![leakage against protection ratio and strength](leakage.png)",
        "",
        "![before/after, difference amplified](before_after.png)",
        "",
    ]
    return "\n".join(lines)


def _goal_lines(res: dict) -> list[str]:
    g = res["goals"]
    out = [
        "## Goals",
        "",
        "| goal | attacker | leakage clean-trained | protected-trained | needed | result |",
        "|---|---|---|---|---|---|",
    ]
    band = f"{_pct(max(0.0, res['chance'] - 0.10))} to {_pct(res['chance'] + 0.10)}"
    for goal, acc, met in (
        ("white box, default strength, 100 % protected", "protected_acc", "met"),
        ("same, attacker answers the least likely class", "inverted_acc", "inverted_met"),
    ):
        out += [
            f"| {goal} | {key} | {_pct(v['clean_acc'])} | {_pct(v[acc])} | {band} | {_met(v[met])} |"
            for key, v in g["white_box"].items()
        ]
    for key, v in g["transfer"].items():
        out.append(
            f"| transfer (not optimised against) | {key} | {_pct(v['clean_acc'])} | {_pct(v['protected_acc'])} | "
            f"≤ {_pct(v['needed'])} | {_met(v['met'])} |"
        )
    for key, v in g.get("learners", {}).items():
        out.append(
            f"| learner that adapts (goal 4) | {key} | {_pct(v['clean_acc'])} | {_pct(v['protected_acc'])} | "
            f"≤ {_pct(v['needed'])} | {_met(v['met'])} |"
        )
    for key, v in g["postprocess"].items():
        out.append(
            f"| post-processing costs ≤ 10 points of protection | {key} | protection {_pct(v['protection'])} | "
            f"after: {_pct(v['protection_after'])} | loss ≤ 10 % | {_met(v['met'])} |"
        )
    return out + [""]


def _run_table(res: dict) -> list[str]:
    out = [
        "## Protection runs",
        "",
        "| run (ensemble@strength) | PSNR dB | SSIM | L-inf /255 | s / photo (2-core CPU) |",
        "|---|---|---|---|---|",
    ]
    for name, r in res["runs"].items():
        sec = f"{r['seconds_per_photo']:.1f}" if r["seconds_per_photo"] else "cached"
        out.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['linf_255']:.1f} | {sec} |")
    return out + [""]


def _rows(res: dict, experiment: str) -> list[dict]:
    return [r for r in res["rows"] if r["experiment"] == experiment]


def _strength_table(res: dict) -> list[str]:
    out = [
        "## White box and transfer",
        "",
        "Every training photo protected. White box: the attacker's encoder was in the ensemble optimised against.",
        "",
        "Last column: an attacker who knows the shared photos were pushed away from their identity answers with "
        "the head's least likely class (what inverts the antithetical target). Runs named `/one-by-one` protected "
        "every photo on its own, as the hosts do; rows marked `adaptive` are the attacker who protected "
        f"{res['config']['adaptive_photos']} photos of their own with the tool and trained on the shared photos' "
        "embeddings mapped back by ridge regression.",
        "",
        "| protected with | attacker encoder | head | white box | clean-trained | protected-trained | "
        "protected-trained, least likely |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in [*_rows(res, "strength"), *_rows(res, "ensemble"), *_rows(res, "target"), *_rows(res, "arrival")]:
        out.append(
            f"| {r['run']} | {r['attacker']} | {HEAD_NAMES[r['head']]} | {'yes' if r['white_box'] else 'no'} | "
            f"{_pct(r['clean_acc'])} | {_pct(r['protected_acc'])} | {_pct(r['protected_inverted_acc'])} |"
        )
    for r in _rows(res, "adaptive"):
        out.append(
            f"| {r['run']} (adaptive) | {r['attacker']} | {HEAD_NAMES[r['head']]} | "
            f"{'yes' if r['white_box'] else 'no'} | {_pct(r['clean_acc'])} | "
            f"{_pct(r['protected_acc'])} | {_pct(r['protected_inverted_acc'])} |"
        )
    return out + [""]


def _learner_table(res: dict) -> list[str]:
    rows = _rows(res, "learner")
    if not rows:
        return []
    cfg = res["config"]
    out = [
        "## Learners that adapt",
        "",
        f"Trained on the shared photos of the main run ({rows[0]['run']}) or on the clean ones, asked about the clean "
        "questions. `finetune`: the attacker's encoder fine-tuned end to end, every layer, with a linear head on the "
        f"affiliation ({cfg['finetune_draws']} draws; batch-norm statistics frozen, mirror augmentation). `vlm`: a "
        "miniature vision-language model (the frozen encoder's embedding as 4 prefix tokens, a 2-layer causal "
        'transformer decoder) trained on the captions "<name> works at <place>" and answering by greedy decoding; '
        f"`vlm place` scores the place (the affiliation, chance {_pct(res['chance'])}), `vlm name` the person "
        f"(chance {_pct(1 / cfg['people'])}).",
        "",
        "| attacker encoder | learner | white box | chance | clean-trained | protected-trained |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['attacker']} | {r['learner']} | {'yes' if r['white_box'] else 'no'} | {_pct(r['chance'])} | "
            f"{_pct(r['clean_acc'])} | {_pct(r['protected_acc'])} |"
        )
    return out + [""]


def _ratio_table(res: dict) -> list[str]:
    rows = _rows(res, "ratio")
    ratios = sorted({r["ratio"] for r in rows})
    out = [
        "## Share of the training photos protected",
        "",
        "| attacker | head | " + " | ".join(f"{_pct(x)}" for x in ratios) + " |",
        "|---|---|" + "---|" * len(ratios),
    ]
    for key in dict.fromkeys((r["attacker"], r["head"]) for r in rows):
        acc = {r["ratio"]: r["protected_acc"] for r in rows if (r["attacker"], r["head"]) == key}
        out.append(f"| {key[0]} | {HEAD_NAMES[key[1]]} | " + " | ".join(_pct(acc[x]) for x in ratios) + " |")
    return out + [""]


def _pp_table(res: dict) -> list[str]:
    out = [
        "## Post-processing by the attacker before training",
        "",
        "Baseline and protected photos go through the same processing; protection = clean-trained minus "
        "protected-trained leakage. Runs named `/one-by-one` protected every photo on its own, as the hosts do.",
        "",
        "| processing | protected with | attacker | head | clean-trained | protected-trained | protection |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in _rows(res, "postprocess"):
        out.append(
            f"| {r['postprocess']} | {r['run']} | {r['attacker']} | {HEAD_NAMES[r['head']]} | {_pct(r['clean_acc'])} | "
            f"{_pct(r['protected_acc'])} | {_pct(r['clean_acc'] - r['protected_acc'])} |"
        )
    return out + [""]


def _leakage_figure(res: dict, path: Path) -> Path:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    order = ["low", "default", "strong"]
    for key in dict.fromkeys((r["attacker"], r["head"]) for r in _rows(res, "ratio")):
        label = f"{key[0]} / {HEAD_NAMES[key[1]]}"
        pts = sorted((r["ratio"], r["protected_acc"]) for r in _rows(res, "ratio") if (r["attacker"], r["head"]) == key)
        ax1.plot([100 * x for x, _ in pts], [100 * y for _, y in pts], marker="o", label=label)
        st = {r["strength"]: r["protected_acc"] for r in _rows(res, "strength") if (r["attacker"], r["head"]) == key}
        xs = [s for s in order if s in st]
        ax2.plot(xs, [100 * st[s] for s in xs], marker="o", label=label)
    for ax, xlabel in ((ax1, "training photos protected (%)"), (ax2, "strength (ε 4 / 8 / 16 of 255)")):
        ax.axhline(100 * res["chance"], color="grey", linestyle="--", label="chance")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("leakage accuracy on clean questions (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _before_after_figure(examples: list[tuple[torch.Tensor, torch.Tensor]], path: Path, gain: float = 10.0) -> Path:
    plt = pyplot()
    n = max(1, len(examples))
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for ax_row, (clean, prot) in zip(axes, examples):
        diff = (0.5 + gain * (prot - clean)).clamp(0, 1)
        for ax, img, title in zip(ax_row, (clean, prot, diff), ("original", "protected", f"difference × {gain:g}")):
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)
