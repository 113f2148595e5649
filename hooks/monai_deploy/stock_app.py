"""AMIF through the SDK's stock ``MonaiBundleInferenceOperator``: the model-zoo route (TorchScript ``models/model.ts``).

    bash hooks/sdk_venv.sh deploy          # .venv-deploy: the SDK layered over the project's .venv
    ulimit -s 32768
    AMIF_KEY_FILE=/secrets/licence.json .venv-deploy/bin/python hooks/monai_deploy/stock_app.py \
        -i DICOM_STUDY_DIR -o OUT_DIR -m bundles/amif_fusion

Three operators, the middle one the SDK's own:
``PairSource`` (one MR slice and its nearest CT/PT/NM slice per tick, as the bundle's ``image`` input, plus the licence
key from the environment as its ``key`` input) -> ``MonaiBundleInferenceOperator`` (loads ``models/model.ts``, runs the
bundle's ``deploy_preprocessing``, calls the network with ``image`` as data and ``key=`` as a keyword, as it does for
every bundle with more than one input, then ``deploy_postprocessing``) -> ``FusionWriter`` (a derived DICOM Secondary
Capture per MR slice, BurnedInAnnotation YES when unlicensed). The key comes from $AMIF_KEY_FILE / $AMIF_PASSPHRASE,
never from the study. ``hooks/monai_deploy/app.py`` (one operator that runs the bundle's own inference config) is
simpler and stays the documented route; this one shows the bundle works with the SDK's generic operator.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

try:
    from monai.deploy.conditions import CountCondition
    from monai.deploy.core import AppContext, Application, Fragment, Image, IOType, Operator, OperatorSpec
    from monai.deploy.operators.monai_bundle_inference_operator import (
        BundleConfigNames,
        IOMapping,
        MonaiBundleInferenceOperator,
    )
except ImportError as exc:  # the SDK (and Holoscan) is an optional, heavy extra
    sys.exit(f"MONAI Deploy App SDK not importable ({exc}); install it with: bash hooks/sdk_venv.sh deploy")

import torch

from monai_amif.bundle import SaveFusion
from monai_amif.data import pair_transforms
from monai_amif.deploy import BUNDLE, find_dicom_pairs
from monai_amif.loading import key_fingerprint
from monai_amif.transforms import AuthorizeKeyd

#: The bundle config items the stock operator reads instead of its defaults (``preprocessing``/``postprocessing``,
#: which load files): in-memory inputs in, an 8-bit image out, as the SDK's Image conversion expects.
CONFIG_NAMES = BundleConfigNames(preproc_name="deploy_preprocessing", postproc_name="deploy_postprocessing")


class PairSource(Operator):
    """Emits, once per tick, ``image`` (``[2, H, W]`` float32: MR, functional luma), ``key`` (``[256]`` tensor from the
    environment) and ``pair`` (the datalist entry the writer needs)."""

    def __init__(self, fragment: Fragment, *args, pairs: list[dict], **kwargs) -> None:
        self.pairs, self.load, self.authorize = iter(pairs), pair_transforms(), AuthorizeKeyd("key")
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.output("image")
        spec.output("key")
        spec.output("pair")

    def compute(self, op_input, op_output, context) -> None:
        item = self.authorize(self.load(dict(next(self.pairs))))
        # Everything emitted as Python objects: the SDK then hands the tensors to the bundle's preprocessing as they are
        # (a numpy array would be reinterpreted by its channel-last conventions; a plain emit turns arrays, and dicts
        # of them, into Holoscan tensors).
        op_output.emit(torch.as_tensor(item.pop("image")).float(), "image", "PyObject")
        op_output.emit(torch.as_tensor(item.pop("key")).float(), "key", "PyObject")
        op_output.emit(item, "pair", "PyObject")


class FusionWriter(Operator):
    """Writes the operator's 8-bit ``pred`` Image as a derived DICOM Secondary Capture of the pair's MR slice."""

    def __init__(self, fragment: Fragment, *args, output_folder: Path, model_ts: Path, **kwargs) -> None:
        # The licensed key's public fingerprint lives beside the weights (models/model.pt + model.json); a package
        # holding only model.ts marks exactly the runs without a key.
        weights = model_ts.with_name("model.pt")
        accepted = key_fingerprint(weights) if weights.is_file() else None
        self.save = SaveFusion(str(output_folder), accepted_fingerprint=accepted)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("pred")
        spec.input("pair")

    def compute(self, op_input, op_output, context) -> None:
        pred, pair = op_input.receive("pred"), op_input.receive("pair")
        fused = torch.as_tensor(pred.asnumpy(), dtype=torch.float32)[None] / 255.0
        path = self.save.write(pair, fused)
        logging.getLogger(__name__).info("wrote %s", path)


class AMIFStockApp(Application):
    """MR + CT/PET/SPECT DICOM study -> AMIF fusion as DICOM, inference by the SDK's MonaiBundleInferenceOperator."""

    name = "amif_fusion_stock"
    description = "Authorizable MRI + CT/PET/SPECT fusion (AMIF), stock bundle operator"
    version = "0.1.0"

    def compose(self) -> None:
        ctx: AppContext = Application.init_app_context(self.argv)
        model_ts = Path(ctx.model_path) if ctx.model_path else BUNDLE / "models" / "model.ts"
        if not model_ts.is_file():  # the SDK would load a folder as a model without a predictor, and fail late
            sys.exit(f"{model_ts}: give the bundle's TorchScript file (<bundle>/models/model.ts), as in a MAP")
        pairs = find_dicom_pairs(ctx.input_path)
        source = PairSource(self, CountCondition(self, len(pairs)), pairs=pairs, name="pairs")
        infer = MonaiBundleInferenceOperator(
            self,
            app_context=ctx,
            bundle_path=model_ts,
            bundle_config_names=CONFIG_NAMES,
            input_mapping=[IOMapping(name, torch.Tensor, IOType.IN_MEMORY) for name in ("image", "key")],
            output_mapping=[IOMapping("pred", Image, IOType.IN_MEMORY)],
            name="bundle_inference",
        )
        writer = FusionWriter(self, output_folder=Path(ctx.output_path), model_ts=model_ts, name="writer")
        self.add_flow(source, infer, {("image", "image"), ("key", "key")})
        self.add_flow(source, writer, {("pair", "pair")})
        self.add_flow(infer, writer, {("pred", "pred")})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    AMIFStockApp().run()
