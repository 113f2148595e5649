"""Writing ``amif attack``'s report: Markdown tables, the JSON of every number, and PNG figures."""

from __future__ import annotations

from pathlib import Path

from guard_core.report import write_results

from .common import FUSION_COLUMNS
from .figures import far_figure, finetune_figure, grid_figure
from .harness import AttackRun

__all__ = ["write_report", "markdown"]


def write_report(run: AttackRun, out_dir: Path, command: str = "") -> list[Path]:
    """``report.md``, ``results.json``, ``grid.png``, ``far_vs_bits.png`` and ``finetune.png`` (the last two when
    those attacks ran) under ``out_dir``; returns the paths written."""
    res = run.results
    paths = write_results(out_dir, res, markdown(res, command), command)
    paths.append(grid_figure(run.examples, out_dir / "grid.png"))
    if "wrong_keys" in res:
        paths.append(far_figure(res["wrong_keys"], out_dir / "far_vs_bits.png"))
    if "finetune" in res:
        paths.append(finetune_figure(res["finetune"], out_dir / "finetune.png"))
    return paths


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _quality_row(name: str, q: dict, extra: str = "") -> str:
    return (
        f"| {name} | {_f(q['psnr'], 1)} (max {_f(q['psnr_max'], 1)}) | {_f(q['ssim'])} | {_f(q['mark_ncc'])} "
        f"(min {_f(q['mark_ncc_min'])}) | {100 * q['escaped']:.0f} %{extra} |"
    )


QUALITY_HEADER = [
    "| output | PSNR to authorised, dB | SSIM to authorised | mark_ncc | escaped |",
    "|---|---|---|---|---|",
]


def markdown(res: dict, command: str = "") -> str:
    th = res["thresholds"]
    lines = [
        "# AMIF: how far the key gate holds",
        "",
        f"Model `{res['model']['weights']}` (key path `{res['model']['key_path']}`, {res['model']['parameters']:,} "
        f"parameters, key fingerprint `{res['model']['fingerprint']}`), attacked on {res['data']['test_pairs']} test "
        f"pairs; what the thief trains, it trains on {res['data']['train_pairs']} training pairs.",
        "",
        f"A result *escapes* when it shows too little of the mark (mark_ncc < {th['mark_visible']}) and also lies "
        f"close to the authorised output (PSNR >= {th['far_psnr_db']} dB); the escaped column is the fraction of "
        "test pairs where that happened. The licence key is used only to score results.",
        "",
    ]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += ["## Goals", "", "| goal | met | measured |", "|---|---|---|"]
    lines += [f"| {g} | {'met' if v['met'] else '**not met**'} | {v['detail']} |" for g, v in res["goals"].items()]
    lines += [
        "",
        "Attack cost (CPU seconds on the machine that ran it): "
        + ", ".join(f"{k} {v:.0f}" for k, v in res.get("seconds", {}).items()),
        "",
    ]
    lines += _reference(res) + _wrong_keys(res) + _removal(res) + _distillation(res) + _key_search(res)
    lines += _finetune(res) + _weight_key(res) + _sealed(res)
    lines += ["![authorised, unauthorised and attacked outputs](grid.png)", ""]
    return "\n".join(lines)


def _fusion_table(rows: dict[str, dict]) -> list[str]:
    out = ["| output | " + " | ".join(FUSION_COLUMNS) + " |", "|---|" + "---|" * len(FUSION_COLUMNS)]
    out += [f"| {n} | " + " | ".join(_f(r[c]) for c in FUSION_COLUMNS) + " |" for n, r in rows.items()]
    return out + [""]


def _reference(res: dict) -> list[str]:
    ref = res["reference"]
    return (
        [
            "## Reference outputs",
            "",
            "Fusion metrics of the fused Y channel against the two sources (docs/design.md "
            "definitions), mean over the test pairs:",
            "",
        ]
        + _fusion_table({"authorised": ref["authorised_fusion"], "unauthorised (no key)": ref["unauthorised_fusion"]})
        + QUALITY_HEADER
        + [_quality_row("unauthorised (no key)", ref["unauthorised"]), ""]
    )


def _wrong_keys(res: dict) -> list[str]:
    if "wrong_keys" not in res:
        return []
    wk = res["wrong_keys"]
    r = wk["random"]
    out = [
        "## Black box 1: wrong keys",
        "",
        f"On pairs {', '.join(wk['pairs'])}. A key is accepted when mark_ncc < 0.5 or its fusion PSNR is within "
        "1 dB of the authorised output's.",
        "",
        "| keys | tried | accepted | false-accept rate | mark_ncc min | mark_ncc mean |",
        "|---|---|---|---|---|---|",
        f"| random | {r['keys']} | {r['accepted']} | {_f(r['far'], 4)} | {_f(r['mark_ncc_min'])} "
        f"| {_f(r['mark_ncc_mean'])} |",
    ]
    out += [
        f"| right key, {d} bit{'s' if d != '1' else ''} flipped | {s['keys']} | {s['accepted']} | {_f(s['far'], 4)} | "
        f"{_f(s['mark_ncc_min'])} | {_f(s['mark_ncc_mean'])} |"
        for d, s in wk["by_distance"].items()
    ]
    return out + ["", "![false-accept rate against bit distance](far_vs_bits.png)", ""]


def _removal(res: dict) -> list[str]:
    if "removal" not in res:
        return []
    rm = res["removal"]
    net = rm["removal_net"]
    return (
        [
            "## Black box 2: removing the mark",
            "",
            "Each cleaner gets the mark's template and the blur's σ (both public). The removal network (MONAI "
            f"BasicUNet, {net['steps']} steps, {net['seconds']:.0f} s) was trained on the mark and blur rendered on "
            "max-rule fusions of the training pairs.",
            "",
        ]
        + QUALITY_HEADER
        + [_quality_row(n, q) for n, q in rm["cleaners"].items()]
        + [""]
    )


def _distillation(res: dict) -> list[str]:
    if "distillation" not in res:
        return []
    d = res["distillation"]
    ref = res["reference"]
    return (
        [
            "## Black box 3: distillation",
            "",
            f"A student (MONAI BasicUNet on the two sources) trained {d['steps']} steps ({d['seconds']:.0f} s) on "
            "(training inputs, unauthorised outputs), measured on the test pairs.",
            "",
        ]
        + QUALITY_HEADER
        + [_quality_row("student", d["result"]), ""]
        + _fusion_table(
            {
                "authorised": ref["authorised_fusion"],
                "student": d["fusion"],
                "unauthorised (no key)": ref["unauthorised_fusion"],
            }
        )
    )


def _key_search(res: dict) -> list[str]:
    if "key_search" not in res:
        return []
    ks = res["key_search"]
    out = [
        "## White box 4: searching the key",
        "",
        "The thief minimises the key-free fusion loss on training crops with Adam. Key searches start from random "
        "±1 keys (restarts run together); the best restart is shown, for the continuous key found and for its signs "
        "(a real key). Bits recovered: signs that match the licence key (a key and its negation count the same for "
        "the parity key path).",
        "",
        "| search | steps | CPU s | bits recovered | PSNR to authorised, dB | SSIM | mark_ncc | escaped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("raw", "tanh"):
        r = ks[name]
        for view in ("continuous", "signs"):
            q = r["best"][view]
            out.append(
                f"| {name} key ({view}) | {r['steps']} x {r['restarts']} | {r['seconds']:.0f} | "
                f"{r['best']['bits_recovered']} / 256 | {_f(q['psnr'], 1)} | {_f(q['ssim'])} | {_f(q['mark_ncc'])} | "
                f"{100 * q['escaped']:.0f} % |"
            )
    out += [
        "",
        "Every restart, mark_ncc / PSNR to authorised:",
        "",
        "| restart | raw key (continuous) | raw key (signs) | tanh key (continuous) | tanh key (signs) |",
        "|---|---|---|---|---|",
    ]
    for i, (raw, tanh) in enumerate(zip(ks["raw"]["runs"], ks["tanh"]["runs"])):
        cells = [
            f"{r[v]['mark_ncc']:.3f} / {r[v]['psnr']:.1f} dB" for r in (raw, tanh) for v in ("continuous", "signs")
        ]
        out.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    out += [
        "",
        "| search | steps | CPU s | bits recovered | PSNR to authorised, dB | SSIM | mark_ncc | escaped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    m = ks["modulation"]
    q = m["result"]
    out.append(
        f"| {m['values']} modulation values | {m['steps']} | {m['seconds']:.0f} | - | {_f(q['psnr'], 1)} | "
        f"{_f(q['ssim'])} | {_f(q['mark_ncc'])} | {100 * q['escaped']:.0f} % |"
    )
    return out + [
        "",
        f"The modulation search moved {100 * m['toward_right']:.0f} % of the way toward the right key's "
        "values (projection on the line from the no-key values).",
        "",
    ]


def _finetune(res: dict) -> list[str]:
    if "finetune" not in res:
        return []
    st, sc = res["finetune"]["stolen"], res["finetune"]["scratch"]
    out = [
        "## White box 5: fine-tuning head start",
        "",
        "The same network trained with the key-free fusion loss on training crops (batch 8, Adam, cosine), from the "
        f"stolen weights (zero key) and from scratch; {st['seconds']:.0f} s and {sc['seconds']:.0f} s.",
        "",
        "| steps | stolen: PSNR to authorised | scratch: PSNR | stolen: mark_ncc | scratch: mark_ncc | "
        "stolen: fusion loss | scratch: fusion loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, a, b in zip(st["steps"], st["curve"], sc["curve"]):
        out.append(
            f"| {s} | {_f(a['psnr'], 1)} | {_f(b['psnr'], 1)} | {_f(a['mark_ncc'])} | {_f(b['mark_ncc'])} | "
            f"{_f(a['fusion_loss'], 1)} | {_f(b['fusion_loss'], 1)} |"
        )
    out += ["", "Fusion metrics at the last step:", ""]
    out += _fusion_table(
        {
            "authorised": res["reference"]["authorised_fusion"],
            "fine-tuned stolen": st["fusion"],
            "trained from scratch": sc["fusion"],
        }
    )
    return out + ["![quality against fine-tuning steps](finetune.png)", ""]


def _weight_key(res: dict) -> list[str]:
    wk = res.get("weight_key")
    if not wk or not wk["applicable"]:
        return []
    return [
        "## White box 6: the key solved from the detector's weights",
        "",
        f"The gated key path's detector holds the right key's parities: Gaussian elimination over GF(2) on their "
        f"signs solved {wk['bits_recovered']} of 256 key bits, and that key opens the model:",
        "",
        *QUALITY_HEADER,
        _quality_row("solved key", wk["result"]),
        "",
    ]


def _sealed(res: dict) -> list[str]:
    if "sealed" not in res:
        return []
    s = res["sealed"]
    return [
        "## Sealed model",
        "",
        s["summary"],
        "",
        QUALITY_HEADER[0],
        QUALITY_HEADER[1],
        _quality_row("sealed, no key (preview)", s["no_key"]),
        _quality_row("sealed, right key", s["right_key"]),
        "",
    ]
