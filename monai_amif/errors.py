"""The one base error of ``monai_amif``: the CLI turns any of them into a one-line message and exit code 1."""

from __future__ import annotations

__all__ = ["AMIFError", "ModelFileError"]


class AMIFError(ValueError):
    """A problem with what the user handed us (a file, an option); the message names it in one line."""


class ModelFileError(AMIFError):
    """A model or checkpoint file that is missing, damaged, unsafe to load or not for this network."""
