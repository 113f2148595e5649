import pytest
import torch
import torch.nn.functional as F

from guard_core import quality
from photo_guard.measure import _photo_stats


def test_large_photo_ssim_is_estimated_on_tiles_close_to_the_full_value():
    g = torch.Generator().manual_seed(0)
    clean = F.interpolate(torch.rand(1, 3, 200, 260, generator=g), size=(2000, 2600), mode="bilinear")[0]
    noisy = (clean + torch.randn(clean.shape, generator=g) * 0.02).clamp(0, 1)
    stats = _photo_stats(clean, noisy)
    full = float(quality.ssim(clean[None], noisy[None], 1.0)[0])
    assert abs(stats["ssim"] - full) < 0.01
    assert stats["linf_255"] == pytest.approx(float((noisy - clean).abs().max() * 255))
