"""Which encoder terms each protection step takes, and through which views of the photo.

A step's objective has one term per ensemble encoder, run side by side on the cores
(:func:`guard_core.parallel.parallel_sum`). An encoder with ``term_every = k`` sits out all but every k-th step
(EfficientNet-Lite0: every other step), which leaves one core with only the SSIM term on the steps between. On those
steps each face encoder takes a second view on that core: its term on a further EOT draw on top of the step's,
each view at half the encoder's weight (the expectation over two draws instead of one). Face identity is what is hard
to keep through sharing; the second draw is what a JPEG or a resize more often looks like to it. Issue 14, goal 3,
the evaluation's report (linear / MLP heads): SFace after JPEG 75 leaked 19 / 24 % instead of 20 / 27 %, after resize
0.5 28 / 34 % instead of 31 / 37 %; one face's job 1.21 -> 1.40 s (docs/photo_guard.md, "A second view on the idle
core").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from guard_core.eot import Transform

from .encoders import Encoder

__all__ = ["StepTerms", "EncoderView"]


class EncoderView(Encoder):
    """``encoder``'s term at ``share`` of its weight, on the step's photo or, with ``transform``, on a further draw of
    it. It embeds through ``encoder`` itself (no copy of the network); centroids and targets are looked up by the
    encoder's name, as for the encoder."""

    def __init__(
        self,
        encoder: Encoder,
        share: float,
        transform: Transform | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.transform, self.generator = encoder, transform, generator
        self.name, self.face, self.away_stop = encoder.name, encoder.face, encoder.away_stop
        self.loss_weight = encoder.loss_weight * share

    def embed(self, images: Tensor, align: Tensor | None = None) -> Tensor:
        """``encoder.embed`` of ``images`` ``[B, 3, H, W]``, through the further draw when there is one."""
        x = images if self.transform is None else self.transform(images, self.generator)
        return self.encoder.embed(x, align)


class StepTerms:
    """The encoders a protection step's objective takes: each on the steps that are multiples of its ``term_every``
    (every one on a step that none would take: an ensemble of one such encoder), and on a step where one sits out,
    each face encoder as two :class:`EncoderView` s at half its weight, the second through a draw from
    ``transforms`` (none: no second view). PGD reports each step's end to :meth:`done`, which passes it on to the
    caller's ``progress``."""

    def __init__(
        self,
        encoders: Sequence[Encoder],
        progress: Callable[[int, float], None] | None = None,
        transforms: Sequence[Transform] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        self.all, self.progress, self.step = list(encoders), progress, 0
        self.transforms, self.generator = list(transforms), generator

    def encoders(self) -> list[Encoder]:
        now = [e for e in self.all if self.step % e.term_every == 0] or self.all
        if not self.transforms or len(now) == len(self.all):
            return now
        pick = int(torch.randint(len(self.transforms), (), generator=self.generator))
        draw = self.transforms[pick]
        out: list[Encoder] = []
        for e in now:
            out += [EncoderView(e, 0.5), EncoderView(e, 0.5, draw, self.generator)] if e.face else [e]
        return out

    def done(self, step: int, loss: float) -> None:
        self.step = step + 1
        if self.progress is not None:
            self.progress(step, loss)
