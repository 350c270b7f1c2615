from datetime import timedelta

from recommendations.rerank.exploration import exploration_slots
from tests.recommendations.rerank.conftest import NOW, cand, cands


def _ranked(n: int):
    return [
        cand(i, 1 - i / 100, interaction_count=5, published_at=NOW - timedelta(days=100)) for i in range(n)
    ]


def test_last_slots_go_to_new_items_without_interactions():
    pool = [
        cand(100, 0.1, interaction_count=0, published_at=NOW - timedelta(days=2)),
        cand(101, 0.3, interaction_count=0, published_at=NOW - timedelta(days=1)),
        cand(102, 0.9, interaction_count=4, published_at=NOW),  # has interactions: not exploration
        cand(103, 0.9, interaction_count=0, published_at=NOW - timedelta(days=60)),  # too old
    ]
    out = exploration_slots(cands(*_ranked(10)), cands(*pool), limit=10, share=0.2, max_age_days=14, now=NOW)
    assert len(out) == 10
    assert [c.pk for c in out[-2:]] == [101, 100]
    assert all(c.explored for c in out[-2:]) and not any(c.explored for c in out[:-2])
    assert [c.pk for c in out[:8]] == list(range(8))


def test_a_short_list_is_extended_rather_than_cut():
    pool = [cand(100, 0.1, interaction_count=0, published_at=NOW)]
    out = exploration_slots(cands(*_ranked(3)), cands(*pool), limit=10, share=0.1, max_age_days=14, now=NOW)
    assert [c.pk for c in out] == [0, 1, 2, 100]


def test_no_share_or_no_new_items_changes_nothing():
    pool = [cand(100, 0.1, interaction_count=0, published_at=NOW)]
    assert [
        c.pk
        for c in exploration_slots(
            cands(*_ranked(5)), cands(*pool), limit=5, share=0, max_age_days=14, now=NOW
        )
    ] == list(range(5))
    assert [
        c.pk
        for c in exploration_slots(cands(*_ranked(5)), cands(), limit=5, share=0.2, max_age_days=14, now=NOW)
    ] == list(range(5))
