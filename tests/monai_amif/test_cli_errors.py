"""Hostile and unusual inputs end in one line naming the file and the problem, exit code 1 (issue 15.6)."""

import errno
import tempfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from monai_amif.checkpoint import build_network, save_model
from monai_amif.cli import cli


@pytest.fixture
def env(monkeypatch):
    for name in ("AMIF_PASSPHRASE", "AMIF_KEY_FILE", "AMIF_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def weights(tmp_path, demo_key):
    path = tmp_path / "w" / "model.pt"
    save_model(build_network({"channels": [8, 16], "key_hidden": 16}), path, key_fingerprint=demo_key.fingerprint())
    return path


def _one_line(r):
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


def test_read_only_output(pair_folder, weights, tmp_path, env, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    mri, pet = pair_folder / "PET-MRI" / "MRI" / "000.png", pair_folder / "PET-MRI" / "PET" / "000.png"
    line = _one_line(
        CliRunner().invoke(cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "f.png"), "--weights", str(weights)])
    )
    assert "f.png" in line and "Read-only file system" in line


def test_weights_that_do_not_fit_the_network(pair_folder, weights, tmp_path, env):
    state = torch.load(weights, weights_only=True)
    state["head.weight"] = torch.zeros(3, 3)
    torch.save(state, weights)
    mri, pet = pair_folder / "PET-MRI" / "MRI" / "000.png", pair_folder / "PET-MRI" / "PET" / "000.png"
    line = _one_line(
        CliRunner().invoke(cli, ["fuse", str(mri), str(pet), "-o", str(tmp_path / "f.png"), "--weights", str(weights)])
    )
    assert str(weights) in line and "do not fit" in line


def test_seal_on_random_bytes(tmp_path, env):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    env.setenv("AMIF_PASSPHRASE", "amif-demo")
    line = _one_line(CliRunner().invoke(cli, ["seal", "--weights", str(junk), "-o", str(tmp_path / "s.pt")]))
    assert str(junk) in line and "not a readable model file" in line


def test_huge_slices_are_refused_up_front_with_the_memory_they_need(weights, tmp_path, env):
    big = np.zeros((4100, 4100), np.uint8)
    Image.fromarray(big).save(tmp_path / "m.png")
    Image.fromarray(big).save(tmp_path / "c.png")
    line = _one_line(
        CliRunner().invoke(
            cli,
            [
                "fuse",
                str(tmp_path / "m.png"),
                str(tmp_path / "c.png"),
                "-o",
                str(tmp_path / "f.png"),
                "--weights",
                str(weights),
            ],
        )
    )
    assert "too large" in line and "GiB" in line and "m.png" in line and not (tmp_path / "f.png").exists()
