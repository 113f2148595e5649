import kornia
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from guard_core import ops


def _smooth_image(seed: int, channels: int = 3, size: int = 64) -> torch.Tensor:
    """A natural-looking test image: blurred noise with edges, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size // 8, size // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    x[..., size // 3 : size // 2, :] += 0.3
    return x.clamp(0, 1)


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_scikit_image(data_range):
    a = _smooth_image(0, 1) * data_range
    b = (a + torch.randn(a.shape, generator=torch.Generator().manual_seed(1)) * 0.05 * data_range).clamp(0, data_range)
    ours = ops.ssim(a, b, data_range=data_range).item()
    ref = structural_similarity(
        a[0, 0].numpy(),
        b[0, 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
    )
    assert abs(ours - ref) < 1e-3, (ours, ref)
    assert ops.ssim(a, a, data_range).item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("dtype,channels,batch", [(torch.float32, 3, 2), (torch.float64, 1, 1)])
def test_ssim_map_is_kornias_forward_and_backward(dtype, channels, batch):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(batch, channels, 40, 33, generator=g, dtype=dtype).requires_grad_(True)
    y = (x.detach() + 0.05 * torch.randn(x.shape, generator=g, dtype=dtype)).clamp(0, 1)
    ours = ops.ssim_map(x, y, 1.0)
    ref = kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid")
    assert ours.shape == ref.shape == (batch, channels, 30, 23) and torch.allclose(ours, ref, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours.mean(), x)
    (g_ref,) = torch.autograd.grad(ref.mean(), x)
    assert torch.allclose(g_ours, g_ref, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("shape", [(1, 3, 250, 250), (2, 1, 40, 33)])
def test_ssim_to_a_fixed_reference_is_ssim_to_the_bit(shape):
    g = torch.Generator().manual_seed(3)
    y = torch.rand(shape, generator=g)
    x = (y + 0.03 * torch.randn(shape, generator=g)).clamp(0, 1).requires_grad_(True)
    against = ops.ssim_to(y, 1.0)
    ours, ref = against(x), ops.ssim(x, y, 1.0)
    assert ours.shape == (shape[0],) and torch.equal(ours, ref)
    assert torch.equal(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0])
    assert torch.equal(against(x.detach()), ours.detach())  # the reference's moments are reused, unchanged


def test_ycbcr_matches_bt601_and_round_trips():
    x = _smooth_image(2)
    y = ops.rgb_to_ycbcr(x)
    r, g, b = x[0]
    assert torch.allclose(y[0, 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-5)
    assert torch.allclose(
        y[0, 1], 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b, atol=1e-3
    )  # kornia rounds 0.5/0.886 to 0.564
    assert torch.allclose(ops.ycbcr_to_rgb(y), x, atol=1e-5)


def test_jpeg_is_differentiable():
    x = _smooth_image(4).requires_grad_(True)
    ops.jpeg(x, 75).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sobel_magnitude_on_a_step_edge():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:] = 1.0
    gx, gy = ops.sobel_gradients(x)
    mag = ops.sobel_magnitude(x, eps=0)
    assert torch.allclose(mag, torch.sqrt(gx**2 + gy**2))
    assert mag[0, 0, 4, 3] == pytest.approx(4.0) and mag[0, 0, 4, 0] == 0  # unnormalised Sobel: 1+2+1
    assert gy.abs().max() == 0


def test_blur_resize_crop_shapes():
    x = _smooth_image(5)
    assert ops.gaussian_blur(x, 1.0).shape == x.shape
    assert ops.gaussian_blur(x, 1.0).var() < x.var()
    assert ops.resize(x, (32, 48)).shape == (1, 3, 32, 48)
    assert ops.crop(x, 2, 3, 10, 11).shape == (1, 3, 10, 11)
    with pytest.raises(ValueError, match="outside"):
        ops.crop(x, 60, 0, 10, 10)


def test_resize_shrinks_like_pil_bilinear():
    """Shrinking is antialiased the way PIL's BILINEAR is (its triangle filter widened by the scale), not aliased."""

    x = _smooth_image(6, size=96)
    x = (x + 0.2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)  # fine detail too
    u8 = ops.to_uint8(x[0])
    pil = ops.from_uint8(np.asarray(Image.fromarray(u8).resize((29, 31), Image.Resampling.BILINEAR)))
    ours = ops.resize(ops.from_uint8(u8)[None], (31, 29))[0]
    aliased = ops.resize(ops.from_uint8(u8)[None], (31, 29), antialias=False)[0]
    assert (ours - pil).abs().max() * 255 < 2.5
    assert (aliased - pil).abs().mean() > 4 * (ours - pil).abs().mean()


def test_uint8_round_trip():
    x = torch.rand(3, 5, 7)
    u8 = ops.to_uint8(x)
    assert u8.shape == (5, 7, 3) and u8.dtype == np.uint8
    assert torch.allclose(ops.from_uint8(u8), x, atol=0.5 / 255 + 1e-6)
    assert ops.to_uint8(x[:1]).shape == (5, 7)
    assert ops.from_uint8(np.full((2, 2), 65535, np.uint16)).max() == 1.0
