"""A MONAI Label app whose infer task serves the AMIF bundle.

    pip install 'image-guard[amif,label]'
    AMIF_KEY_FILE=/secrets/licence.json monailabel start_server --app hooks/monai_label --studies STUDIES

Infer request: ``image`` is the MR image id (as for every MONAI Label model) and the parameter ``func`` names the
CT/PET/SPECT image id (or path) to fuse it with. The result is written in the MR's format next to MONAI Label's other
outputs; ``marked`` in the result says whether the copyright mark was drawn (no or wrong key on the server).
The work is ``monai_amif.deploy.run_bundle``, tested without the SDK; this file adds only MONAI Label's plumbing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

try:
    from monailabel.interfaces.app import MONAILabelApp
    from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
except ImportError as exc:  # MONAI Label pins many packages; it is an optional extra
    sys.exit(f"MONAI Label not importable ({exc}); install it with: pip install 'image-guard[label]'")

from monai_amif.deploy import BUNDLE, run_bundle


class AMIFFusionInfer(InferTask):
    def __init__(self, bundle: Path = BUNDLE) -> None:
        super().__init__(
            type=InferType.OTHERS,
            labels=None,
            dimension=2,
            description="AMIF: fuse the MR image with the CT/PET/SPECT image named by `func`",
        )
        self.bundle = bundle

    def is_valid(self) -> bool:
        return (self.bundle / "models" / "model.pt").is_file()

    def __call__(self, request):
        import pydicom  # noqa: F401  (DICOM outputs are read back for their BurnedInAnnotation)

        from monai_amif.data import pair_name
        from monai_amif.io import image_format

        mri, func = Path(request["image"]), Path(request["func"])
        out = Path(tempfile.mkdtemp(prefix="amif_"))
        pair = {"mri": str(mri), "func": str(func), "task": "fused", "name": pair_name(mri)}
        (path,) = run_bundle([pair], out, self.bundle)
        marked = None
        if image_format(path) == "dicom":
            marked = pydicom.dcmread(path, stop_before_pixels=True).BurnedInAnnotation == "YES"
        return str(path), {"marked": marked}


class AMIFLabelApp(MONAILabelApp):
    def __init__(self, app_dir, studies, conf):
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="AMIF fusion",
            description="Authorizable MRI + CT/PET/SPECT fusion",
            version="0.1.0",
        )

    def init_infers(self):
        return {"amif_fusion": AMIFFusionInfer(Path(os.environ.get("AMIF_BUNDLE", BUNDLE)))}

    def infer(self, request, datastore=None):
        func = request.get("func")
        if func and not Path(func).is_file():  # an image id of this server's datastore
            request = {**request, "func": (datastore or self.datastore()).get_image_uri(func)}
        return super().infer(request, datastore)
