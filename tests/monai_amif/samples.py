"""The sample-making code (``samples/amif/make_samples.py``, not part of the installed package) for the tests."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "amif_make_samples", Path(__file__).resolve().parents[2] / "samples" / "amif" / "make_samples.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
png_pairs_to_dicom = _module.png_pairs_to_dicom
make_sample_pair = _module.make_sample_pair
