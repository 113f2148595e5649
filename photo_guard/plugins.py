"""The one PluginManager: built-in defaults first, then third-party plugins from the ``photo_guard`` entry points.

``PHOTO_GUARD_PLUGINS`` restricts what loads: a comma-separated list of plugin names (``default`` is the built-ins);
empty string = built-ins only.
"""

from __future__ import annotations

import importlib
import os

import pluggy

from . import hookspecs

__all__ = ["pm", "load_plugins", "loaded_plugins", "ENV"]

ENV = "PHOTO_GUARD_PLUGINS"
DEFAULT_PLUGINS = ("photo_guard.default_plugins",)

pm = pluggy.PluginManager("photo_guard")
pm.add_hookspecs(hookspecs)
_loaded = False


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV)
    return None if value is None else {v.strip() for v in value.split(",") if v.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Register the built-ins and (outside tests) the entry-point plugins, once; then check every hook is known."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = _allowed()
    for module in DEFAULT_PLUGINS:
        if allowed is None or "default" in allowed or not allowed:
            pm.register(importlib.import_module(module), name="default")
    if allowed is None:
        pm.load_setuptools_entrypoints("photo_guard")
    else:
        for name in allowed - {"default"}:
            pm.load_setuptools_entrypoints("photo_guard", name=name)
    pm.check_pending()
    return pm


def loaded_plugins() -> list[dict]:
    """Name, module and distribution version of every registered plugin, for ``photo-guard plugins``."""
    from . import __version__

    versions = {id(plugin): f"{dist.project_name} {dist.version}" for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        version = versions.get(id(plugin)) or (f"photo_guard {__version__} (built in)" if name == "default" else "")
        out.append({"name": name, "module": getattr(plugin, "__name__", repr(plugin)), "version": version})
    return out
