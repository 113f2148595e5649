import pytest
import torch

from guard_core import eot
from guard_core.pgd import PGD, PGDConfig, optimise_vector


def _target_loss(target):
    return lambda adv: (adv - target).pow(2).flatten(1).mean(1)


@pytest.mark.parametrize("method", ["sign", "adam"])
def test_pgd_lowers_a_known_loss_within_the_budget(method):
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    target = (x + 0.5).clamp(0, 1)
    loss_fn = _target_loss(target)
    eps = 8 / 255
    seen = []
    cfg = PGDConfig(eps=eps, steps=20, method=method, step_size=eps / 4 if method == "sign" else 0.01)
    result = PGD(cfg).perturb(x, loss_fn, callback=lambda step, loss: seen.append(loss))
    assert len(seen) == 20
    start = loss_fn(x).mean().item()
    end = loss_fn(result.apply(x)).mean().item()
    assert end < start - 0.5 * (start - loss_fn((x + eps).clamp(0, 1)).mean().item())
    assert result.delta.abs().max() <= torch.tensor(eps)  # exact, in the images' dtype
    adv = x + result.delta
    assert adv.min() >= 0 and adv.max() <= 1 + 1e-7


def test_budget_holds_after_every_step():
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    eps = 4 / 255
    deltas = []

    def loss_fn(adv):
        deltas.append((adv - x).detach())
        return -(adv * torch.randn_like(adv)).sum()

    PGD(PGDConfig(eps=eps, steps=15, step_size=0.1, momentum=0.9)).perturb(x, loss_fn)
    assert len(deltas) == 15
    for d in deltas:
        assert d.abs().max().item() <= eps + 1e-6  # images + delta recomputed in float: one ulp


def test_per_pixel_budget_is_respected():
    x = torch.full((1, 1, 8, 8), 0.5)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 2 / 255
    result = PGD(PGDConfig(eps=8 / 255, steps=5)).perturb(x, lambda adv: -adv.sum(), eps=mask)
    assert result.delta[..., 4:].abs().max() == 0
    assert result.delta[..., :4].max().item() == pytest.approx(2 / 255)


def test_same_seed_same_result_with_eot():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    target = torch.rand_like(x)
    cfg = PGDConfig(eps=8 / 255, steps=5, eot_samples=2, seed=7)
    pgd = PGD(cfg, transforms=eot.default_transforms())
    a = pgd.perturb(x, _target_loss(target)).delta
    b = pgd.perturb(x, _target_loss(target)).delta
    c = (
        PGD(PGDConfig(eps=8 / 255, steps=5, eot_samples=2, seed=8), eot.default_transforms())
        .perturb(x, _target_loss(target))
        .delta
    )
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("bound", ["none", "tanh"])
def test_optimise_vector_finds_a_hidden_sign_vector(bound):
    secret = torch.where(torch.rand(64, generator=torch.Generator().manual_seed(3)) > 0.5, 1.0, -1.0)
    result = optimise_vector(
        lambda v: -(v * secret).sum() + 0.5 * v.pow(2).sum(), torch.zeros(64), steps=200, lr=0.05, bound=bound
    )
    assert result.losses[-1] < result.losses[0]
    assert torch.equal(result.vector.sign(), secret)
    if bound == "tanh":
        assert result.vector.abs().max() < 1


def test_config_validation():
    with pytest.raises(ValueError):
        PGDConfig(eps=2)
    with pytest.raises(ValueError):
        PGDConfig(method="lbfgs")


def test_coarse_grid_gives_a_smooth_perturbation_within_the_budget():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    target = torch.rand_like(x)
    eps = 8 / 255
    mask = torch.full((2, 1, 32, 32), eps)
    mask[..., :8] = 2 / 255
    fine = PGD(PGDConfig(eps=eps, steps=10, step_size=eps / 4)).perturb(x, _target_loss(target), eps=mask)
    coarse = PGD(PGDConfig(eps=eps, steps=10, step_size=eps / 4, scale=0.25)).perturb(x, _target_loss(target), eps=mask)
    for r in (fine, coarse):
        assert r.delta[..., :8].abs().max() <= 2 / 255 and r.delta.abs().max() <= eps
        assert r.apply(x).min() >= 0 and r.apply(x).max() <= 1

    # the coarse δ has little energy between neighbouring pixels (a low-frequency perturbation)
    def roughness(d):
        return (d[..., 1:] - d[..., :-1]).abs().mean() / d.abs().mean()

    assert roughness(coarse.delta) < 0.5 * roughness(fine.delta)
    assert _target_loss(target)(coarse.apply(x)).mean() < _target_loss(target)(x).mean()
    with pytest.raises(ValueError, match="scale"):
        PGDConfig(scale=0)


def test_a_low_frequency_part_adds_a_smooth_change_outside_the_per_pixel_budget():
    x = 0.1 + 0.8 * torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))  # no [0, 1] clipping
    target = torch.rand_like(x)
    eps, low_eps = 8 / 255, 4 / 255
    mask = torch.full((2, 1, 32, 32), eps)
    mask[..., :16] = 0  # no per-pixel budget on the left half
    seen = []

    def loss_fn(adv):
        seen.append((adv - x).detach())
        return _target_loss(target)(adv)

    cfg = PGDConfig(eps=eps, steps=10, method="adam", step_size=eps / 4, low_scale=0.25, low_eps=low_eps)
    r = PGD(cfg).perturb(x, loss_fn, eps=mask)
    left = r.delta[..., :12]  # away from the bilinear seam with the right half
    assert 0.5 * low_eps < left.abs().max() <= low_eps + 1e-7
    assert (left[..., 1:] - left[..., :-1]).abs().max() <= 0.5 * low_eps + 1e-6  # bilinear from a 1/4 grid
    for d in [*seen, r.delta]:
        assert d.abs().max() <= eps + 1e-6
    assert r.apply(x).min() >= 0 and r.apply(x).max() <= 1
    assert _target_loss(target)(r.apply(x)).mean() < _target_loss(target)(x).mean()
    for bad in (dict(low_scale=1.0), dict(low_scale=0.5, low_eps=2 * eps)):
        with pytest.raises(ValueError, match="low_scale"):
            PGDConfig(eps=eps, **bad)
