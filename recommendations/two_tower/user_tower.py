"""The user tower's forward pass in numpy, for the request path: one request is a few small matrix
products, cheaper than going through torch's dispatcher, and the web process needs no torch for it (the
weights are extracted once per version by `artifacts.artifact_load`). Same arithmetic as
`model.TwoTower.users`, checked by tests/recommendations/test_two_tower_serving.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations.two_tower.features import Encoded


@dataclass
class UserTowerWeights:
    """The user tower's parameters as numpy arrays: one request is a few small matrix products, cheaper
    in numpy than through torch's dispatcher."""

    type_emb: np.ndarray
    pos_emb: np.ndarray
    age_emb: np.ndarray
    att_w: np.ndarray
    att_b: np.ndarray
    att_out: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    residual_pooled: bool = False

    @classmethod
    def from_model(cls, model) -> UserTowerWeights:
        def a(t) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        return cls(
            type_emb=a(model.type_emb.weight),
            pos_emb=a(model.pos_emb.weight),
            age_emb=a(model.age_emb.weight),
            att_w=a(model.att_hidden.weight),
            att_b=a(model.att_hidden.bias),
            att_out=a(model.att_out.weight)[0],
            out_w=a(model.user_out.weight),
            out_b=a(model.user_out.bias),
            residual_pooled=model.shape.residual_pooled,
        )


def user_vector_numpy(weights: UserTowerWeights, tokens: np.ndarray, seq: Encoded) -> np.ndarray:
    """The user tower for one sequence: tokens (L, d) are the item vectors of `seq.items[0]` (rows for
    padding are ignored). Same arithmetic as `TwoTower.users`."""
    mask = seq.items[0] >= 0
    max_len = len(mask)
    tokens = tokens[mask]
    positions = np.arange(max_len - 1, -1, -1)[mask]
    h = (
        tokens
        + weights.type_emb[seq.types[0][mask]]
        + weights.pos_emb[positions]
        + weights.age_emb[seq.ages[0][mask]]
    )
    logits = np.tanh(h @ weights.att_w.T + weights.att_b) @ weights.att_out
    logits = np.exp(logits - logits.max())
    pooled = (logits / logits.sum()) @ h
    newest = tokens[-1]
    base = pooled if weights.residual_pooled else newest
    u = base + weights.out_w @ np.concatenate([pooled, newest]) + weights.out_b
    return (u / max(float(np.linalg.norm(u)), 1e-12)).astype(np.float32)
