"""The fusion metrics against the golden values of a public evaluator (../shared/data/golden_metrics.md)."""

import re

import numpy as np
import pytest
from PIL import Image

from monai_amif.metrics import FUSION_METRICS, fusion_metrics, to_grey_255

COLUMNS = ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM2", "SSIM255", "PSNR"]


def _rows(text: str, header_start: str) -> list[list[str]]:
    section = text.split(header_start, 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("|")
    ]
    return [r for r in rows[2:]]  # skip the header and the |---| line


def _load(root, task, name):
    func = task.split("-")[0]
    a = to_grey_255(np.asarray(Image.open(root / "harvard" / "test" / task / func / name)))
    b = to_grey_255(np.asarray(Image.open(root / "harvard" / "test" / task / "MRI" / name)))
    return a, b


def _rule(rule, a, b):
    f = (a + b) / 2 if rule == "mean" else np.maximum(a, b)
    return np.clip(np.round(f), 0, 255).astype(np.float32)


def test_single_pairs_match_golden_values(shared_data):
    text = (shared_data / "golden_metrics.md").read_text()
    rows = _rows(text, "## One pair each")
    assert len(rows) == 6
    for pair, rule, *values in rows:
        task, name = re.match(r"test/([^/]+)/\{[^}]+\}/(.+)", pair).groups()
        a, b = _load(shared_data, task, name)
        got = fusion_metrics(_rule(rule, a, b), a, b)
        for column, expected in zip(COLUMNS, values):
            assert got[column] == pytest.approx(float(expected), abs=6e-4), (pair, rule, column)


@pytest.mark.slow
def test_folder_means_match_golden_values(shared_data):
    text = (shared_data / "golden_metrics.md").read_text()
    rows = _rows(text, "## Means over each test folder")
    assert len(rows) == 6
    for task, rule, n, *values in rows:
        names = sorted(p.name for p in (shared_data / "harvard" / "test" / task / "MRI").iterdir())
        assert len(names) == int(n)
        per_image = []
        for name in names:
            a, b = _load(shared_data, task, name)
            per_image.append(fusion_metrics(_rule(rule, a, b), a, b))
        for column, expected in zip(COLUMNS, values):
            mean = float(np.mean([m[column] for m in per_image]))
            assert mean == pytest.approx(float(expected), abs=6e-4), (task, rule, column)


def test_metrics_on_synthetic_images_behave():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64)).astype(np.float32)
    b = np.roll(a, 5, axis=1)
    assert FUSION_METRICS["EN"](np.full_like(a, 7), a, b) == 0
    assert FUSION_METRICS["SD"](np.full_like(a, 7), a, b) == 0
    assert FUSION_METRICS["SSIM255"](a, a, a) == pytest.approx(2.0)
    noise = rng.integers(0, 256, (64, 64)).astype(np.float32)
    assert FUSION_METRICS["MI"](a, a, b) > FUSION_METRICS["MI"](noise, a, b) + 1
    assert FUSION_METRICS["CC"](a, a, a) == pytest.approx(1.0)
    assert FUSION_METRICS["VIF"](a, a, a) == pytest.approx(2.0)
    assert FUSION_METRICS["Qabf"](a, a, a) > 0.95
