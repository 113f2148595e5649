"""A model file never runs code when loaded: every path that reads one refuses a pickled payload (issue 15.1)."""

import builtins
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli
from monai_amif.errors import ModelFileError
from monai_amif.loading import key_fingerprint, load_model
from monai_amif.sealed import seal_model
from tests.monai_amif.test_bundle import bundle_run

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this creates ``marker``: what a shell command in ``__reduce__`` would do, visibly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


@pytest.fixture
def tiny(tmp_path, demo_key):
    path = tmp_path / "plain" / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), path, key_fingerprint=demo_key.fingerprint())
    return path


def _poison(model: Path, dest: Path, marker: Path, layout: str = "plain") -> Path:
    """A copy of ``model`` carrying one extra pickled object (plain state dict + JSON, or the single-file layout)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    state = torch.load(model, weights_only=True)
    meta = json.loads(model.with_suffix(".json").read_text())
    if layout == "plain":
        torch.save({**state, "extra": Payload(marker)}, dest)
        shutil.copy(model.with_suffix(".json"), dest.with_suffix(".json"))
    elif layout == "v1":
        torch.save({"model": state, "net_config": meta["net_config"], "extra": Payload(marker)}, dest)
    else:  # a fake sealed file
        torch.save({"format": "amif-sealed", "net_config": meta["net_config"], "sealed": Payload(marker)}, dest)
    return dest


@pytest.mark.parametrize("layout", ["plain", "v1", "sealed"])
def test_library_loaders_refuse_payloads(tiny, tmp_path, demo_key, layout):
    marker = tmp_path / "pwned"
    bad = _poison(tiny, tmp_path / "bad" / "model.pt", marker, layout)
    for call in (
        lambda: load_model(bad),
        lambda: load_model(bad, key=demo_key),
        lambda: key_fingerprint(bad),
        lambda: seal_model(bad, demo_key, tmp_path / "out.pt"),
    ):
        with pytest.raises(ModelFileError, match="refused"):
            call()
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_cli_paths_refuse_payloads(tiny, tmp_path, pair_folder, monkeypatch):
    marker = tmp_path / "pwned"
    bad = _poison(tiny, tmp_path / "bad" / "model.pt", marker)
    mri, pet = pair_folder / "PET-MRI" / "MRI" / "000.png", pair_folder / "PET-MRI" / "PET" / "000.png"
    monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    runner = CliRunner()
    runs = {
        "fuse --weights": runner.invoke(
            cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "a.png"), "--weights", str(bad)]
        ),
        "seal": runner.invoke(cli, ["seal", "--weights", str(bad), "-o", str(tmp_path / "s.pt")]),
    }
    monkeypatch.setenv("AMIF_WEIGHTS", str(bad))
    runs["$AMIF_WEIGHTS"] = runner.invoke(cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "b.png")])
    monkeypatch.delenv("AMIF_WEIGHTS")
    fake_sealed = _poison(tiny, tmp_path / "bad" / "x.sealed.pt", marker, "sealed")
    runs["sealed"] = runner.invoke(
        cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "c.png"), "--weights", str(fake_sealed)]
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"model": {}, "extra": Payload(marker)}, run_dir / "checkpoint.pt")
    runs["train resume"] = runner.invoke(
        cli, ["train", "--data", str(pair_folder), "--out", str(run_dir), "--epochs", "1", "--max-steps", "1"]
    )
    for name, r in runs.items():
        assert r.exit_code == 1, (name, r.output)
        assert "refused" in r.output and len(r.output.strip().splitlines()) == 1, (name, r.output)
    assert not marker.exists()
    assert not any((tmp_path / n).exists() for n in ("a.png", "b.png", "c.png", "s.pt"))


def test_bundle_run_refuses_a_payload_model(tmp_path, sample_pet_input):
    marker = tmp_path / "pwned"
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO / "bundles" / "amif_fusion", bundle, ignore=shutil.ignore_patterns("*.ts"))
    _poison(REPO / "bundles" / "amif_fusion" / "models" / "model.pt", bundle / "models" / "model.pt", marker)
    r = bundle_run(sample_pet_input, tmp_path / "out", "amif-demo", bundle=bundle, check=False)
    assert r.returncode != 0 and not marker.exists()
