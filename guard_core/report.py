"""The skeleton every evaluation report shares: ``results.json`` (every number, plus the command that made it),
``report.md`` and PNG figures, each written atomically so an interrupted run never leaves half a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .atomic import atomic_output

__all__ = ["write_results", "pyplot", "save_figure"]


def write_results(out_dir: Path, results: dict[str, Any], markdown: str, command: str = "") -> list[Path]:
    """Write ``results.json`` (``results`` with ``command`` added) and ``report.md`` under ``out_dir``; returns both
    paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "report.md"]
    with atomic_output(paths[0]) as tmp:
        tmp.write_text(json.dumps({**results, "command": command}, indent=2), encoding="utf-8")
    with atomic_output(paths[1]) as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    return paths


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (reports are written on machines without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
