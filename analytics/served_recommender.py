"""The configured recommender, as served: the evaluation ranks with the serving code path (retrieval +
re-ranking, as the API runs it), fed with each user's training history only."""

from __future__ import annotations


def served_scorer_factory(data, split, stats, vectors):
    """A Scorer for `evaluation_run`, or None while the serving code path is not installed."""
    return None
