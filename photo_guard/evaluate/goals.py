"""The issue's goals, judged from the experiment rows."""

from __future__ import annotations

from .task import EvalConfig, ProtectRun

__all__ = ["goals"]


def goals(rows: list[dict], cfg: EvalConfig) -> dict:
    """The goals, per attacker encoder and head: white-box leakage within 10 points of chance (also judged for the
    attacker who answers with the least likely class, for the adaptive attacker, for the other targets and for photos
    protected one at a time), transfer leakage (an attacker encoder the run did not optimise against, including one
    outside the ensemble altogether) at least halfway down to chance, and JPEG 75 / resize 0.5 costing a white-box
    attacker at most 10 points of protection (sets, and photos protected one at a time); the learners that adapt
    (fine-tuned encoder, mini VLM) at least halfway down from their clean-trained leakage to chance."""
    chance, main = 1 / cfg.labels, ProtectRun(cfg.ensemble).name
    out: dict[str, dict] = {"white_box": {}, "transfer": {}, "postprocess": {}, "learners": {}}
    for r in rows:
        if r["experiment"] == "learner":
            seen = "" if r["white_box"] else " (not optimised against)"
            out["learners"][f"{r['attacker']}/{r['learner']}{seen}"] = _halfway(r, r["chance"])
            continue
        key = f"{r['attacker']}/{r['head']}"
        default = r["experiment"] in ("target", "arrival", "adaptive") or (
            r["experiment"] == "strength" and r["strength"] == "default"
        )
        adaptive = " (adaptive attacker)" if r["experiment"] == "adaptive" else ""
        if default and r["white_box"]:
            key += ("" if r["run"] == main else f" ({r['run']})") + adaptive
            out["white_box"][key] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "met": abs(r["protected_acc"] - chance) <= 0.10,
                "inverted_acc": r["protected_inverted_acc"],
                "inverted_met": abs(r["protected_inverted_acc"] - chance) <= 0.10,
            }
        elif (default or r["experiment"] == "ensemble") and not r["white_box"]:
            out["transfer"][f"{key} vs {r['run']}{adaptive}"] = _halfway(r, chance)
    protection = {
        (f"{r['attacker']}/{r['head']}", r["run"]): r["clean_acc"] - r["protected_acc"]
        for r in rows
        if (r["experiment"] == "arrival" or (r["experiment"] == "strength" and r["run"] == main)) and r["white_box"]
    }
    for r in rows:
        if r["experiment"] == "postprocess" and r["postprocess"] in ("jpeg75", "resize0.5") and r["white_box"]:
            key, run = f"{r['attacker']}/{r['head']}", r["run"]
            kept = r["clean_acc"] - r["protected_acc"]
            out["postprocess"][f"{key} {r['postprocess']}" + ("" if run == main else f" ({run})")] = {
                "protection": protection[key, run],
                "protection_after": kept,
                "met": protection[key, run] - kept <= 0.10,
            }
    return out


def _halfway(row: dict, chance: float) -> dict:
    """Leakage at least halfway down from the clean-trained baseline to ``chance``."""
    needed = row["clean_acc"] - (row["clean_acc"] - chance) / 2
    return {
        "protected_acc": row["protected_acc"],
        "clean_acc": row["clean_acc"],
        "needed": needed,
        "met": row["protected_acc"] <= needed,
    }
