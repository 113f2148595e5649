"""Shared fixtures: the shared research data (skipped cleanly where it is absent) and a quiet hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# photo_guard loads only its built-in plugins in the tests (whatever else this environment has installed); the
# plugin tests that need entry points run the CLI in a subprocess with their own setting.
os.environ.setdefault("PHOTO_GUARD_PLUGINS", "default")

_CANDIDATES: list[str | Path] = [
    os.environ.get("GUARD_SHARED_DATA", ""),
    Path(__file__).resolve().parents[2] / "shared" / "data",
]


def _find_shared_data() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $GUARD_SHARED_DATA); the test is skipped where it is not present."""
    path = _find_shared_data()
    if path is None:
        pytest.skip("shared research data (../shared/data) not present")
    return path


@pytest.fixture
def two_threads():
    """Torch on two threads for the test (``guard_core.parallel`` runs side by side only with two or more)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory, monkeypatch):
    """photo_guard's owner state (its secret) in a temp folder, never the tester's home."""
    monkeypatch.setenv("PHOTO_GUARD_STATE", str(tmp_path_factory.getbasetemp() / "photo_guard_state"))
