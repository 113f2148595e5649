"""AMIF fusion as a MONAI Deploy application (MONAI Deploy App SDK >= 3, Holoscan based).

    bash hooks/sdk_venv.sh deploy          # .venv-deploy: the SDK layered over the project's .venv
    ulimit -s 32768
    AMIF_KEY_FILE=/secrets/licence.json .venv-deploy/bin/python hooks/monai_deploy/app.py \
        -i DICOM_STUDY_DIR -o OUT_DIR -m bundles/amif_fusion

One operator: it reads the study folder (any file names, MR and CT/PT/NM series mixed), pairs each MR slice with the
nearest functional slice, runs the bundle's inference config and writes one derived DICOM Secondary Capture per MR slice
(BurnedInAnnotation YES when unlicensed). The pairing and the bundle run are ``monai_amif.deploy`` and are tested
without the SDK; this file adds only the SDK's application plumbing. The key comes from $AMIF_KEY_FILE or
$AMIF_PASSPHRASE in the container's environment (a mounted secret), never from the command line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

try:
    from monai.deploy.conditions import CountCondition
    from monai.deploy.core import (
        AppContext,
        Application,
        ExecutionContext,
        InputContext,
        Operator,
        OperatorSpec,
        OutputContext,
    )
except ImportError as exc:  # the SDK (and Holoscan) is an optional, heavy extra
    sys.exit(f"MONAI Deploy App SDK not importable ({exc}); install it with: bash hooks/sdk_venv.sh deploy")

from monai_amif.deploy import BUNDLE, find_dicom_pairs, run_bundle


class AMIFFusionOperator(Operator):
    """Study folder in, fused DICOM Secondary Captures out (no ports: it reads and writes folders)."""

    def __init__(self, fragment, *args, input_folder: Path, output_folder: Path, bundle_path: Path, **kwargs) -> None:
        self.input_folder, self.output_folder, self.bundle_path = input_folder, output_folder, bundle_path
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        pass

    def compute(self, op_input: InputContext, op_output: OutputContext, context: ExecutionContext) -> None:
        pairs = find_dicom_pairs(self.input_folder)
        written = run_bundle(pairs, self.output_folder, self.bundle_path)
        logging.getLogger(__name__).info("wrote %d fused DICOM images to %s", len(written), self.output_folder)


class AMIFFusionApp(Application):
    """MONAI Deploy application: MR + CT/PET/SPECT DICOM study -> AMIF fusion as DICOM."""

    name = "amif_fusion"
    description = "Authorizable MRI + CT/PET/SPECT fusion (AMIF)"
    version = "0.1.0"

    def compose(self) -> None:
        ctx: AppContext = Application.init_app_context(self.argv)
        bundle = Path(ctx.model_path) if ctx.model_path and Path(ctx.model_path).is_dir() else BUNDLE
        op = AMIFFusionOperator(
            self,
            CountCondition(self, 1),
            input_folder=Path(ctx.input_path),
            output_folder=Path(ctx.output_path),
            bundle_path=bundle,
            name="amif_fusion",
        )
        self.add_operator(op)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    AMIFFusionApp().run()
