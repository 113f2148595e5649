import subprocess
import sys

import pytest

from guard_core.memory import _glibc

# Run in a child: the allocator setting is the whole process's, and the test process must keep its own.
_CHILD = """
import resource, sys
import torch
from guard_core.memory import release_freed_memory, retain_freed_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

if sys.argv[1] == "retain":
    assert retain_freed_memory()
torch.ones(2**24)  # 64 MB, touched, then freed (torch: 4-KB pages; numpy asks for huge ones)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
# A little smaller: a small block that lands after the freed one (the import's threads allocate) leaves it free but
# no longer merged with the heap's top, where the same size plus torch's alignment would not fit.
torch.ones(2**24 - 2**12)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
kept = rss_mb()
release_freed_memory()
print(faults, kept, rss_mb())
"""


def _child(mode: str) -> tuple[float, ...]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True).stdout
    faults, kept, released = map(float, out.split())
    return faults, kept, released


@pytest.mark.skipif(not sys.platform.startswith("linux") or _glibc() is None, reason="glibc's allocator")
def test_freed_memory_is_reused_without_faults_and_released_on_request():
    default_faults, _, _ = _child("default")
    faults, kept, released = _child("retain")
    assert default_faults > 10_000  # 64 MB of 4-KB pages faulted in again
    assert faults < 1_000  # the freed block came back without faults
    assert kept - released > 50  # and the 64 MB went back to the system when asked
