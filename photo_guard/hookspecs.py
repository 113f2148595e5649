"""The photo_guard plugin contract (pluggy). Marker name and entry-point group: ``photo_guard``.

Host-facing hooks are called by the photo tool that embeds photo_guard; extension hooks let a plugin add encoders,
objectives, transforms and commands. photo_guard's own built-ins are registered through these same hooks.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("photo_guard")
hookimpl = pluggy.HookimplMarker("photo_guard")


@hookspec(firstresult=True)
def photo_before_share(photo, context):
    """A photo is about to be shared. Return the protected copy (a path), or None to pass to the next plugin.

    ``context``: ``out_dir`` (where the copy goes), ``config`` (:class:`~photo_guard.protect.ProtectConfig` fields),
    ``host``. Raise :class:`~photo_guard.errors.ShareVetoed` to stop the share: the host then shares nothing.
    """


@hookspec(firstresult=True)
def photo_before_upload(photo, context):
    """A photo is about to be uploaded to a service. Return the protected copy (a path or an image), or None."""


@hookspec
def photo_on_export(photos, destination, context):
    """Photos were exported to ``destination``; protect them there (the host has finished writing them)."""


@hookspec
def photo_on_import(photos, context):
    """Photos were imported. Queue work and return at once: this hook must never block an import."""


@hookspec
def register_encoders(register):
    """Call ``register(name, factory)`` for each encoder; ``factory()`` returns a
    :class:`photo_guard.encoders.Encoder`."""


@hookspec
def register_objectives(register):
    """Call ``register(name, objective)`` for each protection objective (a callable building the loss)."""


@hookspec
def register_transforms(register):
    """Call ``register(name, transform)`` for each EOT transform (``(images, generator) -> images``)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``photo-guard`` command group ``cli``."""
