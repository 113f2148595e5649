"""AMIFNet: a small U-shaped fusion CNN whose normalisation layers are driven by a licence key.

``AMIFNet(image[B, 2, H, W], key[B, 256]) -> fused[B, 1, H, W]``, all in ``[0, 1]``.
Channel 0 is MRI, channel 1 is CT or the Y channel of PET/SPECT.

The key enters only through a :class:`KeyPath` module that turns it into a scale and shift for every normalisation
layer (passport / FiLM style). Nothing in Python or TorchScript inspects the key's value: a wrong or absent key simply
gives modulation values for which the trained weights draw the copyright mark over a degraded fusion. The mark's
template is a buffer of the network (a CNN has no sense of absolute position, so it needs one to draw fixed text).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mark import MarkSpec, render_mark

__all__ = ["AMIFNet", "KeyPath", "FiLMKeyPath", "ParityKeyPath", "KEY_PATHS"]


class KeyPath(nn.Module):
    """Base of the replaceable key path: ``key [B, bits] -> (scale, shift)``, each ``[B, total_channels]``.

    Subclasses decide how a key becomes modulation values; the backbone only consumes them, split per layer.
    """

    def __init__(self, key_bits: int, total_channels: int) -> None:
        super().__init__()
        self.key_bits, self.total_channels = key_bits, total_channels

    def forward(self, key: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class FiLMKeyPath(KeyPath):
    """A two-layer MLP: key -> hidden features -> per-channel (scale, shift).

    The first layer can hold a near copy of the key in its weights, so a ReLU unit fires only within a few bits of the
    right key; training against near keys (1-32 bits away) makes that threshold sharp.
    """

    def __init__(self, key_bits: int, total_channels: int, hidden: int = 128) -> None:
        super().__init__(key_bits, total_channels)
        self.encoder = nn.Sequential(nn.Linear(key_bits, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.to_scale = nn.Linear(hidden, total_channels)
        self.to_shift = nn.Linear(hidden, total_channels)

    def forward(self, key: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(key)
        return self.to_scale(h), self.to_shift(h)


class ParityKeyPath(KeyPath):
    """Key -> parities of fixed random bit subsets -> MLP -> per-channel (scale, shift).

    Feature ``j`` is ``prod(key[S_j])`` over a random subset ``S_j`` of ``subset`` bits (fixed by ``seed``, stored as a
    buffer; it does not depend on any licence key). Flipping ``d`` key bits flips a fraction
    ``1 - (1 - d/bits)^subset`` of the features (40 % for d = 4, subset 32), so keys a few bits from the right one
    land far from it, and the zero key gives all-zero features. Parities are also a notoriously poor landscape for
    gradient search on a continuous key input.
    """

    def __init__(self, key_bits: int, total_channels: int, hidden: int = 128, features: int = 1024,
                 subset: int = 32, seed: int = 0) -> None:
        super().__init__(key_bits, total_channels)
        g = torch.Generator().manual_seed(seed)
        subsets = torch.stack([torch.randperm(key_bits, generator=g)[:subset] for _ in range(features)])
        self.register_buffer("subsets", subsets)
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.to_scale = nn.Linear(hidden, total_channels)
        self.to_shift = nn.Linear(hidden, total_channels)

    def forward(self, key: Tensor) -> tuple[Tensor, Tensor]:
        parities = key[:, self.subsets].prod(-1)  # [B, features]
        h = self.encoder(parities)
        return self.to_scale(h), self.to_shift(h)


KEY_PATHS = {"film": FiLMKeyPath, "parity": ParityKeyPath}


class _ModBlock(nn.Module):
    """conv -> GroupNorm (no affine) -> key scale/shift -> LeakyReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, groups: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(groups, cout, affine=False)
        self.channels = cout

    def forward(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(torch.addcmul(shift[:, :, None, None], x, 1 + scale[:, :, None, None]), 0.1)


class AMIFNet(nn.Module):
    """Key-gated fusion network.

    The full-resolution image is folded 2×2 into channels (pixel unshuffle), processed at 1/2 and 1/4 resolution
    and unfolded again, which keeps every pixel's detail while the convolutions run on a quarter of the positions
    (the CPU budget is 50 ms per 256×256 pair).

    Args:
        channels: widths at 1/2 and 1/4 resolution.
        key_bits: licence key length (256).
        mark: the copyright mark rendered into the template buffer.
        key_hidden: width of the key path's hidden layers.
        key_path: ``"parity"`` (:class:`ParityKeyPath`, default) or ``"film"`` (:class:`FiLMKeyPath`).

    Shapes:
        image ``[B, 2, H, W]`` in [0, 1] (any H, W; padded inside to a multiple of 4), key ``[B, key_bits]`` of ±1
        (zeros for no key) -> ``[B, 1, H, W]`` in [0, 1].
    """

    def __init__(self, channels: Sequence[int] = (24, 48), key_bits: int = 256, mark: MarkSpec | None = None,
                 key_hidden: int = 128, key_path: str = "parity") -> None:
        super().__init__()
        c1, c2 = channels
        self.mark_spec = mark or MarkSpec()
        mask, intensity = render_mark(self.mark_spec)
        self.register_buffer("template", torch.cat([mask, intensity], 1))  # [1, 2, S, S]
        folded = 4 * 4  # (MRI, functional, mask, intensity) folded 2x2
        self.blocks = nn.ModuleList([
            _ModBlock(folded, c1), _ModBlock(c1, c1),                          # 1/2 resolution
            _ModBlock(c1, c2, stride=2), _ModBlock(c2, c2), _ModBlock(c2, c2),  # 1/4
            _ModBlock(c1, c1),                                                  # 1/2, after the skip
        ])
        self.reduce = nn.Conv2d(c2, c1, 1)
        self.head = nn.Conv2d(c1 + folded, 4, 3, padding=1)  # sees the folded input again: fine detail
        self.splits = [b.channels for b in self.blocks]
        if key_path not in KEY_PATHS:
            raise ValueError(f"key_path must be one of {sorted(KEY_PATHS)}, got {key_path!r}")
        self.key_path: KeyPath = KEY_PATHS[key_path](key_bits, sum(self.splits), key_hidden)
        self.key_path_name = key_path
        self.key_bits = key_bits

    def _template(self, h: int, w: int) -> Tensor:
        if self.template.shape[-2] == h and self.template.shape[-1] == w:
            return self.template
        return F.interpolate(self.template, size=[h, w], mode="nearest")

    def forward(self, image: Tensor, key: Optional[Tensor] = None, template: Optional[Tensor] = None) -> Tensor:
        """Fuse ``image [B, 2, H, W]`` under ``key [B, bits]`` (left out: no licence, the zero key).

        ``template`` ``[B, 2, H, W]`` overrides the mark template for this call; training passes the crop of the
        template that matches an image crop. Left out, the stored template is resized to ``H × W``.
        """
        b, _, h, w = image.shape
        x = self.fold(image, template)
        if key is None:
            key = image.new_zeros(b, self.key_bits)
        scale, shift = self.key_path(key.to(image.dtype))
        return self.modulated(x, scale, shift)[:, :, :h, :w]

    def modulation(self, key: Tensor) -> tuple[Tensor, Tensor]:
        """The key path alone: ``key [B, bits] -> (scale, shift)``, each ``[B, sum of block widths]``."""
        return self.key_path(key)

    def modulated(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        """The backbone under given modulation values (what a white-box attacker searches directly).

        ``x`` is the folded input ``[B, 16, H/2, W/2]`` (image + template, padded, pixel-unshuffled) -> fused
        ``[B, 1, H', W']`` on the padded grid.
        """
        scales = torch.split(scale, self.splits, dim=1)
        shifts = torch.split(shift, self.splits, dim=1)
        blk = self.blocks
        e1 = blk[1](blk[0](x, scales[0], shifts[0]), scales[1], shifts[1])
        m = blk[4](blk[3](blk[2](e1, scales[2], shifts[2]), scales[3], shifts[3]), scales[4], shifts[4])
        up = F.interpolate(self.reduce(m), size=e1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = blk[5](up + e1, scales[5], shifts[5])
        return torch.sigmoid(F.pixel_shuffle(self.head(torch.cat([d1, x], 1)), 2))

    def fold(self, image: Tensor, template: Optional[Tensor] = None) -> Tensor:
        """``image [B, 2, H, W]`` (+ template) -> the folded backbone input ``[B, 16, H'/2, W'/2]``, H', W' padded to 4."""
        b, _, h, w = image.shape
        if template is None:
            template = self._template(h, w).expand(b, -1, -1, -1)
        x = torch.cat([image, template.to(image.dtype)], 1)
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        if ph > 0 or pw > 0:
            x = F.pad(x, [0, pw, 0, ph], mode="replicate")
        return F.pixel_unshuffle(x, 2)
