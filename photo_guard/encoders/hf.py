"""VLM vision towers through transformers, loaded only from a local folder or the local cache.

* ``clip-vit-l-336``: CLIP ViT-L/14 at 336 px as LLaVA-1.5 uses it: penultimate layer, patch tokens (CLS dropped),
  mean-pooled.
* ``siglip``: a SigLIP vision tower: last layer patch tokens, mean-pooled.
* ``qwen2-vl``: Qwen2-VL's vision tower: merged visual tokens (what the language model reads), mean-pooled.

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

__all__ = ["CLIPVisionEncoder", "SiglipVisionEncoder", "Qwen2VLVisionEncoder"]


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
            raise EncoderUnavailable(
                f"{self.name}: no local copy of {source!r} (set ${self.env} to a folder; {type(exc).__name__})"
            ) from None
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
        return tokens[:, self.skip_tokens :].mean(1)


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


class Qwen2VLVisionEncoder(Encoder):
    """Qwen2-VL's vision tower: dynamic-resolution patches (multiples of 28 px), merged tokens mean-pooled.

    Only the ``visual.*`` weights are read from the checkpoint's safetensors (the language model is never loaded).
    The processor's resize (``smart_resize``), rescale, normalisation and patch ordering are reproduced in torch.
    """

    name = "qwen2-vl"
    env = "PHOTO_GUARD_QWEN2VL"
    default_id = "Qwen/Qwen2-VL-2B-Instruct"

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        source = model or os.environ.get(self.env) or self.default_id
        try:
            from transformers import AutoConfig, AutoImageProcessor
            from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel
        except ImportError:
            raise EncoderUnavailable("qwen2-vl needs transformers >= 4.45 (pip install 'image-guard[photo]')") from None
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=True)
            processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
            state = _visual_state_dict(source)
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(
                f"{self.name}: no local copy of {source!r} (set ${self.env} to a folder; {type(exc).__name__})"
            ) from None
        self.net = Qwen2VisionTransformerPretrainedModel._from_config(config.vision_config)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing:
            raise EncoderUnavailable(f"{self.name}: {len(missing)} vision weights missing in {source!r}")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.patch, self.merge = int(processor.patch_size), int(processor.merge_size)
        self.temporal = int(processor.temporal_patch_size)
        self.min_pixels, self.max_pixels = int(processor.size.shortest_edge), int(processor.size.longest_edge)
        self.mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
        self.input_size = (448, 448)
        self.load_reference_mean()

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        h0, w0 = images.shape[-2:]
        h, w = smart_resize(
            h0, w0, factor=self.patch * self.merge, min_pixels=self.min_pixels, max_pixels=self.max_pixels
        )
        x = F.interpolate(images, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        return (x - self.mean.to(x)) / self.std.to(x)

    def patchify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, 3, H, W]`` -> (``[B·gh·gw, 3·T·P·P]`` patches in the processor's order, ``grid_thw [B, 3]``)."""
        b, c, h, w = x.shape
        p, m = self.patch, self.merge
        gh, gw = h // p, w // p
        patches = x.reshape(b, c, gh // m, m, p, gw // m, m, p).permute(0, 2, 5, 3, 6, 1, 4, 7)
        patches = patches.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, self.temporal, -1, -1)
        flat = patches.reshape(b * gh * gw, c * self.temporal * p * p)
        grid = torch.tensor([[1, gh, gw]] * b, device=x.device)
        return flat, grid

    def features(self, x: Tensor) -> Tensor:
        flat, grid = self.patchify(x)
        out = self.net(flat, grid_thw=grid)
        merged = out.pooler_output if getattr(out, "pooler_output", None) is not None else out[0]
        return merged.reshape(x.shape[0], -1, merged.shape[-1]).mean(1)


def _visual_state_dict(source: str) -> dict:
    """The ``visual.*`` tensors of a Qwen2-VL checkpoint (any prefix before ``visual.``), keys without it."""
    from pathlib import Path

    from huggingface_hub import snapshot_download
    from safetensors import safe_open

    folder = Path(source) if Path(source).is_dir() else Path(snapshot_download(source, local_files_only=True))
    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for k in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                if "visual." in k:
                    state[k.split("visual.", 1)[1]] = f.get_tensor(k)
    if not state:
        raise OSError(f"no visual.* weights in {folder}")
    return state
