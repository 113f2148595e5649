"""Shared pieces of the reliability suite: run a command, snapshot folders, check the one-line rule."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.photo_guard.conftest import tiny_encoder  # noqa: F401  (a fixture this folder uses too)

REPO = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden ones included: temp litter must show)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def run_cli(module: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in a subprocess, as a user would (stderr and stdout captured as bytes)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, timeout=timeout, env=full_env, cwd=REPO
    )


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return [line for line in text.splitlines() if "error" in line.lower() or "Error" in line]


@pytest.fixture
def state_env(tmp_path) -> dict:
    return {"PHOTO_GUARD_STATE": str(tmp_path / "state")}
