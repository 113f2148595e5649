"""``amif bundle check``: the MONAI model zoo's acceptance checks (``ci/verify_bundle.py``, full mode), offline.

The same stages, in the same order: required and preferred files; at most 25 MB per file unless a ``large_files``
entry names it; ``version`` present in ``changelog``; ``verify_metadata`` against the schema shipped in
``configs/meta_schema.json`` (the spec's, placed offline); the inference config's standard ids; ``verify_net_in_out``;
TorchScript export of ``models/model.pt`` with ``ckpt_export`` and loading of the shipped ``models/model.ts``; and a
lint of any Python code inside the bundle. Each stage is a function that raises :class:`BundleCheckError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import AMIFError

__all__ = ["BundleCheckError", "STAGES", "check_bundle"]

MAX_FILE_MB = 25
INFERENCE_IDS = ("bundle_root", "device", "network_def", "inferer", "output_dir")


class BundleCheckError(AMIFError):
    """A model-zoo acceptance stage failed; the message names the bundle, the stage and why."""


def _config(root: Path, name: str) -> Path | None:
    for suffix in ("json", "yaml", "yml"):
        if (root / "configs" / f"{name}.{suffix}").is_file():
            return root / "configs" / f"{name}.{suffix}"
    return None


def files(root: Path) -> str:
    missing = [f for f in ("configs/metadata.json", "LICENSE", "models/model.pt") if not (root / f).is_file()]
    if _config(root, "inference") is None:
        missing.append("configs/inference.json")
    if missing:
        raise BundleCheckError(f"{root}: missing {', '.join(missing)}")
    large = _config(root, "large_files")
    listed = json.loads(large.read_text()).get("large_files", []) if large and large.suffix == ".json" else []
    names = {Path(e.get("path", "")).as_posix() for e in listed}
    big = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_size > MAX_FILE_MB * 2**20 and p.relative_to(root).as_posix() not in names
    ]
    if big:
        raise BundleCheckError(f"{root}: over {MAX_FILE_MB} MB without a large_files entry: {', '.join(big)}")
    return "required and preferred files present, none over 25 MB"


def version(root: Path) -> str:
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    if "version" not in meta or "changelog" not in meta:
        raise BundleCheckError(f"{root}: configs/metadata.json needs 'version' and 'changelog'")
    if meta["version"] not in meta["changelog"]:
        raise BundleCheckError(f"{root}: version {meta['version']} is not in the changelog")
    return f"version {meta['version']} is in the changelog"


def metadata(root: Path) -> str:
    from monai.bundle import verify_metadata

    try:
        verify_metadata(
            meta_file=str(root / "configs" / "metadata.json"), filepath=str(root / "configs" / "meta_schema.json")
        )
    except Exception as exc:  # jsonschema's ValidationError and friends
        raise BundleCheckError(f"{root}: metadata does not match the schema ({str(exc).splitlines()[0]})") from None
    return "metadata valid against the schema"


def inference_ids(root: Path) -> str:
    config = json.loads(_config(root, "inference").read_text())  # type: ignore[union-attr]
    missing = [i for i in INFERENCE_IDS if i not in config]
    if missing:
        raise BundleCheckError(f"{root}: the inference config lacks the standard ids {', '.join(missing)}")
    return f"inference config defines {', '.join(INFERENCE_IDS)}"


def _monai_bundle(root: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], cwd=root, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleCheckError(f"{root}: monai.bundle {args[0]} failed: {last[:200]}")


def net_in_out(root: Path) -> str:
    config = _config(root, "inference").relative_to(root).as_posix()  # type: ignore[union-attr]
    _monai_bundle(root, "verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json",
                  "--config_file", config)  # fmt: skip
    return "network input/output shapes match the metadata"


def torchscript(root: Path) -> str:
    import torch

    config = _config(root, "inference").relative_to(root).as_posix()  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "verify_model.ts"
        _monai_bundle(root, "ckpt_export", "network_def", "--filepath", str(out), "--ckpt_file", "models/model.pt",
                      "--meta_file", "configs/metadata.json", "--config_file", config)  # fmt: skip
        torch.jit.load(str(out))
    if (root / "models" / "model.ts").is_file():
        torch.jit.load(str(root / "models" / "model.ts"))
    return "models/model.pt exports to TorchScript; models/model.ts loads"


def lint(root: Path) -> str:
    code = [str(p) for p in root.rglob("*.py")]
    if not code:
        return "no Python code in the bundle to lint"
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    done = subprocess.run([ruff, "check", "--no-cache", *code], capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleCheckError(f"{root}: ruff finds problems in the bundle's code: {done.stdout.strip()[:200]}")
    return f"{len(code)} Python files lint clean"


STAGES: dict[str, Callable[[Path], str]] = {
    "files": files,
    "version": version,
    "metadata": metadata,
    "inference ids": inference_ids,
    "data shape": net_in_out,
    "torchscript": torchscript,
    "lint": lint,
}


def check_bundle(bundle_dir: str | os.PathLike[str], stages: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """Run the stages in order; returns ``(stage, what passed)`` for each, or raises at the first failure."""
    root = Path(bundle_dir).resolve()
    return [(name, STAGES[name](root)) for name in (stages or tuple(STAGES))]
