"""The process's allocator: keep freed memory for the next allocation instead of faulting it back in page by page.

glibc hands every large block (above an adaptive threshold, at most 32 MB) straight back to the kernel when it is
freed, and the next allocation of that size faults its pages in again one by one. A 12-MP photo's job allocates a
144-MB float copy a dozen times (read, δ at full resolution, the 8-bit round, the re-check), and on this 2-core VM
those faults were a third of the job: 2.6 million minor faults and 5.0-5.2 s per photo, against 0.4-0.5 million
and 3.2-4.0 s with freed memory kept (scratch jobs in fresh processes; ``benchmarks/photo_speed.py --allocator
default|retain``: 4.7-4.8 s against 3.3-4.0 s, docs/photo_guard.md "Speed"). Only processes
that are ours do this (the ``photo-guard`` command, the benchmarks); a host that loads the plugin into its own
process keeps its allocator as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

__all__ = ["retain_freed_memory", "release_freed_memory"]

# mallopt(3) parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and go back to it
_TRIM_THRESHOLD = (1 << 31) - 1  # and the heap's free top is kept (released by release_freed_memory)


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    # musl, macOS and Windows C libraries have no mallopt: nothing to tune there.
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def retain_freed_memory() -> bool:
    """Keep freed blocks up to 1 GiB in the process for reuse, for the rest of its life. Both thresholds are set
    together: setting the trim threshold alone also freezes glibc's mmap threshold at 128 KB, which made the 12-MP
    job 50 % slower here. Returns False where the C library is not glibc (nothing changed)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def release_freed_memory() -> None:
    """Give the memory freed so far back to the kernel (a long-running process between batches)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
