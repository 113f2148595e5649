"""The resize draw followed by the face's re-detected warp (photo_guard.redetect)."""

from dataclasses import replace

import pytest
import torch

from guard_core import eot, ops
from photo_guard.faces import face_alignments, warp_faces
from photo_guard.protect import ProtectConfig, _redetected, protect_set
from photo_guard.redetect import Redetected, redetected_warps
from tests.photo_guard.conftest import TinyEncoder


def _face(size: int = 256) -> torch.Tensor:
    """skimage's astronaut, cropped around her face: ``[1, 3, size, size]``."""
    data = pytest.importorskip("skimage.data")
    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255
    return ops.resize(image[..., :320, 100:420], (size, size))


def test_the_warp_puts_the_face_where_the_finder_puts_it_on_the_half_size_copy():
    x = _face()
    align, found = face_alignments(x)
    assert found == [True]
    small = (ops.resize(x, (128, 128)) * 255).round() / 255
    small_align, small_found = face_alignments(small)
    assert small_found == [True]
    attacker = warp_faces(small, small_align)  # what the attacker's encoder sees after resizing
    matrix = redetected_warps(x, align)
    warped = Redetected(eot.Identity(), matrix)(x)
    before = (warp_faces(x, align) - attacker).abs().mean()
    after = (warp_faces(warped, align) - attacker).abs().mean()
    assert after < 0.8 * before, (float(before), float(after))


def test_no_face_on_the_small_copy_leaves_the_photo_where_it_is():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8, generator=g), size=(64, 64), mode="bicubic").clamp(0, 1)
    align = face_alignments(x)[0]
    matrix = redetected_warps(x, align)
    assert torch.allclose(matrix, torch.eye(3)[:2].expand(2, 2, 3))
    assert torch.allclose(Redetected(eot.Identity(), matrix)(x), x, atol=1e-5)


def test_only_the_resize_draw_is_followed_by_the_warp():
    x = _face(128)
    align = face_alignments(x)[0]
    draws = _redetected([eot.RandomJPEG(), eot.RandomResize()], ("RandomJPEG", "RandomResize"), x, align)
    assert isinstance(draws[0], eot.RandomJPEG)
    assert isinstance(draws[1], Redetected) and isinstance(draws[1].transform, eot.RandomResize)


def test_protection_with_the_redetected_warp_is_repeatable_and_differs():
    """The warp is fixed per photo (measured on the clean copy), so a rerun gives the same file."""
    face = TinyEncoder(0)
    face.face = True
    photo = (_face(96)[0] * 255).round() / 255
    cfg = ProtectConfig(steps=3, transforms=("RandomResize",), redetect=True, second_view=False, device="cpu")
    runs = [
        protect_set([photo], c, encoders=[face], measure_result=False)[0].pixels
        for c in (cfg, cfg, replace(cfg, redetect=False))
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
