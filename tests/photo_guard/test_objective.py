import torch
import torch.nn.functional as F

from photo_guard.objective import _ssim_to, dp2vl_loss
from tests.photo_guard.conftest import TinyEncoder, smooth_photos


def test_the_push_from_the_person_stops_at_orthogonal_or_at_the_encoders_away_stop(tiny_encoder):
    x = smooth_photos(2)
    x = torch.stack(x)
    align = torch.zeros(2, 2, 3)
    u = F.normalize(tiny_encoder.embed(x), dim=-1)
    target = {"tiny": torch.roll(u, 1, dims=-1)}
    toward = -F.cosine_similarity(tiny_encoder.embed(x), target["tiny"], dim=-1)
    at_person = dp2vl_loss(x, x, [tiny_encoder], align, {"tiny": u}, target)
    past_mirror = dp2vl_loss(x, x, [tiny_encoder], align, {"tiny": -u}, target)
    assert torch.allclose(at_person, toward + 1, atol=1e-5)  # still on the person: pushed away
    assert torch.allclose(past_mirror, toward, atol=1e-5)  # already opposite the person: no reward for going further
    # an encoder that moves easily stops before orthogonal: below its away_stop the push from the person is spent
    tiny_encoder.away_stop = 0.5
    at_person_stopped = dp2vl_loss(x, x, [tiny_encoder], align, {"tiny": u}, target)
    assert torch.allclose(at_person_stopped, toward + 0.5, atol=1e-5)
    assert torch.allclose(dp2vl_loss(x, x, [tiny_encoder], align, {"tiny": -u}, target), toward, atol=1e-5)
    # an encoder that is hard to move takes a larger share of the objective
    tiny_encoder.loss_weight = 2.0
    weighted = dp2vl_loss(x, x, [tiny_encoder], align, {"tiny": u}, target)
    assert torch.allclose(weighted, 2 * (toward + 0.5), atol=1e-5)


def test_one_photo_side_by_side_gets_the_loss_and_gradient_it_gets_in_a_batch(tiny_encoder, two_threads):
    second = TinyEncoder(1)
    second.name = "tiny2"
    encoders = [tiny_encoder, second]
    x = torch.stack(smooth_photos(2))
    align = torch.zeros(2, 2, 3)
    gen = torch.Generator().manual_seed(0)
    cen = {e.name: F.normalize(torch.randn(2, e(x).shape[-1], generator=gen), dim=-1) for e in encoders}
    tgt = {e.name: F.normalize(torch.randn(2, e(x).shape[-1], generator=gen), dim=-1) for e in encoders}
    adv = x.clone().requires_grad_(True)
    batch = dp2vl_loss(adv, x, encoders, align, cen, tgt, 2.0)
    (g_batch,) = torch.autograd.grad(batch.sum(), adv)
    for i in range(2):
        one = adv[i : i + 1].detach().requires_grad_(True)
        loss = dp2vl_loss(one, x[i : i + 1], encoders, align[i : i + 1], _row(cen, i), _row(tgt, i), 2.0)
        assert loss.grad_fn is not None and type(loss.grad_fn).__name__ == "_BranchesBackward"
        (g_one,) = torch.autograd.grad(loss.sum(), one)
        torch.testing.assert_close(loss, batch[i : i + 1], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_one, g_batch[i : i + 1], rtol=1e-4, atol=1e-6)


def _row(d, i):
    return {k: v[i : i + 1] for k, v in d.items()}


def test_the_quality_terms_reference_is_filtered_once_per_unchanged_clean_tensor():
    clean = torch.rand(1, 3, 40, 40)
    first = _ssim_to(clean)
    assert _ssim_to(clean) is first  # every PGD step of one set
    clean.add_(0.0)  # changed in place: its version moves on
    assert _ssim_to(clean) is not first
    assert _ssim_to(clean.clone()) is not _ssim_to(clean)
    optimised = clean.clone().requires_grad_(True)
    x = torch.rand(1, 3, 40, 40)
    assert _ssim_to(optimised)(x).grad_fn is not None  # a reference with a gradient is followed, not kept


def test_one_encoder_beside_the_quality_term_runs_on_every_thread_in_turn(tiny_encoder, two_threads):
    x = torch.stack(smooth_photos(1))
    u = {"tiny": F.normalize(torch.ones(1, tiny_encoder(x).shape[-1]), dim=-1)}
    loss = dp2vl_loss(x.clone().requires_grad_(True), x, [tiny_encoder], torch.zeros(1, 2, 3), u, u, 2.0)
    assert type(loss.grad_fn).__name__ != "_BranchesBackward"
