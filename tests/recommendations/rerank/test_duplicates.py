import numpy as np

from recommendations.rerank.duplicates import duplicates_collapse
from tests.recommendations.rerank.conftest import axis, cand, cands


def _near(i: int, eps: float) -> np.ndarray:
    v = axis(i) + eps * axis((i + 1) % 8)
    return v / np.linalg.norm(v)


def test_variations_of_one_item_collapse_into_the_best_ranked():
    ranked = [
        cand(1, 0.9, vector=axis(0)),
        cand(2, 0.8, vector=_near(0, 0.05)),  # cosine ~0.999 with item 1
        cand(3, 0.7, vector=axis(2)),
        cand(4, 0.6, vector=_near(0, 0.1)),
    ]
    assert [c.pk for c in duplicates_collapse(cands(*ranked), threshold=0.97)] == [1, 3]


def test_distinct_items_and_items_without_vector_are_kept():
    ranked = [cand(1, 0.9, vector=axis(0)), cand(2, 0.8), cand(3, 0.7, vector=axis(1))]
    assert [c.pk for c in duplicates_collapse(cands(*ranked), threshold=0.97)] == [1, 2, 3]


def test_threshold_one_disables_collapsing():
    ranked = [cand(1, 0.9, vector=axis(0)), cand(2, 0.8, vector=axis(0))]
    assert len(duplicates_collapse(cands(*ranked), threshold=1.0)) == 2
