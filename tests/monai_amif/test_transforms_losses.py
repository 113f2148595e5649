import pytest
import torch

from guard_core.keys import Key
from monai_amif import metrics
from monai_amif.data import find_pairs, pair_transforms
from monai_amif.losses import AuthorizationLoss, FusionLoss, degrade, edge_transfer, visual_information
from monai_amif.transforms import AuthorizeKey, AuthorizeKeyd, RestoreColor, RestoreColord, SplitColor, SplitColord


def test_authorize_key_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
    assert AuthorizeKey()().abs().sum() == 0  # absent -> zero key, not an error
    key = Key.from_passphrase("amif-demo")
    monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    assert torch.equal(AuthorizeKey()(), key.tensor())
    path = Key.from_passphrase("other").save(tmp_path / "k.json")
    assert torch.equal(AuthorizeKey(key_file=path)(), Key.from_passphrase("other").tensor())  # file wins over env
    monkeypatch.setenv("AMIF_KEY_FILE", str(path))
    assert torch.equal(AuthorizeKey()(), Key.from_passphrase("other").tensor())
    assert "amif-demo" not in repr(AuthorizeKey()) and str(path) in repr(AuthorizeKey(key_file=path))


def test_authorize_keyd_fills_the_dict(monkeypatch):
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    monkeypatch.delenv("AMIF_KEY_FILE", raising=False)
    d = AuthorizeKeyd("key")({"image": 1})
    assert d["key"].shape == (256,) and d["key"].abs().sum() == 0
    d = AuthorizeKeyd("key")({"key": Key.from_passphrase("x")})
    assert torch.equal(d["key"], Key.from_passphrase("x").tensor())


def test_colour_split_and_restore_round_trip():
    rgb = torch.rand(3, 16, 16)
    y, cbcr = SplitColor()(rgb)
    assert y.shape == (1, 16, 16) and cbcr.shape == (2, 16, 16)
    assert torch.allclose(RestoreColor()(y, cbcr), rgb, atol=1e-4)
    grey = torch.rand(1, 8, 8)
    y, cbcr = SplitColor()(grey)
    assert torch.equal(y, grey) and torch.allclose(cbcr, torch.full_like(cbcr, 0.5))
    d = SplitColord("func")({"func": rgb})
    assert d["func_is_colour"] and d["func"].shape == (1, 16, 16)
    d["pred"] = d["func"]
    assert torch.allclose(RestoreColord("pred")(d)["pred"], rgb, atol=1e-4)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        SplitColor()(torch.rand(2, 4, 4))


def test_restore_colour_keeps_the_fused_luminance_out_of_gamut():
    _, cbcr = SplitColor()(torch.tensor([1.0, 0.1, 0.0]).view(3, 1, 1).expand(3, 4, 4))  # a strong red
    for level in (0.05, 0.5, 0.95):  # a bright fused red does not fit in RGB: clipping would darken it
        rgb = RestoreColor()(torch.full((1, 4, 4), level), cbcr)
        assert rgb.min() >= 0 and rgb.max() <= 1
        assert torch.allclose(SplitColor()(rgb)[0], torch.full((1, 4, 4), level), atol=1e-5)
    hue = RestoreColor()(torch.full((1, 4, 4), 0.95), cbcr)[:, 0, 0]
    assert hue[0] > hue[1] >= hue[2]  # still red, less saturated


def test_find_pairs_and_pair_transforms(pair_folder, tmp_path):
    pairs = find_pairs(pair_folder)
    assert len(pairs) == 5 and {p["task"] for p in pairs} == {"PET-MRI", "CT-MRI"}
    assert len(find_pairs(pair_folder / "PET-MRI")) == 3
    d = pair_transforms()(pairs[-1])
    assert d["image"].shape == (2, 64, 64) and float(d["image"].min()) >= 0 and float(d["image"].max()) <= 1
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        find_pairs(tmp_path)


def test_fusion_loss_prefers_the_max_rule_to_a_blur():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 2, 32, 32, generator=g)
    loss = FusionLoss()
    best = loss(image.amax(1, keepdim=True), image)
    worse = loss(degrade(image.mean(1, keepdim=True)), image)
    assert best["intensity"] == 0 and best["gradient"] < worse["gradient"] and best["total"] < worse["total"]


def _blobs(n: int, seed: int) -> torch.Tensor:
    """``[n, 1, 64, 64]`` 8-bit-valued smooth images with a black border (where the metric's zero padding and the
    loss's replicate padding agree)."""
    g = torch.Generator().manual_seed(seed)
    x = degrade(torch.rand(n, 1, 56, 56, generator=g), 1.5)
    x = (x - x.amin()) / (x.amax() - x.amin())
    return torch.nn.functional.pad(torch.round(x * 255) / 255, (4, 4, 4, 4)).double()


def test_differentiable_qabf_and_vif_match_the_scored_metrics():
    a, b = _blobs(2, 0), _blobs(2, 1)
    fused = torch.maximum(a, b) * 0.7 + 0.3 * (a + b) / 2
    q, v = edge_transfer(fused, a, b), visual_information(a, fused) + visual_information(b, fused)
    for i in range(2):
        np_ = [t[i, 0].numpy() * 255 for t in (fused, a, b)]
        assert float(q[i]) == pytest.approx(metrics.qabf(*np_), abs=2e-3)
        assert float(v[i]) == pytest.approx(metrics.vif(*np_), abs=1e-6)
    assert (edge_transfer(a, a, a) > q).all()  # every edge kept exactly scores best


def test_metric_terms_are_optional_and_raise_their_metric_when_descended():
    a, b = _blobs(2, 2).float(), _blobs(2, 3).float()
    image = torch.cat([a, b], 1)
    assert set(FusionLoss()(a, image)) == {"total", "intensity", "gradient", "ssim"}
    loss = FusionLoss(0, 0, 0, w_qabf=1.0, w_vif=1.0)
    fused = ((a + b) / 2).requires_grad_()
    opt = torch.optim.Adam([fused], lr=0.01)
    first = loss(fused, image)
    for _ in range(30):
        opt.zero_grad()
        loss(fused, image)["total"].backward()
        opt.step()
    last = loss(fused, image)
    assert last["qabf"] < first["qabf"] and last["vif"] < first["vif"]
    with torch.no_grad():
        masked = loss(fused, image, vif_mask=torch.tensor([0.0, 1.0]))["vif"]  # the VIF term on the second pair only
        second = visual_information(a, fused)[1] + visual_information(b, fused)[1]
    assert float(masked) == pytest.approx(2 - float(second))


def test_authorization_loss_target_and_stop_gradient():
    mask = (torch.rand(1, 1, 32, 32) > 0.8).float()
    intensity = mask * (torch.rand(1, 1, 32, 32) > 0.5).float()
    f_auth = torch.rand(1, 1, 32, 32, requires_grad=True)
    loss = AuthorizationLoss()
    target = loss.target(f_auth, mask, intensity)
    assert loss(target, f_auth, mask, intensity).item() == pytest.approx(0, abs=1e-7)
    assert torch.equal(target * mask, intensity * mask)  # opaque: the mark replaces the pixels
    f_unauth = torch.rand(1, 1, 32, 32, requires_grad=True)
    loss(f_unauth, f_auth, mask, intensity).backward()
    assert f_auth.grad is None and f_unauth.grad.abs().sum() > 0
