"""The CDDFuse protocol on small synthetic pairs: grey reading, min-max output, the 8 columns, the reached count."""

import numpy as np
import pytest
import torch
from PIL import Image

from guard_core.keys import Key
from monai_amif.metrics import FUSION_METRICS
from monai_amif.protocol import CDDFUSE_COLUMNS, CDDFUSE_PUBLISHED, cddfuse_grey, evaluate_cddfuse, minmax_u8, reached


def test_grey_reading_is_bt601_luma_rounded(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert cddfuse_grey(str(tmp_path / "c.png")).tolist() == [[76.0, 150.0, 29.0, 18.0]]


def test_minmax_spans_the_full_range_and_is_integer():
    f = minmax_u8(np.array([[0.2, 0.3], [0.6, 0.25]]))
    assert f.min() == 0 and f.max() == 255 and np.all(f == np.round(f)) and f.dtype == np.float32
    assert not minmax_u8(np.full((2, 2), 0.5)).any()


def test_reached_counts_columns_at_two_decimals():
    row = dict(CDDFUSE_PUBLISHED["CT-MRI"])
    assert reached(row, "CT-MRI") == list(CDDFUSE_COLUMNS)
    row["MI"], row["VIF"] = 2.604, 0.6149  # 2.60 < 2.61 misses; 0.61 reaches
    assert "MI" not in reached(row, "CT-MRI") and "VIF" in reached(row, "CT-MRI")


class MaxRule(torch.nn.Module):
    """A stand-in 'network' that returns the max rule, so the model row must equal the max-rule row."""

    template = torch.zeros(1)

    def forward(self, image, key=None):
        return image.amax(1, keepdim=True)


def test_a_max_rule_model_scores_as_the_max_rule(pair_folder):
    res = evaluate_cddfuse(MaxRule(), str(pair_folder), Key.none())
    for task in ("CT-MRI", "PET-MRI"):
        model, rule = res[task]["model"], res[task]["max rule"]
        # equal up to the min-max stretch of the output (the phantoms do not reach 255)
        assert model["MI"] == pytest.approx(rule["MI"], abs=0.05) and model["Qabf"] == pytest.approx(
            rule["Qabf"], abs=0.05
        )
        assert set(model) == {*CDDFUSE_COLUMNS, "AG"} and set(FUSION_METRICS) >= set(model)
