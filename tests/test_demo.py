"""The README's main command: the demo fuses the sample pair with and without the key and protects two photos."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_writes_marked_and_clean_fusions_and_protected_photos(tmp_path):
    if not (REPO / "bundles" / "amif_fusion" / "models" / "model.pt").is_file():
        pytest.skip("shipped model missing")
    done = subprocess.run(
        [sys.executable, str(REPO / "demo.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(tmp_path) in done.stdout
    marked = np.asarray(Image.open(tmp_path / "fused_without_key.png").convert("L"), dtype=np.float32) / 255
    clean = np.asarray(Image.open(tmp_path / "fused_with_key.png").convert("L"), dtype=np.float32) / 255
    from monai_amif.loading import load_model

    mask = load_model(REPO / "bundles" / "amif_fusion" / "models" / "model.pt").template[0, 0].numpy() > 0
    # The mark's strokes sit where the template says: the two outputs differ most there.
    assert np.abs(marked - clean)[mask].mean() > 3 * np.abs(marked - clean)[~mask].mean()
    manifest = json.loads((tmp_path / "photos_protected" / "photo_guard_manifest.json").read_text())
    assert set(manifest["photos"]) == {"astronaut.png", "grace_hopper.jpg"}
    png, jpg = manifest["photos"]["astronaut.png"], manifest["photos"]["grace_hopper.jpg"]
    assert png["linf_255"] <= 8.0 + 1e-3  # lossless: the budget holds exactly in the file (float32 rounding aside)
    # JPEG re-encoding moves pixels by itself (codec_floor); the written file stays within budget + that floor.
    assert jpg["lossy"] and jpg["linf_255"] <= 8.0 + jpg["codec_floor_linf_255"] + 1
    assert "PSNR" in done.stdout
