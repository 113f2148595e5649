"""Protection objectives and EOT transforms, by name, as plugins register them.

Filled through the hooks ``register_objectives`` and ``register_transforms`` (the built-ins arrive as the "default"
plugin, like every other plugin). Pluggy calls the most recently registered plugin first and the first registration
of a name wins, so a third-party plugin can replace a built-in by registering the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import PhotoGuardError

__all__ = ["objective", "transforms", "objectives", "transform_names"]

_OBJECTIVES: dict[str, Callable[..., Any]] = {}
_TRANSFORMS: dict[str, Any] = {}
_collected = False


def _collect() -> None:
    global _collected
    if not _collected:
        from .plugins import load_plugins

        _collected = True
        hook = load_plugins().hook
        hook.register_objectives(register=lambda name, fn: _OBJECTIVES.setdefault(name, fn))
        hook.register_transforms(register=lambda name, t: _TRANSFORMS.setdefault(name, t))


def objectives() -> dict[str, Callable[..., Any]]:
    """Every registered objective by name."""
    _collect()
    return dict(_OBJECTIVES)


def transform_names() -> list[str]:
    """Every registered EOT transform's name, in registration order."""
    _collect()
    return list(_TRANSFORMS)


def objective(name: str) -> Callable[..., Any]:
    """The objective registered as ``name`` (see :func:`photo_guard.objective.dp2vl_loss` for the signature)."""
    _collect()
    if name not in _OBJECTIVES:
        raise PhotoGuardError(f"unknown objective {name!r}; registered: {', '.join(sorted(_OBJECTIVES))}")
    return _OBJECTIVES[name]


def transforms(names: tuple[str, ...] | None = None) -> list[Any]:
    """The EOT transforms called ``names`` (None: every registered one)."""
    _collect()
    unknown = [n for n in names or () if n not in _TRANSFORMS]
    if unknown:
        raise PhotoGuardError(f"unknown transforms {unknown}; registered: {', '.join(_TRANSFORMS)}")
    return [_TRANSFORMS[n] for n in (names if names is not None else _TRANSFORMS)]
