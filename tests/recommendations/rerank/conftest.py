"""Candidates for the pure re-ranking steps: no database anywhere in this package."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from recommendations.rerank.candidates import Candidates, Scored

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def axis(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def cand(pk: int, score: float = 0.5, **fields) -> Scored:
    return Scored(pk=pk, score=score, **fields)


def cands(*rows: Scored) -> Candidates:
    """The steps' input: these rows as columns."""
    return Candidates.from_rows(rows)
