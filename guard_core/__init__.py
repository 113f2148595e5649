"""guard_core: the small torch core both plugins share (devices, licence keys, image ops, PGD, quality)."""

from .device import autocast, resolve, seed_everything
from .keys import Key, LicenceKeyError
from .pgd import PGD, PGDConfig, optimise_vector

__version__ = "0.1.0"
__all__ = ["Key", "LicenceKeyError", "PGD", "PGDConfig", "optimise_vector", "resolve", "autocast", "seed_everything"]
