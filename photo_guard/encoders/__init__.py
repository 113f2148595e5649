"""Vision encoders photo_guard optimises against and evaluates with.

``build_encoder(name)`` makes one by name; ``available_encoders()`` says which can be built here and why not the rest.
Built-in names: ``sface`` (face identity, offline), ``efficientnet_lite0`` (ImageNet features, offline),
``face_student`` (a face-identity student distilled from SFace here; weights trained locally, see
``photo_guard.encoders.distill``), and the VLM
vision towers ``clip-vit-l-336``, ``siglip`` and ``qwen2-vl`` loaded from a local folder or the Hugging Face cache.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Encoder, EncoderUnavailable

__all__ = [
    "Encoder",
    "EncoderUnavailable",
    "ENCODERS",
    "BUILTIN_ENCODERS",
    "build_encoder",
    "available_encoders",
    "DEFAULT_ENCODERS",
]

DEFAULT_ENCODERS = ("sface", "efficientnet_lite0")


def _sface() -> Encoder:
    from .sface import SFaceEncoder

    return SFaceEncoder()


def _effnet() -> Encoder:
    from .efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder()


def _student() -> Encoder:
    from .student import FaceStudentEncoder

    return FaceStudentEncoder()


def _clip() -> Encoder:
    from .hf import CLIPVisionEncoder

    return CLIPVisionEncoder()


def _siglip() -> Encoder:
    from .hf import SiglipVisionEncoder

    return SiglipVisionEncoder()


def _qwen2vl() -> Encoder:
    from .hf import Qwen2VLVisionEncoder

    return Qwen2VLVisionEncoder()


BUILTIN_ENCODERS: dict[str, Callable[[], Encoder]] = {
    "sface": _sface,
    "efficientnet_lite0": _effnet,
    "face_student": _student,
    "clip-vit-l-336": _clip,
    "siglip": _siglip,
    "qwen2-vl": _qwen2vl,
}
# Filled through the plugin hook ``register_encoders`` (the built-ins above come in as the "default" plugin).
ENCODERS: dict[str, Callable[[], Encoder]] = {}
_CACHE: dict[str, Encoder] = {}
_collected = False


def _collect() -> dict[str, Callable[[], Encoder]]:
    global _collected
    if not _collected:
        from ..plugins import load_plugins

        _collected = True
        load_plugins().hook.register_encoders(register=lambda name, factory: ENCODERS.setdefault(name, factory))
    return ENCODERS


def build_encoder(name: str) -> Encoder:
    """Build (once per process) the encoder called ``name``.

    Raises:
        EncoderUnavailable: unknown name, or its weights/packages are missing here.
    """
    if name not in _collect():
        raise EncoderUnavailable(f"unknown encoder {name!r}; known: {', '.join(sorted(ENCODERS))}")
    if name not in _CACHE:
        _CACHE[name] = ENCODERS[name]().eval()
    return _CACHE[name]


def available_encoders() -> dict[str, str]:
    """``{name: "ok" | reason it cannot be built here}``."""
    out = {}
    for name in sorted(_collect()):
        try:
            build_encoder(name)
            out[name] = "ok"
        except EncoderUnavailable as exc:
            out[name] = str(exc)
    return out
