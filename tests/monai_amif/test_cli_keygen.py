import json
import os
import stat
import subprocess
import sys

from click.testing import CliRunner

from guard_core.keys import Key
from monai_amif.cli import cli


def test_keygen_from_env_writes_a_0600_key_and_prints_only_the_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("AMIF_PASSPHRASE", "amif-demo")
    out = tmp_path / "k.json"
    result = CliRunner().invoke(cli, ["keygen", "-o", str(out)])
    assert result.exit_code == 0, result.output
    key = Key.from_passphrase("amif-demo")
    assert Key.from_file(out) == key
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert key.fingerprint() in result.output
    assert json.loads(out.read_text())["key"] not in result.output
    again = CliRunner().invoke(cli, ["keygen", "-o", str(out)])
    assert again.exit_code != 0 and "exists" in again.output


def test_keygen_prompts_for_the_passphrase(tmp_path, monkeypatch):
    monkeypatch.delenv("AMIF_PASSPHRASE", raising=False)
    out = tmp_path / "k.json"
    result = CliRunner().invoke(cli, ["keygen", "-o", str(out)], input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert Key.from_file(out) == Key.from_passphrase("s3cret")
    assert "s3cret" not in result.output


def test_console_script_help():
    for module in ("monai_amif.cli", "photo_guard.cli"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Usage" in done.stdout
