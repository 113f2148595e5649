"""The wheel works alone: built from this tree and installed outside it, ``amif fuse`` finds the demo model it
carries (issue 16.5), and no test-only code is inside."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_the_demo_model_and_fuses_outside_the_checkout(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("image_guard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "monai_amif/demo_model/model.pt" in names and "monai_amif/demo_model/model.json" in names
    assert not any(n.endswith((".ts", "samples.py")) for n in names)
    for top in ("guard_core", "monai_amif", "photo_guard"):  # every package of the source tree, with its data
        for f in (REPO / top).rglob("*"):
            if f.is_file() and f.suffix in (".py", ".npy", ".json") and "__pycache__" not in f.parts:
                assert f.relative_to(REPO).as_posix() in names, f
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=600,
    )
    out = tmp_path / "fused.png"
    pet = REPO / "samples" / "amif" / "pet"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from monai_amif.cli import main; "
        "sys.argv = ['amif'] + sys.argv[2:]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(site), "fuse", str(pet / "MRI.png"), str(pet / "PET.png"), "-o", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert out.exists() and "marked" in done.stdout
    locate = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from monai_amif.inference import default_weights; print(default_weights())",
            str(site),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert str(site) in locate.stdout, locate.stdout + locate.stderr
