"""A MONAI Label app whose infer task serves the AMIF bundle.

    bash hooks/sdk_venv.sh label         # .venv-label: MONAI Label layered over the project's .venv (see there why)
    AMIF_KEY_FILE=/secrets/licence.json PATH=$PWD/.venv-label/bin:$PATH \\
        monailabel start_server --app hooks/monai_label --studies STUDIES --host 127.0.0.1

Infer request: ``image`` is the MR image id (as for every MONAI Label model) and the parameter ``func`` names the
CT/PET/SPECT image id of the same datastore (ids only: a client never names a file on the server). The answer is the
fused image in the MR's format; ``marked`` in the JSON result says whether the copyright mark was drawn (no or wrong
key on the server). The work is ``monai_amif.deploy.run_bundle``; this file adds only MONAI Label's plumbing.
Tested over HTTP by ``tests/monai_amif/test_label_server.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import cached_property
from pathlib import Path

try:
    from fastapi import HTTPException  # MONAI Label's web framework: a 400 with the reason, not a 500
    from monailabel.interfaces.app import MONAILabelApp
    from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
except ImportError as exc:  # MONAI Label pins many packages; it is an optional extra
    sys.exit(f"MONAI Label not importable ({exc}); install it with: bash hooks/sdk_venv.sh label")

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

    @cached_property
    def accepted_fingerprint(self) -> str | None:
        """The public fingerprint of the key the shipped weights accept (read once, not per request)."""
        from monai_amif.loading import key_fingerprint

        return key_fingerprint(self.bundle / "models" / "model.pt")

    def __call__(self, request):
        from monai_amif.data import pair_name
        from monai_amif.transforms import AuthorizeKey

        mri, func = Path(request["image"]), Path(request["func"])
        out = Path(tempfile.mkdtemp(prefix="amif_"))
        pair = {"mri": str(mri), "func": str(func), "task": "fused", "name": pair_name(mri)}
        (path,) = run_bundle([pair], out, self.bundle)
        # As the bundle's writer decides it (DICOM BurnedInAnnotation): only the key's public fingerprint is compared.
        marked = AuthorizeKey().resolve().fingerprint() != self.accepted_fingerprint
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
        func = str(request.get("func") or "")
        store = datastore or self.datastore()
        uri = store.get_image_uri(func) if func and func in store.list_images() else ""
        if not uri:
            raise HTTPException(400, f"'func' must name a CT/PET/SPECT image id of this datastore (got {func!r})")
        return super().infer({**request, "func": uri}, datastore)
