"""The issue's goals, judged from the experiment rows."""

from __future__ import annotations

from .task import EvalConfig, ProtectRun

__all__ = ["goals"]


def goals(rows: list[dict], cfg: EvalConfig) -> dict:
    """The goals, per attacker encoder and head: white-box leakage within 10 points of chance (also judged for the
    attacker who answers with the least likely class, for the adaptive attacker, for the other targets and for photos
    protected one at a time), transfer leakage at least halfway down to chance, and JPEG 75 / resize 0.5 costing at
    most 10 points of protection; the learners that adapt (fine-tuned encoder, mini VLM) at least halfway down from
    their clean-trained leakage to chance."""
    chance, main = 1 / cfg.labels, ProtectRun(cfg.ensemble).name
    out: dict[str, dict] = {"white_box": {}, "transfer": {}, "postprocess": {}, "learners": {}}
    for r in rows:
        key = f"{r['attacker']}/{r.get('head', r.get('learner'))}"
        if r["experiment"] in ("target", "arrival", "adaptive") or (
            r["experiment"] == "strength" and r["strength"] == "default"
        ):
            key += "" if r["run"] == main else f" ({r['run']})"
            key += " (adaptive attacker)" if r["experiment"] == "adaptive" else ""
            out["white_box"][key] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "met": abs(r["protected_acc"] - chance) <= 0.10,
                "inverted_acc": r["protected_inverted_acc"],
                "inverted_met": abs(r["protected_inverted_acc"] - chance) <= 0.10,
            }
        elif r["experiment"] == "ensemble" and not r["white_box"]:
            halfway = r["clean_acc"] - (r["clean_acc"] - chance) / 2
            out["transfer"][f"{key} vs {r['run']}"] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "needed": halfway,
                "met": r["protected_acc"] <= halfway,
            }
    for r in rows:
        if r["experiment"] == "learner":
            halfway = r["clean_acc"] - (r["clean_acc"] - r["chance"]) / 2
            out["learners"][f"{r['attacker']}/{r['learner']}"] = {
                "protected_acc": r["protected_acc"],
                "clean_acc": r["clean_acc"],
                "needed": halfway,
                "met": r["protected_acc"] <= halfway,
            }
    protection = {
        f"{r['attacker']}/{r['head']}": r["clean_acc"] - r["protected_acc"]
        for r in rows
        if r["experiment"] == "strength" and r["run"] == main
    }
    for r in rows:
        if r["experiment"] == "postprocess" and r["postprocess"] in ("jpeg75", "resize0.5"):
            key = f"{r['attacker']}/{r['head']}"
            kept = r["clean_acc"] - r["protected_acc"]
            out["postprocess"][f"{key} {r['postprocess']}"] = {
                "protection": protection[key],
                "protection_after": kept,
                "met": protection[key] - kept <= 0.10,
            }
    return out
