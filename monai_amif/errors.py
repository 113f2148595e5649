"""The one base error of ``monai_amif``: the CLI turns any of them into a one-line message and exit code 1."""

from __future__ import annotations

from guard_core.errors import GuardError

__all__ = ["AMIFError", "ModelFileError", "ImageError", "PairsNotFound"]


class AMIFError(GuardError):
    """A problem with what the user handed us (a file, an option); the message names it in one line."""


class ModelFileError(AMIFError):
    """A model or checkpoint file that is missing, damaged, unsafe to load or not for this network."""


class ImageError(AMIFError):
    """An image that cannot be read, paired or written as asked."""


class PairsNotFound(AMIFError, FileNotFoundError):
    """A folder that holds no MRI/functional pairs in the layout asked for."""
