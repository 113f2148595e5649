"""``amif bundle check``: the model zoo's acceptance stages pass on the shipped bundle and catch a broken one."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from monai_amif.bundle_check import STAGES, check_bundle
from monai_amif.cli import cli

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "amif_fusion"


@pytest.mark.slow
def test_the_shipped_bundle_passes_every_stage():
    r = CliRunner().invoke(cli, ["bundle", "check", "--bundle", str(BUNDLE)])
    assert r.exit_code == 0, r.output
    passed = [line.split(":")[0] for line in r.output.splitlines() if line.startswith("ok  ")]
    assert passed == [f"ok  {s}" for s in STAGES]


def test_a_broken_bundle_fails_with_one_line(tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(BUNDLE, bundle, ignore=shutil.ignore_patterns("*.ts", "*.pt"))
    r = CliRunner().invoke(cli, ["bundle", "check", "--bundle", str(bundle)])
    assert r.exit_code == 1 and "missing models/model.pt" in r.output and len(r.output.strip().splitlines()) == 1
    shutil.copy(BUNDLE / "models" / "model.pt", bundle / "models" / "model.pt")
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    meta["version"] = "9.9.9"
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="9.9.9 is not in the changelog"):
        check_bundle(bundle, ("files", "version"))
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "bad.py").write_text("import os\n")
    with pytest.raises(Exception, match="ruff finds problems"):
        check_bundle(bundle, ("lint",))
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    del config["inferer"]
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="standard ids inferer"):
        check_bundle(bundle, ("inference ids",))
