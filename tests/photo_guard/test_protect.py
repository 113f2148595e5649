import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from photo_guard.batch import MANIFEST_NAME, protect_files
from photo_guard.cli import cli
from photo_guard.errors import PhotoGuardError
from photo_guard.photo_io import read_photo
from photo_guard.protect import ProtectConfig, perceptual_budget, protect_set
from tests.photo_guard.conftest import TinyEncoder, make_photo, smooth_photos


def test_protect_moves_the_set_past_orthogonal_within_budget(tiny_encoder):
    photos = smooth_photos()
    cfg = ProtectConfig(
        encoders=("tiny",), steps=30, target="antithetical", eot_samples=0, quality_weight=0.0, device="cpu"
    )
    results = protect_set(photos, cfg)
    eps = cfg.eps
    for clean, r in zip(photos, results):
        assert r.pixels.shape == clean.shape
        assert (r.pixels - clean).abs().max() <= eps + 0.5 / 255 + 1e-6  # 8-bit rounding of a ≤ε change
        assert torch.equal(r.pixels, (r.pixels * 255).round() / 255)
        assert r.stats["linf_255"] <= 8.5
    stats = results[0].stats["encoders"]["tiny"]
    assert stats["set_centroid_cos"] < 0
    assert np.mean([r.stats["encoders"]["tiny"]["cos_to_clean"] for r in results]) < 0.5


def test_targets_and_validation(tiny_encoder):
    photos = smooth_photos(2)
    for target in ("per-photo", "anchor"):
        cfg = ProtectConfig(encoders=("tiny",), steps=5, target=target, eot_samples=0, device="cpu")
        anchor = {"tiny": torch.randn(32)} if target == "anchor" else None
        assert len(protect_set(photos, cfg, anchor=anchor)) == 2
    with pytest.raises(ValueError, match="target"):
        protect_set(photos, ProtectConfig(encoders=("tiny",), steps=1, target="nowhere", device="cpu"))


def test_default_anchor_is_the_owners_and_the_same_photo_by_photo(tiny_encoder):
    from photo_guard.owner_state import anchor_direction

    a = anchor_direction("tiny", 32)
    assert torch.equal(a, anchor_direction("tiny", 32)) and abs(float(a.norm()) - 1) < 1e-6
    assert not torch.equal(a, anchor_direction("tiny", 32, secret=b"another owner"))
    photos = smooth_photos(2)
    cfg = ProtectConfig(encoders=("tiny",), steps=3, eot_samples=0, device="cpu")
    assert cfg.target == "anchor"
    together = protect_set(photos, cfg, measure_result=False)
    explicit = protect_set(photos, cfg, anchor={"tiny": a}, measure_result=False)  # the owner's anchor by default
    assert all(torch.equal(x.pixels, y.pixels) for x, y in zip(together, explicit))
    with pytest.raises(ValueError, match="strength"):
        _ = ProtectConfig(strength="max").eps


def test_mixed_sizes_and_full_resolution(tiny_encoder):
    photos = [smooth_photos(1, (48, 64))[0], smooth_photos(1, (64, 48))[0], smooth_photos(1, (400, 600))[0]]
    cfg = ProtectConfig(encoders=("tiny",), steps=3, work_size=128, eot_samples=1, device="cpu")
    results = protect_set(photos, cfg)
    assert [r.pixels.shape for r in results] == [p.shape for p in photos]


def test_adams_step_is_step_size_times_eps(tiny_encoder):
    photos = smooth_photos(1)
    plain = dict(encoders=("tiny",), eot_samples=0, perceptual=False, quality_weight=0.0, low_scale=0.0, device="cpu")
    start = protect_set(photos, ProtectConfig(steps=0, **plain), measure_result=False)[0].pixels  # the random start

    def moved(step_size: float) -> float:
        out = protect_set(photos, ProtectConfig(steps=1, step_size=step_size, **plain), measure_result=False)
        return float((out[0].pixels - start).abs().max()) * 255

    eps_255 = ProtectConfig().eps * 255
    assert moved(0.25) == pytest.approx(0.25 * eps_255, abs=0.6)  # Adam's first step is ±lr, then 8-bit rounding
    assert moved(0.5) == pytest.approx(0.5 * eps_255, abs=0.6)


def test_the_low_frequency_part_reaches_flat_areas_within_the_budget(tiny_encoder):
    flat = [torch.full((3, 48, 64), 0.5)]  # the perceptual budget's floor everywhere: ε / 4
    eps = ProtectConfig().eps

    def change(**kw) -> float:
        cfg = ProtectConfig(encoders=("tiny",), steps=10, eot_samples=0, quality_weight=0.0, device="cpu", **kw)
        return float((protect_set(flat, cfg, measure_result=False)[0].pixels - flat[0]).abs().max())

    assert change(low_scale=0.0) <= eps / 4 + 0.5 / 255 + 1e-6
    assert eps / 4 + 1.5 / 255 < change() <= eps * 3 / 4 + 0.5 / 255 + 1e-6  # low_eps = ε / 2 more, by default


def test_perceptual_budget_spends_less_on_flat_areas():
    img = torch.full((1, 3, 32, 32), 0.5)
    img[..., 16:] = torch.rand(1, 3, 32, 16)
    budget = perceptual_budget(img, 8 / 255)
    assert budget.max() <= 8 / 255 + 1e-7
    assert budget[..., :12].mean() < 0.5 * budget[..., 20:].mean()


def test_cli_protect_skips_done_work_and_survives_bad_files(tiny_encoder, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        make_photo(src / f"p{i}.jpg", seed=i, quality=90)
    (src / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    args = ["protect", str(src), "-o", str(out), "--encoders", "tiny", "--steps", "3", "--device", "cpu"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output  # one photo failed
    assert "broken.jpg" in r.output and "protected 3" in r.output
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert set(manifest["photos"]) == {"p0.jpg", "p1.jpg", "p2.jpg"}
    assert manifest["photos"]["p0.jpg"]["params"]["eps"] == pytest.approx(8 / 255)
    for entry in manifest["photos"].values():  # measured on the written JPEG, against the codec's own floor
        assert entry["lossy"] and entry["linf_255"] <= 8 + entry["codec_floor_linf_255"] + 1
    assert read_photo(out / "p0.jpg").format == "JPEG"
    (out / "p1.jpg").unlink()  # as if the run had crashed before p1
    r = CliRunner().invoke(cli, args)
    assert "protected 1, skipped 2" in r.output
    r = CliRunner().invoke(cli, ["protect", str(src / "p0.jpg")])
    assert r.exit_code != 0 and "--out" in r.output


def test_a_smooth_jpeg_is_kept_though_the_codec_moves_the_protected_one_more(tiny_encoder, tmp_path):
    """JPEG rounds the perturbation's fine detail more than it rounds a smooth original, so the budget allows the
    codec's change to the protected pixels (an independent encode), not the original's (this refused its own output).
    """
    from PIL import Image

    from photo_guard.photo_io import codec_change_255

    ramp = np.linspace(40, 200, 96, dtype=np.float32)
    pixels = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (96, 1)), np.tile(ramp[:, None], (1, 96))], -1)
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "sky.jpg", quality=95)
    original = read_photo(tmp_path / "sky.jpg")
    floor_of_original = codec_change_255(original, original.pixels)
    report = protect_files([tmp_path / "sky.jpg"], tmp_path / "out", ProtectConfig(encoders=("tiny",), steps=4))
    assert report.failed == [] and len(report.protected) == 1
    entry = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["photos"]["sky.jpg"]
    assert entry["codec_floor_linf_255"] > floor_of_original  # the case the old budget got wrong
    assert entry["linf_255"] <= 8 + 1 + entry["codec_floor_linf_255"]


def test_cli_verify_and_encoders(tiny_encoder, tmp_path):
    make_photo(tmp_path / "a.png", fmt="PNG")
    out = tmp_path / "o"
    CliRunner().invoke(cli, ["protect", str(tmp_path / "a.png"), "-o", str(out), "--encoders", "tiny", "--steps", "2"])
    r = CliRunner().invoke(
        cli, ["verify", str(out / "a.png"), "--original", str(tmp_path / "a.png"), "--encoders", "tiny"]
    )
    assert r.exit_code == 0, r.output
    assert "PSNR" in r.output and "tiny: cosine" in r.output
    r = CliRunner().invoke(cli, ["encoders"])
    assert "tiny: ok" in r.output


@pytest.mark.slow
def test_torchrun_shards_files_by_rank(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        make_photo(src / f"p{i}.png", seed=i, size=(64, 64), fmt="PNG")
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            "29519",
            "-m",
            "photo_guard.cli",
            "protect",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--steps",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("protected 2") == 2  # each rank did its half
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert set(manifest["photos"]) == {f"p{i}.png" for i in range(4)}


def test_each_photo_gets_its_own_reproducible_draws():
    from photo_guard.owner_state import photo_seed

    a, b = smooth_photos(2)
    assert photo_seed(a) == photo_seed(a.clone())  # a rerun protects a photo the same way
    assert len({photo_seed(a), photo_seed(b), photo_seed(a, seed=1), photo_seed(a, secret=b"another owner")}) == 4


def test_an_encoder_with_term_every_2_is_taken_on_every_other_step(tiny_encoder):
    """PGD's steps 0, 2, 4 take both encoders, 1 and 3 only the one on every step; the caller's progress still sees
    every step, and an ensemble of the every-other-step encoder alone takes it on every step."""
    every_other = TinyEncoder(1)
    every_other.name, every_other.term_every = "tiny2", 2
    calls = {"tiny": 0, "tiny2": 0}
    for enc in (tiny_encoder, every_other):
        enc.register_forward_pre_hook(lambda m, _: calls.__setitem__(m.name, calls[m.name] + 1))
    progress: list[int] = []
    cfg = ProtectConfig(steps=5, eot_samples=0, quality_weight=0.0, device="cpu")
    protect_set(
        smooth_photos(1),
        cfg,
        encoders=[tiny_encoder, every_other],
        measure_result=False,
        progress=lambda s, _: progress.append(s),
    )
    clean_view_calls = 1  # the clean embeddings, before the steps
    assert calls == {"tiny": 5 + clean_view_calls, "tiny2": 3 + clean_view_calls} and progress == [0, 1, 2, 3, 4]
    calls["tiny2"] = 0
    protect_set(smooth_photos(1), cfg, encoders=[every_other], measure_result=False)
    assert calls["tiny2"] == 5 + clean_view_calls


def test_a_face_encoder_takes_a_second_view_on_the_steps_another_sits_out():
    """Step 0 takes both encoders as they are; step 1, where the every-other-step one sits out, takes the face
    encoder twice at half its weight, once as the step's photo and once through a further draw. Without transforms
    (no EOT) the schedule is the plain one."""
    from photo_guard.step_terms import EncoderView, StepTerms

    face, every_other = TinyEncoder(0), TinyEncoder(1)
    face.face, face.loss_weight = True, 2.0
    every_other.name, every_other.term_every = "tiny2", 2
    mirror = lambda x, generator=None: x.flip(-1)  # noqa: E731
    terms = StepTerms([face, every_other], transforms=[mirror], generator=torch.Generator().manual_seed(0))
    assert terms.encoders() == [face, every_other]
    terms.done(0, 0.0)
    plain, further = terms.encoders()
    assert all(isinstance(v, EncoderView) and v.name == "tiny" and v.face for v in (plain, further))
    assert plain.loss_weight == further.loss_weight == 1.0
    x = torch.stack(smooth_photos(1))
    assert torch.equal(plain.embed(x), face.embed(x)) and torch.equal(further.embed(x), face.embed(x.flip(-1)))
    bare = StepTerms([face, every_other])
    bare.done(0, 0.0)
    assert bare.encoders() == [face]


def test_protection_with_second_views_is_repeatable():
    """The further draws come from a generator seeded per photo: the same photo gets the same pixels twice, and
    turning the views off changes them."""
    face, every_other = TinyEncoder(0), TinyEncoder(1)
    face.face = True
    every_other.name, every_other.term_every = "tiny2", 2
    cfg = ProtectConfig(steps=4, transforms=("RandomResize", "RandomBlur"), device="cpu")
    runs = [
        protect_set(smooth_photos(1), c, encoders=[face, every_other], measure_result=False)[0].pixels
        for c in (cfg, cfg, replace(cfg, second_view=False))
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_the_second_view_draws_only_the_named_eot_transforms(tiny_encoder, monkeypatch):
    """``second_view_draws`` keeps the named draws for the second view (the step's own draws stay all of them); a
    name that is not an EOT draw is refused; ``second_view`` off gives none."""
    from photo_guard import protect

    seen: list[list[str]] = []

    class Recording(protect.StepTerms):
        def __init__(self, encoders, progress=None, transforms=(), generator=None):
            seen.append([repr(t).split("(")[0] for t in transforms])
            super().__init__(encoders, progress, transforms, generator)

    monkeypatch.setattr(protect, "StepTerms", Recording)
    cfg = ProtectConfig(steps=1, transforms=("RandomJPEG", "RandomBlur"), redetect=False, device="cpu")
    for views in (None, ("RandomJPEG",)):
        protect_set(smooth_photos(1), replace(cfg, second_view_draws=views), [tiny_encoder], measure_result=False)
    protect_set(smooth_photos(1), replace(cfg, second_view=False), [tiny_encoder], measure_result=False)
    assert seen == [["RandomJPEG", "RandomBlur"], ["RandomJPEG"], []]
    with pytest.raises(PhotoGuardError, match="RandomResize"):
        protect_set(smooth_photos(1), replace(cfg, second_view_draws=("RandomResize",)), [tiny_encoder])
