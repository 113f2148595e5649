"""What both command lines share: user-facing errors end as one line and exit code 1, warnings as one line."""

from __future__ import annotations

from typing import Any

import click

from .errors import GuardError, os_error_message

__all__ = ["GuardCommands"]


class GuardCommands(click.Group):
    """A click group whose commands' :class:`~guard_core.errors.GuardError` s (every package's errors derive from
    it) and operating-system errors (a read-only or full disk...) end as one line naming the file, exit code 1.
    Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GuardError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(os_error_message(exc)) from None
