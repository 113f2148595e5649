import io

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from guard_core import ops
from guard_core.jpeg_codec import jpeg_round_trip, quality_tables


def _pillow(x: torch.Tensor, quality: int) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def _photo_and_protected(seed: int, size: tuple[int, int] = (72, 88)) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth 8-bit image, and it with an 8/255 perturbation on it: what a protection hands the codec."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    delta = F.avg_pool2d((torch.rand(x.shape, generator=g) * 2 - 1) * 8 / 255, 3, 1, 1) * 3
    return (x * 255).round() / 255, ((x + delta).clamp(0, 1) * 255).round() / 255


@pytest.mark.parametrize("quality", [10, 50, 75, 90, 100])
def test_quality_tables_are_the_ones_pillow_writes(quality):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "JPEG", quality=quality)
    written = Image.open(buf).quantization
    luma, chroma = quality_tables(torch.tensor([float(quality)]))
    assert luma[0].flatten().int().tolist() == list(written[0])
    assert chroma[0].flatten().int().tolist() == list(written[1])


@pytest.mark.parametrize("quality", [50, 75, 90])
def test_round_trip_is_pillows_jpeg_and_keeps_what_pillow_keeps_of_a_perturbation(quality):
    clean, x = _photo_and_protected(0)
    ours, pil = ops.jpeg(x, quality), _pillow(x, quality)
    assert ours.shape == x.shape
    assert (ours - pil).abs().mean().item() * 255 < 0.85  # within a level on average (kornia's codec: 0.95-1.5)
    # The part of a perturbation that survives the codec points where Pillow's does.
    survives, survives_pil = ours - ops.jpeg(clean, quality), pil - _pillow(clean, quality)
    assert F.cosine_similarity(survives.flatten(), survives_pil.flatten(), 0) > 0.9  # kornia's: 0.84-0.91


def test_gradient_passes_the_roundings_straight_through():
    # With every rounding's gradient the identity and no clamp active, the codec's gradient is that of its linear part:
    # to YCbCr, chroma halved by 2×2 means and brought back bilinearly, back to RGB (the DCT, quantisation and inverse
    # DCT cancel).
    x = (0.2 + 0.6 * _photo_and_protected(1, (32, 48))[1]).requires_grad_(True)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    (ours,) = torch.autograd.grad((ops.jpeg(x, 75) * v).sum(), x)
    ycc = kornia.color.rgb_to_ycbcr(x)
    chroma = F.interpolate(F.avg_pool2d(ycc[:, 1:], 2), scale_factor=2.0, mode="bilinear", align_corners=False)
    linear = kornia.color.ycbcr_to_rgb(torch.cat([ycc[:, :1], chroma], 1))
    (ref,) = torch.autograd.grad((linear * v).sum(), x)
    assert torch.allclose(ours, ref, atol=2e-3, rtol=1e-2)  # kornia's colour matrices are rounded to 3 digits


def test_grey_and_odd_sizes_come_back_in_their_shape():
    grey = _photo_and_protected(3, (50, 70))[1].mean(1, keepdim=True)
    out = ops.jpeg(grey, torch.tensor([60.0]))
    assert out.shape == grey.shape and (out - grey).abs().mean() < 0.02


def test_the_codec_names_a_shape_it_cannot_code():
    with pytest.raises(ValueError, match="multiples of 16"):
        jpeg_round_trip(torch.zeros(1, 3, 24, 32), torch.tensor([75.0]))
