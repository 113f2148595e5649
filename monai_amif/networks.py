"""AMIFNet: a small U-shaped fusion CNN whose normalisation layers are driven by a licence key.

``AMIFNet(image[B, 2, H, W], key[B, 256]) -> fused[B, 1, H, W]``, all in ``[0, 1]``.
Channel 0 is MRI, channel 1 is CT or the Y channel of PET/SPECT.

The key enters only through a :class:`KeyPath` module that turns it into a scale and shift for every normalisation
layer (passport / FiLM style). Nothing in Python or TorchScript inspects the key's value: a wrong or absent key simply
gives modulation values for which the trained weights draw the copyright mark over a degraded fusion. The mark's
template is a buffer of the network (a CNN has no sense of absolute position, so it needs one to draw fixed text).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mark import MarkSpec, render_mark, template_at

__all__ = ["AMIFNet", "KeyPath", "FiLMKeyPath", "ParityKeyPath", "GatedParityKeyPath", "KEY_PATHS", "OUTPUTS"]


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

    def __init__(
        self,
        key_bits: int,
        total_channels: int,
        hidden: int = 128,
        features: int = 1024,
        subset: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(key_bits, total_channels)
        g = torch.Generator().manual_seed(seed)
        subsets = torch.stack([torch.randperm(key_bits, generator=g)[:subset] for _ in range(features)])
        self.register_buffer("subsets", subsets)
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.to_scale = nn.Linear(hidden, total_channels)
        self.to_shift = nn.Linear(hidden, total_channels)

    def parities(self, key: Tensor) -> Tensor:
        """``key [B, bits] -> [B, features]``: the product of each fixed subset's key bits."""
        return key[:, self.subsets].prod(-1)

    def forward(self, key: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(self.parities(key))
        return self.to_scale(h), self.to_shift(h)


class GatedParityKeyPath(ParityKeyPath):
    """:class:`ParityKeyPath` whose output is blended, per key, between the MLP's values and one learned
    "unlicensed" modulation ``m0`` by a detector ``g = sigmoid(20 · (cos(parities, w) - 0.6))``.

    ``w`` is learned like every other weight; training drives it toward the right key's parity vector, the only input
    for which the clean fusion is rewarded. Flipping ``d`` key bits flips a share ``1 - (1 - d/bits)^subset`` of the
    parities, so the cosine falls from 1 to about 0.75 (1 bit), 0.56 (2 bits) and 0.2 (4 bits), and to about 0 for
    random keys and the zero key: every key but the right one (and keys 1-2 bits from it) gets ``m0`` and with it the
    one unlicensed output. Why: with the blend head a clean output was the easy output of many modulations, and keys
    the training never drew fell into it (docs/amif.md, issue 13). The price: ``w`` holds the right key's parities,
    from which the key can be solved; anyone with the plain weights could already unlock it (docs/amif.md, attacks).
    """

    def __init__(self, key_bits: int, total_channels: int, hidden: int = 128, **kw: int) -> None:
        super().__init__(key_bits, total_channels, hidden, **kw)
        self.sharpness, self.threshold = 20.0, 0.6
        features = self.subsets.shape[0]
        self.detector = nn.Parameter(torch.randn(features) / features**0.5)
        self.unlicensed = nn.Parameter(torch.zeros(2, total_channels))

    @torch.jit.unused
    def aim(self, key: Tensor) -> None:
        """Start the detector at ``key``'s parities ``[bits]`` (training does, with the key it trains for: from a random
        start the detector is saturated shut for every key and gets no gradient)."""
        with torch.no_grad():
            self.detector.copy_(self.parities(key[None])[0])

    def forward(self, key: Tensor) -> tuple[Tensor, Tensor]:
        parities = self.parities(key)
        cos = F.cosine_similarity(parities, self.detector[None], dim=1, eps=1e-6)
        g = torch.sigmoid(self.sharpness * (cos - self.threshold))[:, None]
        h = self.encoder(parities)
        scale = g * self.to_scale(h) + (1 - g) * self.unlicensed[0]
        shift = g * self.to_shift(h) + (1 - g) * self.unlicensed[1]
        return scale, shift


KEY_PATHS = {"film": FiLMKeyPath, "parity": ParityKeyPath, "gated": GatedParityKeyPath}
OUTPUTS = ("direct", "blend")


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


class _DownStage(nn.Module):
    """Two modulated blocks; the first strided (one level down) unless ``stride`` is 1."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.first, self.second = _ModBlock(cin, cout, stride), _ModBlock(cout, cout)

    def forward(self, x: Tensor, s1: Tensor, b1: Tensor, s2: Tensor, b2: Tensor) -> Tensor:
        return self.second(self.first(x, s1, b1), s2, b2)


class _UpStage(nn.Module):
    """1×1 reduce, bilinear upsample to the skip, add it, one modulated block."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce, self.block = nn.Conv2d(cin, cout, 1), _ModBlock(cout, cout)

    def forward(self, x: Tensor, skip: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        up = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(up + skip, scale, shift)


class AMIFNet(nn.Module):
    """Key-gated fusion network.

    The full-resolution image is folded 2×2 into channels (pixel unshuffle) and run through a small U-Net whose
    levels sit at 1/2, 1/4 (and 1/8) resolution, then unfolded again: every pixel's detail is kept while the
    convolutions run on a quarter of the positions (the CPU budget is 50 ms per 256×256 pair), and the deep,
    cheap levels carry most of the parameters.

    Two output heads:

    * ``"direct"``: the fused image is ``sigmoid(head)``, drawn from scratch.
    * ``"blend"``: the head gives a per-pixel weight ``w`` and a residual ``r``; the fused image is
      ``sigmoid(logit(w·A + (1 - w)·B) + r)``. With ``r = 0`` it is a soft selection between the sources, so the
      brighter source can be kept at full brightness exactly (what the max rule gets right); ``r`` adds detail, and
      under a wrong key it draws the mark over the blurred fusion.

    Args:
        channels: widths per level (2 or 3 levels: 1/2, 1/4, 1/8 resolution).
        key_bits: licence key length (256).
        mark: the copyright mark rendered into the template buffer.
        key_hidden: width of the key path's hidden layers.
        key_path: ``"parity"`` (:class:`ParityKeyPath`, default) or ``"film"`` (:class:`FiLMKeyPath`).
        output: ``"blend"`` or ``"direct"`` (see above).

    Shapes:
        image ``[B, 2, H, W]`` in [0, 1] (any H, W; padded inside to a multiple of 2^levels), key ``[B, key_bits]``
        of ±1 (zeros for no key) -> ``[B, 1, H, W]`` in [0, 1].
    """

    def __init__(
        self,
        channels: Sequence[int] = (24, 48),
        key_bits: int = 256,
        mark: MarkSpec | None = None,
        key_hidden: int = 128,
        key_path: str = "parity",
        output: str = "direct",
    ) -> None:
        super().__init__()
        if len(channels) not in (2, 3):
            raise ValueError(f"channels must give 2 or 3 levels, got {tuple(channels)}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.channels, self.output = tuple(int(c) for c in channels), output
        self.mark_spec = mark or MarkSpec()
        mask, intensity = render_mark(self.mark_spec)
        self.register_buffer("template", torch.cat([mask, intensity], 1))  # [1, 2, S, S]
        folded = 4 * 4  # (MRI, functional, mask, intensity) folded 2x2
        c = self.channels
        # Encoder: a stage of two blocks per level (strided from the second level on); one more block at the bottom;
        # decoder: one up-stage per level on the way back to 1/2 resolution.
        self.encoder = nn.ModuleList(
            [_DownStage(folded if i == 0 else c[i - 1], c[i], 1 if i == 0 else 2) for i in range(len(c))]
        )
        self.bottom = _ModBlock(c[-1], c[-1])
        self.decoder = nn.ModuleList([_UpStage(c[i], c[i - 1]) for i in range(len(c) - 1, 0, -1)])
        out_channels = 2 if output == "blend" else 1
        self.head = nn.Conv2d(c[0] + folded, 4 * out_channels, 3, padding=1)  # sees the folded input: fine detail
        self.splits = [b.channels for b in self.blocks()]
        if key_path not in KEY_PATHS:
            raise ValueError(f"key_path must be one of {sorted(KEY_PATHS)}, got {key_path!r}")
        self.key_path: KeyPath = KEY_PATHS[key_path](key_bits, sum(self.splits), key_hidden)
        self.key_hidden = key_hidden
        self.key_path_name = key_path
        self.key_bits = key_bits
        self.multiple = 2 ** len(c)  # the padded grid: 2 for the fold, 2 per strided level
        # Set from the model file's metadata by monai_amif.loading (public: the key's fingerprint, the blur's σ).
        self.accepted_fingerprint: str | None = None
        self.degrade_sigma = 3.0

    def template_at(self, h: int, w: int) -> Tensor:
        """The mark template (mask, intensity) ``[1, 2, h, w]`` this network draws at that size."""
        return template_at(self.template, h, w)

    def forward(self, image: Tensor, key: Tensor | None = None, template: Tensor | None = None) -> Tensor:
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

    @torch.jit.unused
    def blocks(self) -> list[_ModBlock]:
        """The modulated blocks in the order the key path's scale/shift values are laid out."""
        enc: list[_ModBlock] = []
        for stage in self.encoder:
            assert isinstance(stage, _DownStage)
            enc += [stage.first, stage.second]
        dec = [stage.block for stage in self.decoder if isinstance(stage, _UpStage)]
        return [*enc, self.bottom, *dec]

    def modulated(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        """The backbone under given modulation values (what a white-box attacker searches directly).

        ``x`` is the folded input ``[B, 16, H'/2, W'/2]`` (image + template, padded, pixel-unshuffled) -> fused
        ``[B, 1, H', W']`` on the padded grid.
        """
        scales = torch.split(scale, self.splits, dim=1)
        shifts = torch.split(shift, self.splits, dim=1)
        k = 0
        skips: list[Tensor] = []
        h = x
        for stage in self.encoder:
            h = stage(h, scales[k], shifts[k], scales[k + 1], shifts[k + 1])
            skips.append(h)
            k += 2
        h = self.bottom(skips.pop(), scales[k], shifts[k])
        k += 1
        for stage in self.decoder:
            h = stage(h, skips.pop(), scales[k], shifts[k])
            k += 1
        out = F.pixel_shuffle(self.head(torch.cat([h, x], 1)), 2)
        if self.output == "direct":
            return torch.sigmoid(out)
        image = F.pixel_shuffle(x, 2)[:, :2]  # the padded sources (MRI, functional)
        w = torch.sigmoid(out[:, :1])
        base = (w * image[:, 1:2] + (1 - w) * image[:, :1]).clamp(1e-3, 1 - 1e-3)
        return torch.sigmoid(torch.logit(base) + out[:, 1:2])

    def fold(self, image: Tensor, template: Tensor | None = None) -> Tensor:
        """``image [B, 2, H, W]`` (+ template) -> the folded backbone input ``[B, 16, H'/2, W'/2]``, H', W' padded to
        the network's multiple."""
        b, _, h, w = image.shape
        if template is None:
            template = self.template_at(h, w).expand(b, -1, -1, -1)
        x = torch.cat([image, template.to(image.dtype)], 1)
        m = self.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        if ph > 0 or pw > 0:
            x = F.pad(x, [0, pw, 0, ph], mode="replicate")
        return F.pixel_unshuffle(x, 2)
