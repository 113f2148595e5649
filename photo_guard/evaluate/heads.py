"""The attacker's heads on frozen features, and the leakage they reach on clean questions."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import PhotoGuardError

__all__ = ["train_head", "leakage"]


def train_head(
    features: Tensor, labels: Tensor, classes: int, kind: str = "linear", epochs: int = 300, seed: int = 0
) -> nn.Module:
    """Fit a head on frozen features ``[N, D]`` (L2-normalised inside) to ``labels [N]``, full batch, Adam."""
    torch.manual_seed(seed)
    d = features.shape[1]
    head: nn.Module
    if kind == "linear":
        head, lr = nn.Linear(d, classes), 1e-2
    elif kind == "mlp":
        head, lr = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, classes)), 3e-3
    else:
        raise PhotoGuardError(f"unknown head {kind!r}; use linear or mlp")
    x = F.normalize(features.float(), dim=1)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(head(x), labels).backward()
        opt.step()
    return head.eval()


def leakage(
    train_x: Tensor,
    train_id: Tensor,
    query_x: Tensor,
    query_id: Tensor,
    affiliations: Sequence[Sequence[int]],
    classes: int,
    kind: str,
) -> tuple[float, float]:
    """Mean accuracy over the affiliation draws of a head trained on ``train_x`` and asked about ``query_x``, and the
    same for an attacker who knows the training photos were pushed to the opposite side and answers with the head's
    *least* likely class. ``*_id`` give each row's identity index; a draw maps identity index -> affiliation label."""
    accs, inverted = [], []
    for k, draw in enumerate(affiliations):
        lab = torch.as_tensor(draw)
        head = train_head(train_x, lab[train_id], classes, kind, seed=k)
        with torch.no_grad():
            logits = head(F.normalize(query_x.float(), dim=1))
        accs.append(float((logits.argmax(1) == lab[query_id]).float().mean()))
        inverted.append(float((logits.argmin(1) == lab[query_id]).float().mean()))
    return statistics.mean(accs), statistics.mean(inverted)
