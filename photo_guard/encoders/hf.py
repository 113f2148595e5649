"""VLM vision towers through transformers, loaded only from a local folder or the local cache.

* ``clip-vit-l-336``: CLIP ViT-L/14 at 336 px as LLaVA-1.5 uses it: penultimate layer, patch tokens (CLS dropped),
  mean-pooled.
* ``siglip``: a SigLIP vision tower: last layer patch tokens, mean-pooled.

Each model's image processor is reproduced in torch (resize, centre crop, rescale, normalise) so gradients reach the
pixels; the processor's own settings are read from the checkpoint folder. Where to load from: the ``model`` argument,
else ``$PHOTO_GUARD_CLIP`` / ``$PHOTO_GUARD_SIGLIP``, else the usual Hugging Face id (resolved in the local cache only,
``local_files_only=True``: photo_guard never downloads at protection time).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from guard_core import ops

from .base import Encoder, EncoderUnavailable

__all__ = ["CLIPVisionEncoder", "SiglipVisionEncoder"]


def _processor_size(value, key: str, default: int) -> int:
    """Read ``key`` (else ``height``) from a processor's size, which is an int, a dict or transformers' SizeDict."""
    if value is None or isinstance(value, (int, float)):
        return int(value or default)
    for k in (key, "height"):
        v = value.get(k) if isinstance(value, dict) else getattr(value, k, None)
        if v:
            return int(v)
    return default


class _HFVisionEncoder(Encoder):
    env: str = ""
    default_id: str = ""
    layer: int = -1

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        source = model or os.environ.get(self.env) or self.default_id
        try:
            from transformers import AutoImageProcessor
        except ImportError:
            raise EncoderUnavailable(f"{self.name} needs transformers (pip install 'image-guard[photo]')") from None
        try:
            self.net = self._load(source)
            processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(f"{self.name}: no local copy of {source!r} (set ${self.env} to a folder; "
                                     f"{type(exc).__name__})") from None
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
        self.rescale = float(getattr(processor, "rescale_factor", 1 / 255)) * 255  # our pixels are already /255
        self._configure(processor)
        self.load_reference_mean()

    def _load(self, source: str):  # pragma: no cover - subclass
        raise NotImplementedError

    def _configure(self, processor) -> None:  # pragma: no cover - subclass
        raise NotImplementedError

    def _normalise(self, x: Tensor) -> Tensor:
        return (x * self.rescale - self.mean.to(x)) / self.std.to(x)

    def features(self, x: Tensor) -> Tensor:
        out = self.net(pixel_values=x, output_hidden_states=True)
        tokens = out.hidden_states[self.layer]
        return tokens[:, self.skip_tokens:].mean(1)


class CLIPVisionEncoder(_HFVisionEncoder):
    """CLIP vision tower; LLaVA-1.5 reads the penultimate layer's patch tokens."""

    name = "clip-vit-l-336"
    env = "PHOTO_GUARD_CLIP"
    default_id = "openai/clip-vit-large-patch14-336"
    layer = -2
    skip_tokens = 1

    def _load(self, source: str):
        from transformers import CLIPVisionModel

        return CLIPVisionModel.from_pretrained(source, local_files_only=True)

    def _configure(self, processor) -> None:
        self.short_side = _processor_size(processor.size, "shortest_edge", 336)
        crop = _processor_size(processor.crop_size, "height", self.short_side)
        self.input_size = (crop, crop)

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        h, w = images.shape[-2:]
        s = self.short_side / min(h, w)
        size = (max(self.short_side, int(h * s)), max(self.short_side, int(w * s)))
        x = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
        return self._normalise(ops.center_crop(x, self.input_size))


class SiglipVisionEncoder(_HFVisionEncoder):
    """SigLIP vision tower (square resize, no crop), last layer's patch tokens."""

    name = "siglip"
    env = "PHOTO_GUARD_SIGLIP"
    default_id = "google/siglip-so400m-patch14-384"
    layer = -1
    skip_tokens = 0

    def _load(self, source: str):
        from transformers import SiglipVisionModel

        return SiglipVisionModel.from_pretrained(source, local_files_only=True)

    def _configure(self, processor) -> None:
        side = _processor_size(processor.size, "height", 224)
        self.input_size = (side, side)

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        x = F.interpolate(images, size=self.input_size, mode="bicubic", align_corners=False, antialias=True)
        return self._normalise(x)
