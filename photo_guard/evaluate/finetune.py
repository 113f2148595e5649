"""The learner that adapts its encoder: every layer fine-tuned end to end on the shared photos.

Threat model (issue 14, goal 4; DP2-VL's fine-tuning attacker in small): the attacker does not keep the encoder
frozen. They start from the public encoder, put a linear head on its (normalised) features and train encoder and head
together, all layers, on the shared photos labelled with each identity's affiliation; then they ask about clean photos
of the same people. A protection that only moves frozen features can be learned through; this measures whether it is.
Batch-norm statistics stay frozen (the usual practice on a hundred photos); every weight is trained.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encoders import Encoder
from .protection import model_inputs
from .task import ImageSet

__all__ = ["finetune_leakage", "sets_finetune_leakage"]


def _finetune(
    published: Encoder, x: Tensor, labels: Tensor, classes: int, epochs: int, seed: int, batch: int = 20
) -> tuple[Encoder, nn.Linear]:
    """A copy of the ``published`` encoder and a linear head trained together on model inputs ``x [N, C, h, w]``."""
    torch.manual_seed(seed)
    model = copy.deepcopy(published).eval()  # eval: frozen batch-norm statistics; the weights still train
    for p in model.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        dim = model.features(x[:1]).shape[1]
    head = nn.Linear(dim, classes)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": 1e-4}, {"params": head.parameters(), "lr": 1e-2}])
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, x[idx], x[idx].flip(-1))  # mirror augmentation
            logits = head(F.normalize(model.centred(model.features(xb)), dim=1))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model, head


@torch.no_grad()
def _accuracy(model: Encoder, head: nn.Linear, x: Tensor, labels: Tensor, batch: int = 50) -> float:
    feats = torch.cat([model.features(x[i : i + batch]) for i in range(0, len(x), batch)])
    pred = head(F.normalize(model.centred(feats), dim=1))
    return float((pred.argmax(1) == labels).float().mean())


def finetune_leakage(
    encoder: Encoder,
    train_x: Tensor,
    train_id: Tensor,
    query_x: Tensor,
    query_id: Tensor,
    affiliations: Sequence[Sequence[int]],
    classes: int,
    epochs: int = 10,
) -> float:
    """Mean accuracy on the clean questions ``query_x`` of encoders fine-tuned on ``train_x`` (model inputs, see
    :func:`~photo_guard.evaluate.protection.model_inputs`), one per affiliation draw. ``*_id``: each row's identity."""
    accs = []
    published = encoder.published_copy()  # the layers as published, not as folded for speed
    for k, draw in enumerate(affiliations):
        lab = torch.as_tensor(draw)
        model, head = _finetune(published, train_x, lab[train_id], classes, epochs, seed=k)
        accs.append(_accuracy(model, head, query_x, lab[query_id]))
    return statistics.mean(accs)


def sets_finetune_leakage(
    encoder: Encoder,
    sets: Sequence[ImageSet],
    query_x: Tensor,
    query_id: Tensor,
    affiliations: Sequence[Sequence[int]],
    classes: int,
    epochs: int = 10,
) -> float:
    """:func:`finetune_leakage` trained on photo ``sets`` (one per identity, ``[3, H, W]`` photos each), preprocessed
    for ``encoder`` as an attacker's pipeline would (``query_x``: the questions' model inputs, made once by the
    caller)."""
    ids = torch.repeat_interleave(torch.arange(len(sets)), torch.tensor([len(s) for s in sets]))
    x = model_inputs(encoder, [p for s in sets for p in s])
    return finetune_leakage(encoder, x, ids, query_x, query_id, affiliations, classes, epochs)
