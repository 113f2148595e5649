"""How every host integration shares a photo: through the ``photo_before_share`` hook, so any installed plugin can
protect it differently or veto the share (:class:`~photo_guard.errors.ShareVetoed`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import PhotoGuardError, ShareVetoed
from ..plugins import load_plugins

__all__ = ["share_photo"]

log = logging.getLogger("photo_guard")


def share_photo(photo: Path, context: dict[str, Any]) -> Path | None:
    """The protected copy to share in place of ``photo``, or None when a plugin vetoed the share or protection failed
    (the reason is logged; the host then shares nothing of ours)."""
    try:
        out = load_plugins().hook.photo_before_share(photo=str(photo), context=context)
    except ShareVetoed as exc:
        log.warning("photo_guard: %s: share vetoed: %s", photo, exc)
        return None
    except PhotoGuardError as exc:
        log.error("photo_guard: %s", exc)
        return None
    return Path(out) if out is not None else None
