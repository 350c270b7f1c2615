"""The two towers (torch). The user tower's forward pass for the request path is in numpy (user_tower.py).

Item tower: projection(content embedding) + id embedding + category + brand + price-bucket embeddings,
L2-normalised. Id 0, category/brand/price 0 are "unknown" and fixed at zero (padding_idx), so an item the
model never saw gets a vector from its content (and category, brand, price) alone; during training a share
of the ids is dropped to 0 (`id_dropout`) so that this content-only path is trained too.

User tower: the recent items (item-tower vectors), each plus an event-type, a position (0 = newest) and an
age embedding; additive attention pools them; the pooled vector and the newest item go through a linear
layer, added back to the pooled vector (a residual; models trained before `residual_pooled` add it to the
newest item), L2-normalised. Score = cosine(user, item).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from recommendations.two_tower.features import AGE_BUCKETS, EVENT_TYPES


@dataclass
class ModelShape:
    content_dim: int
    dim: int
    hidden: int
    n_ids: int
    cat_buckets: int
    brand_buckets: int
    price_buckets: int
    max_len: int
    residual_pooled: bool = False  # False for models trained before the option existed

    def as_dict(self) -> dict:
        return asdict(self)


class TwoTower(nn.Module):
    def __init__(self, shape: ModelShape, *, dropout: float = 0.0):
        super().__init__()
        self.shape = shape
        # on the user tower's input items while training; not part of the shape (serving has none)
        self.dropout = dropout
        d = shape.dim
        # hidden = 0: one linear projection of the content embedding instead of a hidden layer
        self.content = (
            nn.Sequential(nn.Linear(shape.content_dim, shape.hidden), nn.GELU(), nn.Linear(shape.hidden, d))
            if shape.hidden
            else nn.Linear(shape.content_dim, d)
        )
        self.id_emb = nn.Embedding(shape.n_ids + 1, d, padding_idx=0)
        self.cat_emb = nn.Embedding(shape.cat_buckets + 1, d, padding_idx=0)
        self.brand_emb = nn.Embedding(shape.brand_buckets + 1, d, padding_idx=0)
        self.price_emb = nn.Embedding(shape.price_buckets + 2, d, padding_idx=0)
        self.type_emb = nn.Embedding(len(EVENT_TYPES) + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(shape.max_len, d)
        self.age_emb = nn.Embedding(AGE_BUCKETS + 1, d, padding_idx=0)
        self.att_hidden = nn.Linear(d, d)
        self.att_out = nn.Linear(d, 1, bias=False)
        self.user_out = nn.Linear(2 * d, d)
        # The learned parts start small, so the content projection leads at first.
        for emb in (self.id_emb, self.cat_emb, self.brand_emb, self.price_emb):
            nn.init.normal_(emb.weight, std=0.01)
            with torch.no_grad():
                emb.weight[0].zero_()
        for emb in (self.type_emb, self.pos_emb, self.age_emb):
            nn.init.normal_(emb.weight, std=0.01)
        nn.init.zeros_(self.user_out.weight)
        nn.init.zeros_(self.user_out.bias)

    def items(
        self,
        content: torch.Tensor,
        ids: torch.Tensor,
        category: torch.Tensor,
        brand: torch.Tensor,
        price: torch.Tensor,
    ) -> torch.Tensor:
        v = (
            self.content(content)
            + self.id_emb(ids)
            + self.cat_emb(category).sum(dim=1)
            + self.brand_emb(brand)
            + self.price_emb(price)
        )
        return F.normalize(v, dim=-1)

    def users(self, tokens: torch.Tensor, types: torch.Tensor, ages: torch.Tensor, mask: torch.Tensor):
        """tokens (b, L, d) item vectors, newest last; mask (b, L) True where there is an item."""
        max_len = tokens.shape[1]
        positions = torch.arange(max_len - 1, -1, -1, device=tokens.device)  # newest = 0
        if self.training and self.dropout:
            tokens = F.dropout(tokens, self.dropout)
        h = tokens + self.type_emb(types) + self.pos_emb(positions)[None] + self.age_emb(ages)
        logits = self.att_out(torch.tanh(self.att_hidden(h))).squeeze(-1)
        logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        pooled = (weights.unsqueeze(-1) * h).sum(dim=1)
        newest = tokens[:, -1]
        base = pooled if self.shape.residual_pooled else newest
        u = base + self.user_out(torch.cat([pooled, newest], dim=-1))
        return F.normalize(u, dim=-1)
