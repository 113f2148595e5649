"""The base error of every package: a problem with what the user handed us, told in one line naming it.

``monai_amif.errors.AMIFError`` and ``photo_guard.errors.PhotoGuardError`` derive from :class:`GuardError`; the
command lines turn any of them into that one line and exit code 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

__all__ = ["GuardError", "DeviceError", "os_error_message", "one_line_warnings"]


class GuardError(ValueError):
    """A user-facing error; ``str()`` is the whole message (one line, naming the file or option)."""


class DeviceError(GuardError):
    """A device was asked for that this machine does not have."""


def os_error_message(exc: OSError) -> str:
    """``<file>: <reason>`` for an operating-system error (read-only disk, no space, permission denied...)."""
    where = exc.filename if exc.filename is not None else "output"
    reason = exc.strerror or type(exc).__name__
    return f"{os.fsdecode(where)}: {reason}"


def one_line_warnings() -> None:
    """Show warnings as ``warning: <message>`` on stderr (command lines), not Python's two-line form."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
