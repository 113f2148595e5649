"""Pieces the MONAI Bundle configs reference by dotted path (``bundles/amif_fusion/configs/*.json``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .io import write_image
from .transforms import RestoreColour

__all__ = ["SaveFusion"]


class SaveFusion:
    """Ignite handler: after each iteration, write every fused image of the batch to ``output_dir/<task>/<name>.<ext>``.

    Colour is restored from the functional image's Cb/Cr where it had colour; the licence state (zero key = marked)
    is passed to the writer (DICOM BurnedInAnnotation).
    """

    def __init__(self, output_dir: str, extension: str = ".png") -> None:
        self.output_dir, self.extension = Path(output_dir), extension
        self.restore = RestoreColour()

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine) -> None:
        batch, output = engine.state.batch, engine.state.output
        for item, out in zip(batch, output):
            pred = torch.as_tensor(out["pred"]).detach().float().cpu()
            if bool(item.get("func_is_colour", False)):
                pred = self.restore(pred, torch.as_tensor(item["func_cbcr"]).cpu())
            marked = float(torch.as_tensor(item["key"]).abs().sum()) == 0
            path = self.output_dir / str(item.get("task", "")) / f"{item['name']}{self.extension}"
            write_image(path, pred.numpy(), marked=marked)
