"""SFace's network as a plain torch chain, read from its onnx2torch conversion once and kept as safetensors.

SFace is a chain without branches: ``(x − 127.5)·0.0078125``, 27 convolution + PReLU pairs, a BatchNorm, dropout (a
no-op in eval mode), flatten and one linear layer. Rebuilt from a safetensors file it needs neither ``onnx`` nor
``onnx2torch``: in a fresh process building SFace took 3.0-3.6 s, now 0.16-0.22 s, and with timm and torchvision now
imported by EfficientNet-Lite0 instead, about 1 s less passes before a ``photo-guard`` call's first photo
(docs/photo_guard.md, "Speed"). The ops are the converted graph's own, so the embedding and its gradient are the same
to the last bit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SFaceNet", "prelu_fixed_slope"]


class _PReLUFixedSlope(torch.autograd.Function):
    """PReLU whose backward gives the input's gradient only (aten's also reduces the slope's)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, slope: Tensor) -> Tensor:
        ctx.save_for_backward(x, slope)
        return F.prelu(x, slope)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, slope = ctx.saved_tensors
        # g where x > 0, else 0 (aten's side at an exact 0: one did occur in a protection, and Adam carried a
        # difference there to 9 levels), plus slope·(g − that): exactly g or slope·g. Three passes over the tensor where
        # a mask made in floats took six (a bool mask and torch.where are slower still on this CPU).
        passed = torch.ops.aten.threshold_backward(grad, x, 0)
        return torch.addcmul(passed, slope.view(-1, *[1] * (x.dim() - 2)), grad - passed), None


def prelu_fixed_slope(x: Tensor, slope: Tensor) -> Tensor:
    """``F.prelu(x, slope)`` for a slope that is not trained: ``[B, C, H, W]``, ``slope [C]`` -> ``[B, C, H, W]``.

    The gradient with respect to ``x`` is aten's to the bit (``g`` where ``x > 0``, else ``slope·g``), and SFace's
    forward and backward on one core take ×0.85-0.90 of the time: aten's backward also reduces the slope's gradient,
    which nobody asks for here (``benchmarks/encoder_speed.py --threads 1``).
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        return F.prelu(x, slope)
    out: Tensor = _PReLUFixedSlope.apply(x, slope)
    return out


class SFaceNet(nn.Module):
    """``[B, 3, 112, 112]`` BGR in 0-255 -> ``[B, 128]``: SFace's layers, BatchNorms folded into the convolutions
    before them (eval mode only)."""

    mean: Tensor
    scale: Tensor

    def __init__(self, convs: list[nn.Conv2d], slopes: list[Tensor], norm: nn.BatchNorm2d, fc: nn.Linear) -> None:
        super().__init__()
        if len(convs) != len(slopes):
            raise ValueError(f"{len(convs)} convolutions but {len(slopes)} PReLU slopes")
        self.convs = nn.ModuleList(convs)
        for i, s in enumerate(slopes):
            self.register_buffer(f"slope{i}", s.reshape(-1).clone())
        self.norm, self.fc = norm, fc
        self.register_buffer("mean", torch.tensor([127.5]))
        self.register_buffer("scale", torch.tensor([0.0078125]))
        self.activation: Callable[[Tensor, Tensor], Tensor] = prelu_fixed_slope  # F.prelu: aten's (the benchmark's)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean) * self.scale
        for i, conv in enumerate(self.convs):
            x = self.activation(conv(x), getattr(self, f"slope{i}"))
        return self.fc(torch.flatten(self.norm(x), 1))

    @classmethod
    def from_converted(cls, graph: torch.fx.GraphModule) -> SFaceNet:
        """Read the chain off onnx2torch's (folded) conversion, checking that it is the chain this class runs."""
        ops = [n for n in graph.graph.nodes if n.op in ("call_module", "call_function", "call_method")]
        mods = [graph.get_submodule(str(n.target)) for n in ops if n.op == "call_module"]
        kinds = [type(m).__name__ for m in mods]
        convs = [m for m in mods if isinstance(m, nn.Conv2d)]
        n = len(convs)
        want = ["OnnxBinaryMathOperation"] * 2 + ["Conv2d", "OnnxPReLU"] * n + ["BatchNorm2d"]
        want += ["OnnxConstant", "OnnxDropoutDynamic", "Flatten", "Linear"]
        if kinds != want or len(ops) != len(mods):
            raise ValueError(f"SFace's converted graph is not the expected chain: {kinds}")
        slopes = [_operand(graph, node) for node, kind in zip(ops, kinds) if kind == "OnnxPReLU"]
        norm, fc = mods[2 + 2 * n], mods[-1]
        assert isinstance(norm, nn.BatchNorm2d) and isinstance(fc, nn.Linear)  # the kinds were checked above
        net = cls(convs, slopes, norm, fc)
        mean, scale = _operand(graph, ops[0]), _operand(graph, ops[1])
        if not (torch.equal(mean, net.mean) and torch.equal(scale, net.scale)):
            raise ValueError(f"SFace's input scaling is ({mean}, {scale}), not (127.5, 1/128)")
        return net.eval()

    def save(self, path: Path) -> None:
        """Weights as safetensors; each convolution's stride, padding and groups in its metadata."""
        from safetensors.torch import save_file

        layout = [[c.stride, c.padding, c.groups] for c in self.convs]
        meta = {"convs": json.dumps(layout), "norm_eps": repr(self.norm.eps)}
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: Path) -> SFaceNet:
        """The chain :meth:`save` wrote (safetensors: reading it runs no code). Raises ValueError if malformed."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta, tensors = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except SafetensorError as exc:
            raise ValueError(f"{path}: not a safetensors file ({exc})") from None
        try:
            layout = json.loads(meta["convs"])
            convs = [_conv(tensors, i, *spec) for i, spec in enumerate(layout)]
            slopes = [tensors[f"slope{i}"] for i in range(len(convs))]
            norm = nn.BatchNorm2d(tensors["norm.weight"].numel(), eps=float(meta["norm_eps"]))
            fc_w = tensors["fc.weight"]
            net = cls(convs, slopes, norm, nn.Linear(fc_w.shape[1], fc_w.shape[0]))
            net.load_state_dict(tensors)  # strict: a missing or extra tensor is a malformed file, not a silent default
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path}: not an SFace chain ({exc})") from None
        return net.eval()


def _conv(tensors: dict[str, Tensor], i: int, stride: list[int], padding: list[int], groups: int) -> nn.Conv2d:
    w = tensors[f"convs.{i}.weight"]
    kernel = (w.shape[2], w.shape[3])
    return nn.Conv2d(
        w.shape[1] * groups, w.shape[0], kernel, (stride[0], stride[1]), (padding[0], padding[1]), groups=groups
    )


def _operand(graph: torch.fx.GraphModule, node: torch.fx.Node) -> Tensor:
    """The constant second operand of an onnx2torch op (an initializer, read through ``get_attr``)."""
    arg = node.args[1]
    if not isinstance(arg, torch.fx.Node) or arg.op != "get_attr":
        raise ValueError(f"expected a constant operand of {node.name}, got {arg}")
    value: Any = graph
    for part in str(arg.target).split("."):
        value = getattr(value, part)
    return value.detach().clone()
