"""photo_guard's base error: the CLI and the hosts turn any of them into one line naming the photo."""

from __future__ import annotations

from guard_core.errors import GuardError

__all__ = ["PhotoGuardError", "ShareVetoed"]


class PhotoGuardError(GuardError):
    """A photo, option or plugin request photo_guard cannot honour; ``str()`` is the one-line message."""


class ShareVetoed(PhotoGuardError):
    """Raised by a ``photo_before_share`` / ``photo_before_upload`` implementation to stop a share: the host shares
    nothing and reports the reason."""
