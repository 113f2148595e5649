"""photo_guard for pibooth: every picture the booth assembles is protected before it is printed or shared.

Enabled through the ``pibooth`` entry point of this distribution. Options (pibooth's config file, ``[PHOTO_GUARD]``):
``strength`` (low/default/strong) and ``steps``. The protected copy is written to a ``protected`` folder beside the
picture and becomes ``app.previous_picture_file``, so pibooth's print and share steps use it; the original stays.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

from .. import __version__

hookimpl = pluggy.HookimplMarker("pibooth")
SECTION = "PHOTO_GUARD"


@hookimpl
def pibooth_configure(cfg):
    cfg.add_option(
        SECTION,
        "strength",
        "default",
        "Protection budget: low, default or strong (4/8/16 /255)",
        "Strength",
        ["low", "default", "strong"],
    )
    cfg.add_option(SECTION, "steps", 40, "Optimisation steps per picture")


@hookimpl
def state_processing_exit(cfg, app, win):
    """The picture has just been saved (``app.previous_picture_file``): protect it and hand the copy on."""
    from .share import share_photo

    if not app.previous_picture_file:
        return
    src = Path(app.previous_picture_file)
    config = {"strength": cfg.get(SECTION, "strength"), "steps": int(cfg.getint(SECTION, "steps"))}
    protected = share_photo(src, {"out_dir": src.parent / "protected", "config": config, "host": "pibooth"})
    if protected is not None:
        app.previous_picture_file = str(protected)


__all__ = ["pibooth_configure", "state_processing_exit", "__version__"]
