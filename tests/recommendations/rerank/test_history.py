from recommendations.rerank.history import history_exclude
from tests.recommendations.rerank.conftest import cand, cands


def test_bought_and_seen_items_are_hidden_when_asked():
    items = [cand(1), cand(2), cand(3)]
    out = history_exclude(cands(*items), bought_pks={1}, seen_pks={2}, exclude_bought=True, exclude_seen=True)
    assert [c.pk for c in out] == [3]


def test_repeat_purchase_scenario_keeps_bought_items():
    items = [cand(1), cand(2)]
    out = history_exclude(
        cands(*items), bought_pks={1}, seen_pks={2}, exclude_bought=False, exclude_seen=True
    )
    assert [c.pk for c in out] == [1]


def test_nothing_hidden_when_neither_is_asked():
    items = [cand(1), cand(2)]
    out = history_exclude(
        cands(*items), bought_pks={1}, seen_pks={2}, exclude_bought=False, exclude_seen=False
    )
    assert [c.pk for c in out] == [1, 2]
