"""A miniature vision-language model trained on identity-affiliation captions, asked about clean photos.

Threat model (issue 14, goal 4; DP2-VL's in small): the scraper fine-tunes a VLM on the shared photos captioned
"<name> works at <place>" and later shows it a clean photo of the same person. The VLM here is the usual recipe at toy
size: the frozen encoder's embedding is projected into a few prefix tokens (the "vision tokens") and a small causal
transformer decoder is trained on the captions (teacher forcing); it answers by greedy decoding. Leakage: how often it
names the right person, and the right place (the affiliation), for clean question photos.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MiniVLM", "caption_tokens", "vlm_leakage"]

#: Token ids: these four words, then one token per person's name, then one per place (affiliation).
_SPECIAL = ("<bos>", "<eos>", "works", "at")
_NAME0 = len(_SPECIAL)  # the first name token


class MiniVLM(nn.Module):
    """Projector (embedding ``[B, D]`` -> ``prefix`` tokens) + causal transformer over ``[prefix; caption]``."""

    def __init__(self, feat_dim: int, vocab: int, width: int = 96, prefix: int = 4, layers: int = 2, length: int = 6):
        super().__init__()
        self.prefix, self.width = prefix, width
        self.project = nn.Linear(feat_dim, prefix * width)
        self.tokens = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(prefix + length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.1, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, vocab)

    def forward(self, feats: Tensor, tokens: Tensor) -> Tensor:
        """Next-token logits ``[B, T, vocab]`` for caption ``tokens [B, T]`` (from ``<bos>``) given ``feats``."""
        b, t = tokens.shape
        h = torch.cat([self.project(feats).view(b, self.prefix, self.width), self.tokens(tokens)], 1)
        h = h + self.position[: self.prefix + t]
        mask = nn.Transformer.generate_square_subsequent_mask(self.prefix + t)
        return self.out(self.body(h, mask=mask, is_causal=True)[:, self.prefix :])

    @torch.no_grad()
    def generate(self, feats: Tensor, steps: int) -> Tensor:
        """Greedy answer ``[B, steps]`` (without ``<bos>``)."""
        tokens = torch.zeros(len(feats), 1, dtype=torch.long)  # <bos> is token 0
        for _ in range(steps):
            tokens = torch.cat([tokens, self(feats, tokens)[:, -1].argmax(-1, keepdim=True)], 1)
        return tokens[:, 1:]


def caption_tokens(identity: Tensor, place: Tensor, people: int) -> Tensor:
    """``[B, 6]``: <bos> NAME works at PLACE <eos>; names are the tokens after the four words, places follow them."""
    n = len(identity)
    col = lambda v: torch.full((n,), v, dtype=torch.long)  # noqa: E731
    return torch.stack([col(0), _NAME0 + identity, col(2), col(3), _NAME0 + people + place, col(1)], 1)


def _train(feats: Tensor, captions: Tensor, vocab: int, seed: int, steps: int = 300) -> MiniVLM:
    torch.manual_seed(seed)
    model = MiniVLM(feats.shape[1], vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    model.train()
    for _ in range(steps):
        logits = model(feats, captions[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), captions[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def vlm_leakage(
    train_x: Tensor,
    train_id: Tensor,
    query_x: Tensor,
    query_id: Tensor,
    affiliations: Sequence[Sequence[int]],
    people: int,
    places: int,
    steps: int = 300,
) -> tuple[float, float]:
    """Mean over the affiliation draws of (place accuracy, name accuracy) on the clean questions, for a mini VLM
    trained on captions of the frozen-encoder features ``train_x [N, D]``; ``*_id``: each row's identity index."""
    vocab = _NAME0 + people + places
    tx, qx = F.normalize(train_x.float(), dim=1), F.normalize(query_x.float(), dim=1)
    place_acc: list[float] = []
    name_acc: list[float] = []
    for k, draw in enumerate(affiliations):
        lab = torch.as_tensor(draw)
        model = _train(tx, caption_tokens(train_id, lab[train_id], people), vocab, seed=k, steps=steps)
        answer = model.generate(qx, steps=4)  # NAME works at PLACE
        name_acc.append(float((answer[:, 0] == _NAME0 + query_id).float().mean()))
        place_acc.append(float((answer[:, 3] == _NAME0 + people + lab[query_id]).float().mean()))
    return statistics.mean(place_acc), statistics.mean(name_acc)
