import pytest
import torch

from guard_core import eot, quality


@pytest.mark.parametrize("transform", eot.default_transforms() + [eot.RandomAlign()], ids=repr)
def test_transforms_keep_shape_range_and_gradient(transform):
    x = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    y = transform(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    assert y.min() >= -1e-4 and y.max() <= 1 + 1e-4
    y.sum().backward()
    assert x.grad is not None


def test_transforms_are_repeatable_with_a_generator():
    x = torch.rand(1, 3, 32, 32)
    for t in eot.default_transforms() + [eot.RandomAlign()]:
        assert torch.equal(t(x, torch.Generator().manual_seed(5)), t(x, torch.Generator().manual_seed(5)))


def test_psnr_and_ssim_have_explicit_ranges():
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    y = (x + 0.01).clamp(0, 1)
    p1 = quality.psnr(x, y, data_range=1.0)
    p255 = quality.psnr(x * 255, y * 255, data_range=255.0)
    assert p1.shape == (2,) and torch.allclose(p1, p255, atol=1e-3)
    mse = (x - y).pow(2).flatten(1).mean(1)
    assert torch.allclose(p1, 10 * torch.log10(1 / mse), atol=1e-4)
    assert quality.psnr(x, x, 1.0).isinf().all()
    assert torch.allclose(quality.ssim(x, y, 1.0), quality.ssim(x * 255, y * 255, 255.0), atol=1e-4)
    assert torch.allclose(quality.linf(x, y), (x - y).abs().flatten(1).amax(1))
