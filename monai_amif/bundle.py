"""Pieces the MONAI Bundle configs reference by dotted path (``bundles/amif_fusion/configs/*.json``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .io import image_format, read_image, write_image
from .transforms import RestoreColor

__all__ = ["SaveFusion", "EXTENSIONS"]

EXTENSIONS = {"pil": ".png", "nifti": ".nii.gz", "dicom": ".dcm"}


class SaveFusion:
    """Ignite handler: after each iteration, write every fused image of the batch to ``output_dir/<task>/<name><ext>``.

    ``extension="auto"`` writes each result in its MR input's format (PNG, NIfTI ``.nii.gz`` with the MR's affine,
    DICOM: a derived Secondary Capture with the MR's patient and study that references both inputs). Colour is
    restored from the functional image's Cb/Cr where it had colour. The result counts as marked (DICOM
    BurnedInAnnotation YES) unless the run's key fingerprint equals ``accepted_fingerprint``, the public id of the key
    the model was trained for (as ``amif fuse`` decides); without one, only the absent key counts as marked.
    """

    def __init__(self, output_dir: str, extension: str = "auto", accepted_fingerprint: str | None = None) -> None:
        self.output_dir, self.extension = Path(output_dir), extension
        self.accepted = accepted_fingerprint
        self.restore = RestoreColor()

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _marked(self, item: dict) -> bool:
        fingerprint = item.get("key_fingerprint")
        if fingerprint is None:
            return float(torch.as_tensor(item["key"]).abs().sum()) == 0
        return fingerprint == "" or (self.accepted is not None and fingerprint != self.accepted)

    def __call__(self, engine) -> None:
        batch, output = engine.state.batch, engine.state.output
        for item, out in zip(batch, output):
            self.write(item, out["pred"])

    def write(self, item: dict, pred) -> Path:
        """Write one fused image ``pred [1, H, W]`` for the pair ``item`` (its paths, task, name, key fingerprint)."""
        pred = torch.as_tensor(pred).detach().float().cpu()
        if bool(item.get("func_is_colour", False)):
            pred = self.restore(pred, torch.as_tensor(item["func_cbcr"]).cpu())
        mri, func = item.get("mri_path", ""), item.get("func_path", "")
        fmt = image_format(mri) if mri else "pil"
        ext = EXTENSIONS[fmt] if self.extension == "auto" else self.extension
        like = read_image(mri) if fmt != "pil" else None
        also = (read_image(func),) if fmt == "dicom" and func else ()
        path = self.output_dir / str(item.get("task", "")) / f"{item['name']}{ext}"
        write_image(path, pred.numpy(), like=like, marked=self._marked(item), also_from=also)
        return path
