"""benchmarks/gpu_check.py runs every path on the CPU in the tests (on CUDA when a machine has it)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_path_on_the_cpu(tmp_path):
    out = tmp_path / "t.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--small", "--repeats", "1", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| cpu |")]
    assert len(rows) == 8 and not any("FAILED" in r for r in rows), out.read_text()
