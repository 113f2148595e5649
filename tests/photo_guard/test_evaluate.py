"""The fine-tuning attack simulation on tiny synthetic identities (tiny encoders, a few PGD steps)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from photo_guard.cli import cli
from photo_guard.evaluate import EvalConfig, goals, leakage, postprocess, run_evaluation, sample_task, train_head
from photo_guard.evaluate.finetune import finetune_leakage
from photo_guard.evaluate.mini_vlm import vlm_leakage
from photo_guard.evaluate.protection import model_inputs
from photo_guard.evaluate.report import markdown, write_report


def make_identities(root, people=4, photos=5, size=(40, 48)):
    """Each identity a smooth colour pattern of its own, each photo that pattern plus noise."""
    rng = np.random.default_rng(0)
    for p in range(people):
        base = rng.integers(0, 255, (5, 6, 3)).astype(np.float32)
        d = root / f"person_{p}"
        d.mkdir(parents=True)
        for i in range(photos):
            small = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(small).resize((size[1], size[0]), Image.BICUBIC).save(d / f"{i}.jpg", quality=95)
    return root


def tiny_config(**kw):
    base = dict(
        people=4,
        train=3,
        queries=2,
        labels=2,
        draws=2,
        steps=2,
        attackers=("tiny", "tiny2"),
        ensemble=("tiny", "tiny2"),
        strengths=("default",),
        ratios=(0.0, 1.0),
        postprocess=("jpeg75",),
        finetune_epochs=2,
        vlm_steps=30,
    )
    return EvalConfig(**{**base, **kw})


def test_sample_task_splits_and_balances(tmp_path):
    data = make_identities(tmp_path / "data", people=6, photos=5)
    task = sample_task(data, tiny_config(people=6, labels=3, draws=3))
    assert len(task.identities) == 6
    for tr, q in zip(task.train_files, task.query_files):
        assert len(tr) == 3 and len(q) == 2 and not set(tr) & set(q)
    for draw in task.affiliations:
        assert sorted(draw) == [0, 0, 1, 1, 2, 2]
    assert sample_task(data, tiny_config(people=6, labels=3, draws=3)).train_files == task.train_files  # seeded


def test_sample_task_names_the_folder_when_too_few_identities(tmp_path):
    data = make_identities(tmp_path / "data", people=2)
    with pytest.raises(ValueError, match="data: 2 identity folders"):
        sample_task(data, tiny_config(people=4))


def test_heads_learn_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g)
    ids = torch.arange(4).repeat_interleave(5)
    x = centres[ids] + 0.05 * torch.randn(20, 16, generator=g)
    q = centres[ids] + 0.05 * torch.randn(20, 16, generator=g)
    draws = [[0, 1, 0, 1], [1, 1, 0, 0]]
    for kind in ("linear", "mlp"):
        assert leakage(x, ids, q, ids, draws, 2, kind)[0] == 1.0
        # trained on features unrelated to the identities, the head can only guess
        noise = torch.randn(20, 16, generator=g)
        assert leakage(noise, ids, q, ids, draws, 2, kind)[0] < 0.9
    with pytest.raises(ValueError, match="unknown head"):
        train_head(x, ids, 4, "forest")


def test_mini_vlm_learns_names_and_places_from_separable_features_and_not_from_noise():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g)
    ids = torch.arange(4).repeat_interleave(3)
    x = centres[ids] + 0.05 * torch.randn(12, 16, generator=g)
    q = centres[ids] + 0.05 * torch.randn(12, 16, generator=g)
    draws = [[0, 1, 0, 1]]
    assert vlm_leakage(x, ids, q, ids, draws, people=4, places=2) == (1.0, 1.0)
    place, name = vlm_leakage(torch.randn(12, 16, generator=g), ids, q, ids, draws, people=4, places=2)
    assert name < 0.75  # nothing to learn the person from: it names someone, rarely the right one


def test_finetuning_trains_every_layer_of_a_copy(tmp_path, tiny_encoder):
    data = make_identities(tmp_path / "data", people=4, photos=4)
    photos = [np.asarray(Image.open(f), dtype=np.float32) for d in sorted(data.iterdir()) for f in sorted(d.iterdir())]
    images = [torch.from_numpy(p / 255).permute(2, 0, 1) for p in photos]
    x = model_inputs(tiny_encoder, images)
    ids = torch.arange(4).repeat_interleave(4)
    before = [p.clone() for p in tiny_encoder.parameters()]
    acc = finetune_leakage(tiny_encoder, x[::2], ids[::2], x[1::2], ids[1::2], [[0, 1, 0, 1]], 2, epochs=15)
    assert acc >= 0.75  # identities' colour patterns: the fine-tuned encoder carries them to the other photos
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_encoder.parameters()))  # the attacker's own copy


def test_postprocess_changes_pixels_and_size():
    x = torch.rand(3, 40, 48)
    assert postprocess([x], "resize0.5")[0].shape == (3, 20, 24)
    assert postprocess([x], "screenshot")[0].shape == (3, 32, 38)
    assert not torch.equal(postprocess([x], "jpeg50")[0], x)
    assert postprocess([x], None)[0] is x
    with pytest.raises(ValueError, match="unknown post-processing"):
        postprocess([x], "sepia")


def test_goals_judge_each_rule():
    cfg = tiny_config(labels=10)
    rows = [
        {
            "experiment": "strength",
            "run": "tiny+tiny2@default",
            "strength": "default",
            "attacker": "a",
            "head": "linear",
            "white_box": True,
            "clean_acc": 0.9,
            "protected_acc": 0.15,
            "protected_inverted_acc": 0.85,
        },
        {
            "experiment": "ensemble",
            "run": "tiny@default",
            "strength": "default",
            "attacker": "a",
            "head": "linear",
            "white_box": False,
            "clean_acc": 0.9,
            "protected_acc": 0.6,
        },
        {
            "experiment": "postprocess",
            "run": "tiny+tiny2@default",
            "postprocess": "jpeg75",
            "attacker": "a",
            "head": "linear",
            "white_box": True,
            "clean_acc": 0.8,
            "protected_acc": 0.3,
        },
        {
            "experiment": "learner",
            "learner": "finetune",
            "run": "tiny+tiny2@default",
            "attacker": "a",
            "white_box": True,
            "chance": 0.1,
            "clean_acc": 0.9,
            "protected_acc": 0.55,
        },
    ]
    # "b" is an attacker outside the ensemble: its rows of the main run are transfer, not white box
    outside = {"attacker": "b", "white_box": False, "clean_acc": 0.9, "protected_acc": 0.8}
    rows += [
        {**rows[0], **outside, "protected_inverted_acc": 0.0},
        {**rows[2], **outside},
        {**rows[3], **outside},
    ]
    # photos protected one at a time: their own protection, and what JPEG 75 leaves of it (goal 5 on goal 3)
    one = "tiny+tiny2@default/one-by-one"
    rows += [
        {**rows[0], "experiment": "arrival", "run": one, "protected_acc": 0.2, "protected_inverted_acc": 0.1},
        {**rows[2], "run": one, "protected_acc": 0.15},
    ]
    g = goals(rows, cfg)
    assert set(g["white_box"]) == {"a/linear", f"a/linear ({one})"}
    assert set(g["postprocess"]) == {"a/linear jpeg75", f"a/linear jpeg75 ({one})"}
    assert g["postprocess"][f"a/linear jpeg75 ({one})"]["protection"] == pytest.approx(0.7)  # 90 -> 20 %
    assert g["postprocess"][f"a/linear jpeg75 ({one})"]["met"]  # 70 -> 65 points: lost 5
    assert not g["transfer"]["b/linear vs tiny+tiny2@default"]["met"]
    assert not g["learners"]["b/finetune (not optimised against)"]["met"]
    assert g["white_box"]["a/linear"]["met"]  # 15 % is within 10 points of chance (10 %)
    assert not g["white_box"]["a/linear"]["inverted_met"]  # answering the least likely class finds 85 %
    assert not g["transfer"]["a/linear vs tiny@default"]["met"]  # needed <= 50 %
    assert g["postprocess"]["a/linear jpeg75"]["protection"] == pytest.approx(0.75)
    assert g["postprocess"]["a/linear jpeg75"]["met"] is False  # 75 -> 50 points: lost 25
    assert g["learners"]["a/finetune"]["needed"] == pytest.approx(0.5) and not g["learners"]["a/finetune"]["met"]


def test_run_evaluation_end_to_end_resumes_and_reports(tmp_path, tiny_encoder):
    data = make_identities(tmp_path / "data", people=6)  # 4 in the task, 2 for the adaptive attacker's own photos
    cfg = tiny_config(adaptive_photos=3)
    ev = run_evaluation(data, cfg, cache=tmp_path / "cache")
    res = ev.results
    assert set(res["runs"]) == {
        "tiny+tiny2@default",
        "tiny@default",
        "tiny2@default",
        "tiny+tiny2@default/antithetical",
        "tiny+tiny2@default/one-by-one",
    }
    assert all(r["seconds_per_photo"] > 0 and r["psnr"] > 30 for r in res["runs"].values())
    # per attacker x head: 5 protection runs + the adaptive attacker + 2 ratios + 1 post-processing of the sets and
    # of the photos protected one by one; per attacker: the fine-tuned encoder and the mini VLM's place and name
    assert len(res["rows"]) == 2 * 2 * 10 + 2 * 3
    assert "tiny/linear jpeg75 (tiny+tiny2@default/one-by-one)" in res["goals"]["postprocess"]
    learners = {(r["attacker"], r["learner"]) for r in res["rows"] if r["experiment"] == "learner"}
    assert learners == {(a, x) for a in ("tiny", "tiny2") for x in ("finetune", "vlm place", "vlm name")}
    assert {k for k in res["goals"]["white_box"] if "adaptive" in k} == {
        f"{a}/{h} (adaptive attacker)" for a in ("tiny", "tiny2") for h in ("linear", "mlp")
    }
    transfer = [r for r in res["rows"] if r["experiment"] == "ensemble" and not r["white_box"]]
    assert {(r["attacker"], r["run"]) for r in transfer} == {("tiny", "tiny2@default"), ("tiny2", "tiny@default")}
    ratio0 = [r for r in res["rows"] if r["experiment"] == "ratio" and r["ratio"] == 0.0]
    assert all(r["protected_acc"] == r["clean_acc"] for r in ratio0)  # 0 % protected is the clean baseline
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 5 * 4 * 3 + 3  # + the adaptive attacker's own

    again = run_evaluation(data, cfg, cache=tmp_path / "cache")  # everything from the cache
    assert all(r["seconds_per_photo"] == 0 for r in again.results["runs"].values())
    assert again.results["rows"] == res["rows"]

    paths = write_report(ev, tmp_path / "report", "photo-guard evaluate --data X")
    assert [p.name for p in paths] == ["results.json", "report.md", "leakage.png", "before_after.png"]
    assert json.loads(paths[0].read_text())["rows"] == res["rows"]
    md = paths[1].read_text()
    assert "## Goals" in md and "photo-guard evaluate --data X" in md and "tiny2@default" in md
    assert "## Learners that adapt" in md and "| tiny2 | vlm place | yes |" in md
    assert "(adaptive) | tiny | linear probe | yes |" in md
    for r in res["rows"]:  # an adaptive attacker on an encoder outside the ensemble is reported as such
        r["white_box"] = r["white_box"] and r["experiment"] != "adaptive"
    assert "(adaptive) | tiny | linear probe | no |" in markdown(res)
    assert Image.open(paths[2]).size[0] > 500 and Image.open(paths[3]).size[0] > 300


def test_cli_evaluate(tmp_path, tiny_encoder):
    data = make_identities(tmp_path / "data")
    args = [
        "evaluate",
        "--data",
        str(data),
        "--people",
        "4",
        "--train",
        "3",
        "--queries",
        "2",
        "--labels",
        "2",
        "--draws",
        "1",
        "--steps",
        "1",
        "--encoders",
        "tiny",
        "--attackers",
        "tiny",
        "--adaptive-photos",
        "0",
        "--learners",
        "",
        "--json",
        str(tmp_path / "out.json"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "## Goals" in result.output
    assert json.loads((tmp_path / "out.json").read_text())["command"].startswith("photo-guard ")

    bad = CliRunner().invoke(cli, [*args[:3], "--people", "9", *args[5:]])
    assert bad.exit_code == 1 and "identity folders" in bad.output


def test_transfer_runs_leave_one_encoder_out():
    runs = tiny_config(ensemble=("a", "b", "c"), targets=(), one_by_one=False).protect_runs()
    held_out = {r.name: r.ensemble for r in runs.values() if r.experiment == "ensemble"}
    assert sorted(held_out.values()) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [r.ensemble for r in runs.values() if r.experiment == "strength"] == [("a", "b", "c")]
