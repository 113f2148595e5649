"""The bundle's other configs (train, multi-GPU train, evaluate), verify_net_in_out, and pack -> HTTP -> download."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_amif.packaging import BundleError, pack_bundle

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "amif_fusion"
VERSION = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["version"]


def _monai_bundle(args, cwd=BUNDLE, passphrase="", launcher=(sys.executable,), timeout=600):
    env = {**os.environ, "AMIF_PASSPHRASE": passphrase, "AMIF_KEY_FILE": ""}
    done = subprocess.run(
        [*launcher, "-m", "monai.bundle", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if passphrase:
        assert passphrase not in done.stdout + done.stderr  # the key never reaches a log
    return done


def test_verify_net_in_out():
    done = _monai_bundle(
        [
            "verify_net_in_out",
            "network_def",
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/inference.json",
        ]
    )
    assert "verified with no error" in done.stdout + done.stderr


@pytest.mark.slow
def test_train_config_single_process_and_torchrun(pair_folder, tmp_path):
    import torch

    from guard_core.keys import Key
    from monai_amif.loading import key_fingerprint, load_model

    common = [
        "--dataset_dir",
        str(pair_folder),
        "--train_config#max_steps",
        "2",
        "--train_config#epochs",
        "1",
        "--train_config#crop",
        "48",
        "--train_config#batch_size",
        "2",
    ]
    _monai_bundle(
        ["run", "--config_file", "configs/train.json", "--output_dir", str(tmp_path / "one"), *common],
        passphrase="train-test-key",
    )
    # two processes over gloo on the CPU stand in for two GPUs: the same config torchrun starts on a GPU node
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517")
    _monai_bundle(
        [
            "run",
            "--config_file",
            "['configs/train.json','configs/multi_gpu_train.json']",
            "--output_dir",
            str(tmp_path / "two"),
            *common,
        ],
        passphrase="train-test-key",
        launcher=torchrun,
    )
    for run in ("one", "two"):
        assert key_fingerprint(tmp_path / run / "model.pt") == Key.from_passphrase("train-test-key").fingerprint()
        net = load_model(tmp_path / run / "model.pt")
        assert net(torch.rand(1, 2, 32, 32)).shape == (1, 1, 32, 32)
        assert len((tmp_path / run / "train_log.jsonl").read_text().splitlines()) == 1


def test_train_config_refuses_to_run_without_a_key(pair_folder, tmp_path):
    env = {**os.environ, "AMIF_PASSPHRASE": "", "AMIF_KEY_FILE": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            "configs/train.json",
            "--dataset_dir",
            str(pair_folder),
            "--output_dir",
            str(tmp_path / "x"),
            "--train_config#max_steps",
            "1",
        ],
        cwd=BUNDLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0 and "training needs the licence key" in done.stderr
    assert not (tmp_path / "x" / "model.pt").exists()


@pytest.mark.slow
def test_evaluate_config_prints_the_metric_table(pair_folder):
    done = _monai_bundle(
        ["run", "--config_file", "configs/evaluate.json", "--dataset_dir", str(pair_folder), "--random_keys", "2"],
        passphrase="amif-demo",
    )
    out = done.stdout
    assert "### PET-MRI (n = 3)" in out and "### CT-MRI (n = 2)" in out
    assert "| authorised |" in out and "| max rule |" in out and "mark_ncc no key" in out


def test_pack_bundle_is_versioned_complete_and_reproducible(tmp_path):
    a = pack_bundle(BUNDLE, tmp_path / "a")
    b = pack_bundle(BUNDLE, tmp_path / "b")
    assert a.name == f"amif_fusion_v{VERSION}.zip" and a.read_bytes() == b.read_bytes()
    names = zipfile.ZipFile(a).namelist()
    for needed in (
        "configs/metadata.json",
        "configs/inference.json",
        "configs/train.json",
        "configs/multi_gpu_train.json",
        "configs/evaluate.json",
        "configs/logging.conf",
        "models/model.pt",
        "models/model.ts",
        "docs/README.md",
        "LICENSE",
    ):
        assert f"amif_fusion/{needed}" in names
    broken = tmp_path / "broken"
    shutil.copytree(BUNDLE / "configs", broken / "configs")
    with pytest.raises(
        BundleError, match="broken: not a complete bundle, missing models/model.pt, models/model.json, LICENSE"
    ):
        pack_bundle(broken, tmp_path)


@pytest.mark.slow
def test_pack_serve_download_and_run_gives_the_source_trees_output(tmp_path, sample_pet_input):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai_amif.cli",
            "bundle",
            "pack",
            "--bundle",
            str(BUNDLE),
            "-o",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "dist"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/amif_fusion_v{VERSION}.zip"
        _monai_bundle(
            ["download", "--name", "amif_fusion", "--url", url, "--bundle_dir", str(tmp_path / "bundles")], cwd=tmp_path
        )
    finally:
        server.shutdown()
    downloaded = tmp_path / "bundles" / "amif_fusion"
    assert (downloaded / "models" / "model.pt").read_bytes() == (BUNDLE / "models" / "model.pt").read_bytes()

    for root, tag in ((BUNDLE, "source"), (downloaded, "downloaded")):
        _monai_bundle(
            [
                "run",
                "--config_file",
                "configs/inference.json",
                "--input_dir",
                str(sample_pet_input),
                "--output_dir",
                str(tmp_path / tag),
            ],
            cwd=root,
            passphrase="amif-demo",
        )
    a, b = (np.asarray(Image.open(tmp_path / t / "PET-MRI" / "s1.png")) for t in ("source", "downloaded"))
    assert a.shape == (256, 256, 3) and np.array_equal(a, b)
