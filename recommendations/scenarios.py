"""The scenarios: for a user, similar items, session, trending, semantic search, and bought together
(an item, a cart). Each builds a query
vector (or a popularity list), retrieves candidates with the hard filters inside, re-ranks them with the
surface's profile, explains, hydrates and logs the answer.

Input is already validated by the API (`recommendations.api.serializers`): ids are resolved to pks,
filters are sane. Unknown users are not an error: they get the cold-start path.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ParamSpec

import numpy as np
from django.utils import timezone

from catalog.embedding import current_model_name
from recommendations import candidate_cache, experiments, item_cache, selectors, services, sources
from recommendations.covisitation import covisitation_neighbours
from recommendations.models import Scenario
from recommendations.ranker import serving as ranker_serving
from recommendations.rerank.candidates import Candidates, Scored, cosine, order_by_score
from recommendations.rerank.pipeline import RerankConfig, RerankContext, pool_size, rerank
from recommendations.rerank.promotions import PromotionRule
from recommendations.retrieval import get_backend
from recommendations.retrieval.base import HardFilters
from recommendations.two_tower import serving as two_tower_serving

# Weight of the i-th most recent session item in the session vector: the newest counts most.
SESSION_DECAY = 0.7


@dataclass(frozen=True)
class ListParams:
    """The options every scenario takes, validated."""

    limit: int = 10
    surface: str = ""
    exclude_pks: frozenset[int] = frozenset()
    category: tuple[str, ...] = ()
    min_price: Any = None
    max_price: Any = None


@dataclass(frozen=True)
class PreviewOptions:
    """Admin preview: serve as of another time, with or without promotions, and log nothing."""

    now: datetime | None = None
    promotions: bool = True
    include_inactive_promotions: bool = False
    # offline evaluation: receives each source's candidates, the ranker's order (before re-ranking) and
    # re-ranking's input (`rerank`: candidates, config, context)
    trace: dict[str, Any] | None = None


@dataclass
class Answer:
    recommendation_id: uuid.UUID
    scenario: str
    items: list[dict[str, Any]] = field(default_factory=list)
    profile: str = ""
    profile_version: int = 0
    # a personalised, item-page or one-item session answer: "hit" (served from the pre-computed candidates
    # of the user or the item) or "miss:<why>" (the live path: none, events, key, vector, stale, filtered,
    # off, experiment); "" for the other scenarios and for previews
    cache: str = ""
    # the A/B experiment's name and the arm served (None outside any experiment)
    experiment: str | None = None
    variant: str | None = None


@dataclass
class _Signal:
    """Where the candidates come from, and how each one is explained."""

    scenario: str
    vector: np.ndarray | None = None
    scores: dict[int, float] | None = None  # for popularity lists (no vector)
    reason: dict[str, Any] | None = None  # the same reason for every item (similar_to, trending, ...)
    history: selectors.History = field(default_factory=selectors.History)
    # items a "because you ..." explanation may point at: pk -> (external id, vector, bought?), or the pks
    # to fetch them for (with the candidates' features, in the same query)
    explainers: dict[int, tuple[str, np.ndarray, bool]] = field(default_factory=dict)
    explain_pks: list[int] = field(default_factory=list)
    # two-tower model: candidates from its own search (k, filters) -> {pk: score}, and its version name
    search: Callable[..., dict[int, float]] | None = None
    model_version: str = ""
    # the learned ranker's path: candidate sources around this context, fused and ordered by the ranker
    sources: sources.SourceContext | None = None
    # per-item reasons, when the source that placed each item differs (bought together)
    reasons: dict[int, dict[str, Any]] | None = None
    # the scores come from the user's pre-computed candidate list (candidate_cache)
    cached: bool = False


_P = ParamSpec("_P")


def _in_experiment(serve: Callable[_P, Answer]) -> Callable[_P, Answer]:
    """Serve the answer with the visitor's arm when an experiment covers its surface
    (`recommendations.experiments`); `_serve` applies and logs it. A preview (admin, offline evaluation) is
    in no experiment unless the arm is forced (`experiments.arm_override`)."""

    @functools.wraps(serve)
    def served(*args: _P.args, **kwargs: _P.kwargs) -> Answer:
        arm = experiments.arm_overridden()
        params = kwargs.get("params")
        if arm is None and kwargs.get("preview") is None and isinstance(params, ListParams):
            arm = experiments.arm_for(
                surface=params.surface,
                user_id=str(kwargs.get("user_id") or ""),
                session_id=str(kwargs.get("session_id") or ""),
            )
        if arm is None:
            return serve(*args, **kwargs)
        with experiments.arm_serving(arm):
            return serve(*args, **kwargs)

    return served


@_in_experiment
def recommendations_for_user(
    *,
    user_id: str,
    session_id: str = "",
    params: ListParams,
    preview: PreviewOptions | None = None,
    history: selectors.History | None = None,
    vector: np.ndarray | None = None,
) -> Answer:
    """Personalised: the user's vector; without one, their history's items; without history, the session
    (if a session id is given); without that, trending. `history` and `vector` replace the stored ones
    when given (offline evaluation serves from training events only).

    A served request first tries the user's pre-computed candidates (candidate_cache): when they are
    still right, only the request's filters and the live re-ranking run. `Answer.cache` tells which."""
    overridden = vector is not None
    cache = ""
    if history is None and vector is None and preview is None:
        if not candidate_cache.enabled():
            vector, history = selectors.user_context(user_id=user_id)
            cache = "miss:off"
        else:
            plan = _cache_plan(params)
            state = selectors.user_state(user_id=user_id, serve=plan.check)
            answer, cache = _from_cache(state, plan, user_id=user_id, session_id=session_id, params=params)
            if answer is not None:
                return answer
            history, vector = state.history, state.vector()
    elif history is None or vector is None:
        stored_vector, stored_history = selectors.user_context(user_id=user_id)
        history = history if history is not None else stored_history
        vector = vector if vector is not None else stored_vector
    assert history is not None
    signal = _user_signal(
        user_id=user_id, params=params, history=history, vector=vector, overridden=overridden
    )
    if signal is not None:
        answer = _serve(signal=signal, params=params, user_id=user_id, session_id=session_id, preview=preview)
    else:
        answer = _user_fallback(
            user_id=user_id, session_id=session_id, params=params, preview=preview, history=history
        )
    answer.cache = cache
    return answer


def _user_signal(
    *,
    user_id: str,
    params: ListParams,
    history: selectors.History,
    vector: np.ndarray | None,
    overridden: bool,
) -> _Signal | None:
    """The personalised signal (sources for the ranker, or one retrieval), or None when the user has
    neither a vector nor history (the session or trending answer instead)."""
    recent = [pk for pk, _ in history.recent]
    signal = _Signal(scenario=Scenario.USER, vector=vector, history=history)
    if vector is None and recent:
        # No stored vector yet (the worker is behind, or the user is new): build it from the history.
        vectors = selectors.history_vectors(item_pks=recent)
        weighted = [(vectors[pk][1], w) for pk, w in history.recent if pk in vectors]
        signal.vector = selectors.weighted_mean([v for v, _ in weighted], [w for _, w in weighted])
        signal.explainers = _explainers(recent[: selectors.EXPLAIN_ITEMS], vectors, bought=history.bought_pks)
    else:
        signal.explain_pks = recent[: selectors.EXPLAIN_ITEMS]
    # the user tower only when something uses it: with a ranker that has no two_tower source, the ranked
    # path never reads it (one to three reads saved per request)
    ranker = _ranker() if recent else None
    learned = (
        two_tower_serving.query_for_user(user_id=user_id, version=_arm_two_tower())
        if not overridden and recent and (ranker is None or "two_tower" in ranker.ranker.sources)
        else None
    )
    _two_tower(signal, learned)
    if recent:
        _with_sources(signal, params=params, recent=recent, vector=signal.vector, learned=learned)
    if signal.vector is not None or signal.search is not None or signal.sources is not None:
        return signal
    return None


def _user_fallback(
    *,
    user_id: str,
    session_id: str,
    params: ListParams,
    preview: PreviewOptions | None,
    history: selectors.History,
) -> Answer:
    if session_id:
        session = selectors.history_for(session_id=session_id)
        if not session.empty:
            return _from_session(
                item_pks=[pk for pk, _ in reversed(session.recent)],
                session_id=session_id,
                user_id=user_id,
                params=params,
                preview=preview,
                history=history,
            )
    return _trending(params=params, user_id=user_id, session_id=session_id, preview=preview, history=history)


@_in_experiment
def recommendations_similar(
    *,
    item_pk: int,
    external_id: str,
    params: ListParams,
    preview=None,
    user_id: str = "",
    session_id: str = "",
) -> Answer:
    """Items like this one (the item itself is never in the answer). An item without a vector yet gets
    what is trending in its category. `user_id`/`session_id` only label the served list (whom it was
    shown to); they do not change it.

    A served request first tries the item's pre-computed list (item_cache): when it is still right, only
    the request's filters and the live re-ranking run. `Answer.cache` tells which."""
    params = _excluding(params, [item_pk])
    answer, cache, vectors = _item_cached(
        item_pk=item_pk,
        scenario=Scenario.SIMILAR,
        params=params,
        preview=preview,
        served_to=(user_id, session_id),
    )
    if answer is not None:
        return answer
    if vectors is None:
        vectors = selectors.history_vectors(item_pks=[item_pk])
    signal = _similar_signal(
        item_pk=item_pk, external_id=external_id, vector=_vector_of(vectors, item_pk), params=params
    )
    if signal is None:
        answer = _trending(params=params, preview=preview, user_id=user_id, session_id=session_id)
    else:
        answer = _serve(signal=signal, params=params, preview=preview, user_id=user_id, session_id=session_id)
    answer.cache = cache
    return answer


def _vector_of(vectors: dict[int, tuple[str, np.ndarray]], item_pk: int) -> np.ndarray | None:
    found = vectors.get(item_pk)
    return found[1] if found is not None else None


def _similar_signal(
    *, item_pk: int, external_id: str, vector: np.ndarray | None, params: ListParams
) -> _Signal | None:
    """Content neighbours with bought-together and viewed-together, ordered by the ranker (when trained);
    a new item without a vector still gets its co-visitation neighbours that way. Without a ranker, one
    vector search. None: no ranker and no vector (trending answers)."""
    reason = {"type": "similar_to", "item_id": external_id}
    signal = _Signal(scenario=Scenario.SIMILAR, vector=vector, reason=reason)
    _with_sources(signal, params=params, recent=[], vector=None, learned=None, anchor=item_pk)
    if signal.sources is not None:
        signal.reason = None
        signal.explain_pks = [item_pk]
        return signal
    return signal if vector is not None else None


@_in_experiment
def recommendations_for_session(
    *, item_pks: list[int], session_id: str = "", params: ListParams, preview=None
) -> Answer:
    """Real-time intent of an anonymous visitor: the recent items (oldest first), newest weighted most.
    A session of one item (any number of events on it) is first served from that item's pre-computed
    list (item_cache), as `similar` is; longer sessions are always live."""
    if len(set(item_pks)) != 1:
        return _from_session(item_pks=item_pks, session_id=session_id, params=params, preview=preview)
    answer, cache, vectors = _item_cached(
        item_pk=item_pks[0],
        scenario=Scenario.SESSION,
        params=_excluding(params, item_pks),
        preview=preview,
        served_to=("", session_id),
    )
    if answer is not None:
        return answer
    answer = _from_session(
        item_pks=item_pks, session_id=session_id, params=params, preview=preview, vectors=vectors
    )
    answer.cache = cache
    return answer


# A miss for these reasons queues the item's lists (computed on first demand); `filtered`, `off` and
# `experiment` are misses a recomputation would not turn into hits.
_QUEUE_ON = frozenset({"miss:none", "miss:key", "miss:vector", "miss:events", "miss:stale"})


def _item_cached(
    *, item_pk: int, scenario: str, params: ListParams, preview, served_to: tuple[str, str]
) -> tuple[Answer | None, str, dict[int, tuple[str, np.ndarray]] | None]:
    """The answer from the item's pre-computed list, or (None, "miss:<why>", the item's vector as
    `history_vectors` gives it, read in the same query, so a miss costs no extra round trip; None when not
    read). Previews (admin, offline evaluation) are always live and carry no cache result."""
    if preview is not None:
        return None, "", None
    if not item_cache.enabled():
        return None, "miss:off", None
    state = selectors.item_state(item_pk=item_pk, scenario=scenario, covisitation=_ranker() is not None)
    if state is None:
        return None, "miss:none", None
    vectors = {item_pk: (state.external_id, state.vector)} if state.vector is not None else {}
    answer, cache = _from_item_cache(
        state, item_pk=item_pk, scenario=scenario, params=params, served_to=served_to
    )
    if cache in _QUEUE_ON:
        from recommendations.tasks import item_lists_enqueue

        item_lists_enqueue(item_pks=[item_pk])
    return answer, cache, vectors


def _from_item_cache(
    state: selectors.ItemState,
    *,
    item_pk: int,
    scenario: str,
    params: ListParams,
    served_to: tuple[str, str],
) -> tuple[Answer | None, str]:
    """As `_from_cache` for a user: none, computed with other models or profile settings, or with another
    vector of the item, before a change to its co-visitation (a ranker serves), older than the bound, or
    cut below `limit` by the request's filters."""
    stored = state.stored
    if stored is None:
        return None, "miss:none"
    arm = experiments.arm_current()
    if arm is not None and (arm.model_version is not None or arm.disabled_sources):
        return None, "miss:experiment"
    profile = _arm_profile(arm) or selectors.profile_for_surface(surface=params.surface)
    if stored.key != item_cache.key_current(profile=profile):
        return None, "miss:key"
    if stored.vector_at != state.embedded_at:
        return None, "miss:vector"
    if state.covisited_since:
        return None, "miss:events"
    now = timezone.now()
    if now - stored.computed_at > item_cache.max_age():
        return None, "miss:stale"
    ranked = _ranker() is not None
    # the live path's explanations: a fixed `similar_to` without a ranker; with one, the source reasons
    # the worker stored, then the item itself (`explain_pks`), as for a session
    if scenario == Scenario.SIMILAR and not ranked:
        reason = {"type": "similar_to", "item_id": state.external_id}
    else:
        reason = None
    signal = _Signal(
        scenario=scenario,
        scores=dict(zip(stored.item_pks, stored.scores, strict=True)),
        reason=reason,
        reasons=stored.reasons,
        model_version=stored.model_version,
        explain_pks=[] if reason is not None else [item_pk],
        cached=True,
    )
    user_id, session_id = served_to
    answer = _serve_scored(
        signal=signal,
        scores=dict(signal.scores or {}),
        ranked_by=None,
        params=params,
        preview=None,
        user_id=user_id,
        session_id=session_id,
        profile=profile,
        now=now,
        min_items=params.limit,
    )
    if answer is None:
        return None, "miss:filtered"
    answer.cache = "hit"
    return answer, "hit"


def item_candidates_compute(*, item_pk: int, scenario: str) -> item_cache.Computed | None:
    """The item's ranked candidates as the live `similar` (or one-item `session`) path computes them for the
    default profile and no request filters (the worker's side of item_cache), with each candidate's source
    reason; None when the scenario has nothing of its own for the item (trending answers instead)."""
    started = timezone.now()
    state = selectors.item_state(item_pk=item_pk, scenario=scenario, covisitation=False)
    if state is None:
        return None
    params = _excluding(ListParams(), [item_pk])
    profile = selectors.profile_for_surface(surface=params.surface)
    # the key first: a model promoted during the computation leaves a row that is a miss, never a wrong hit
    key = item_cache.key_current(profile=profile)
    vectors = {item_pk: (state.external_id, state.vector)} if state.vector is not None else {}
    if scenario == Scenario.SIMILAR:
        signal = _similar_signal(
            item_pk=item_pk, external_id=state.external_id, vector=state.vector, params=params
        )
    else:
        signal = _session_signal(
            item_pks=[item_pk], params=params, history=selectors.History(), vectors=vectors
        )
    if signal is None:
        return None
    ranked = _candidates_rank(signal, params=params, profile=profile, now=started)
    return item_cache.Computed(
        scenario=scenario,
        key=key,
        model_version=ranked.model_version,
        item_pks=ranked.item_pks,
        scores=ranked.scores,
        reasons=ranked.reasons,
        vector_at=state.embedded_at,
        computed_at=started,
    )


@_in_experiment
def recommendations_trending(
    *, params: ListParams, preview=None, user_id: str = "", session_id: str = ""
) -> Answer:
    """Time-decayed popularity. `user_id`/`session_id` only label the served list, as for similar items."""
    return _trending(params=params, preview=preview, user_id=user_id, session_id=session_id)


@_in_experiment
def recommendations_search(
    *, query: str, params: ListParams, preview=None, user_id: str = "", session_id: str = ""
) -> Answer:
    """Semantic search: the query embedded with the catalog's model, nearest items first. `user_id` and
    `session_id` label the served list (and place the visitor in an experiment)."""
    from catalog.embedding import query_vector

    vector = query_vector(query)
    signal = _Signal(scenario=Scenario.SEARCH, vector=vector, reason={"type": "matches_query"})
    return _serve(signal=signal, params=params, preview=preview, user_id=user_id, session_id=session_id)


@_in_experiment
def recommendations_bought_together(
    *,
    item_pk: int,
    external_id: str,
    params: ListParams,
    preview=None,
    user_id: str = "",
    session_id: str = "",
) -> Answer:
    """Frequently bought together with this item: its "bought" co-visitation neighbours, then "viewed"
    ones, then items like it to fill the list. With no co-visitation at all the answer says so in its
    scenario (`bought_together_fallback_content`)."""
    return _together(
        anchors={item_pk: external_id},
        params=params,
        preview=preview,
        cart=False,
        served_to=(user_id, session_id),
    )


@_in_experiment
def recommendations_for_cart(
    *, items: dict[int, str], params: ListParams, preview=None, user_id: str = "", session_id: str = ""
) -> Answer:
    """Frequently bought with a cart (pk -> shop id): the sum of its items' co-visitation neighbours,
    the cart's own items excluded; the same fill and fallback as for one item."""
    return _together(
        anchors=items, params=params, preview=preview, cart=True, served_to=(user_id, session_id)
    )


# Score bands of the bought-together list: the re-ranking adjustments (freshness, popularity penalty,
# low stock) are hundredths, so a source never overtakes the one above it.
_BAND = {"bought": 2.0, "viewed": 1.0, "content": 0.0}


def _together(
    *, anchors: dict[int, str], params: ListParams, preview, cart: bool, served_to: tuple[str, str] = ("", "")
) -> Answer:
    """Both kinds are always read (two indexed queries), so the answer's cost does not depend on how far
    down the list "bought" reaches; content fills only when fewer than `limit` items were co-visited."""
    scenario, fallback = (
        (Scenario.CART, Scenario.CART_FALLBACK)
        if cart
        else (Scenario.BOUGHT_TOGETHER, Scenario.BOUGHT_TOGETHER_FALLBACK)
    )
    params = _excluding(params, list(anchors))
    profile = selectors.profile_for_surface(surface=params.surface)
    filters = _filters(params, in_stock_only=profile.in_stock_only)
    scores: dict[int, float] = {}
    reasons: dict[int, dict[str, Any]] = {}
    for kind, reason_type in (("bought", "bought_together"), ("viewed", "viewed_together")):
        found = covisitation_neighbours(
            item_pks=list(anchors), kind=kind, k=profile.candidate_k, filters=filters
        )
        summed, best_anchor = _sum_rows(found)
        top = max(summed.values(), default=0.0)
        for pk, score in summed.items():
            if pk not in scores:
                scores[pk] = _BAND[kind] + score / top
                reasons[pk] = {"type": reason_type, "item_id": anchors[best_anchor[pk]]}
    if not scores:
        scenario = fallback
    if len(scores) < params.limit:
        # too few co-visited items (or none: a new item): items like the anchors fill the list
        vectors = selectors.history_vectors(item_pks=list(anchors))
        vector = selectors.weighted_mean([v for _, v in vectors.values()], [1.0] * len(vectors))
        if vector is not None:
            like = {"type": "similar_to", "item_id": next(iter(vectors.values()))[0]}
            for c in get_backend().search(vector=vector, k=profile.candidate_k, filters=filters):
                if c.item_pk not in scores:
                    scores[c.item_pk] = _BAND["content"] + (1.0 - c.distance) / 2.0
                    reasons[c.item_pk] = like
    user_id, session_id = served_to
    if not scores:
        return _trending(params=params, preview=preview, user_id=user_id, session_id=session_id)
    signal = _Signal(scenario=scenario, scores=scores, reasons=reasons, model_version="covisitation")
    return _serve(
        signal=signal, params=params, preview=preview, profile=profile, user_id=user_id, session_id=session_id
    )


def _sum_rows(found: dict[int, dict[int, float]]) -> tuple[dict[int, float], dict[int, int]]:
    """Neighbour -> summed score over the anchors, and the anchor that gave it the most."""
    summed: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}
    for anchor, row in found.items():
        for pk, score in row.items():
            summed[pk] = summed.get(pk, 0.0) + score
            if pk not in best or score > best[pk][0]:
                best[pk] = (score, anchor)
    return summed, {pk: anchor for pk, (_s, anchor) in best.items()}


def _from_session(
    *,
    item_pks: list[int],
    session_id: str,
    params: ListParams,
    preview: PreviewOptions | None,
    user_id: str = "",
    history: selectors.History | None = None,
    vectors: dict[int, tuple[str, np.ndarray]] | None = None,
) -> Answer:
    """`vectors`: the items' `history_vectors`, when the caller read them already."""
    if vectors is None:
        vectors = selectors.history_vectors(item_pks=item_pks)
    params = _excluding(params, item_pks)
    signal = _session_signal(
        item_pks=item_pks, params=params, history=history or selectors.History(), vectors=vectors
    )
    if signal is None:
        return _trending(
            params=params, user_id=user_id, session_id=session_id, preview=preview, history=history
        )
    return _serve(signal=signal, params=params, user_id=user_id, session_id=session_id, preview=preview)


def _session_signal(
    *,
    item_pks: list[int],
    params: ListParams,
    history: selectors.History,
    vectors: dict[int, tuple[str, np.ndarray]],
) -> _Signal | None:
    """The session's decayed mean vector (and the two-tower user tower over its items, when active),
    explained by its items. None: neither (trending answers)."""
    newest_first = list(dict.fromkeys(reversed(item_pks)))
    weighted = [
        (vectors[pk][1], SESSION_DECAY**rank) for rank, pk in enumerate(newest_first) if pk in vectors
    ]
    vector = selectors.weighted_mean([v for v, _ in weighted], [w for _, w in weighted])
    learned = two_tower_serving.query_for_items(item_pks=item_pks, version=_arm_two_tower())
    if vector is None and learned is None:
        return None
    signal = _Signal(scenario=Scenario.SESSION, vector=vector, history=history)
    _two_tower(signal, learned)
    _with_sources(signal, params=params, recent=newest_first, vector=vector, learned=learned)
    signal.explainers = _explainers(
        newest_first[: selectors.EXPLAIN_ITEMS], vectors, bought=history.bought_pks
    )
    return signal


def _trending(
    *,
    params: ListParams,
    preview: PreviewOptions | None,
    user_id: str = "",
    session_id: str = "",
    history: selectors.History | None = None,
) -> Answer:
    profile = selectors.profile_for_surface(surface=params.surface)
    filters = _filters(params, in_stock_only=profile.in_stock_only)
    scores = selectors.trending_scores(filters=filters, k=profile.candidate_k)
    reason = {"type": "trending"}
    if not scores:  # a new shop: nothing is popular yet
        scores = selectors.newest_scores(filters=filters, k=profile.candidate_k)
        reason = {"type": "new_arrival"}
    signal = _Signal(
        scenario=Scenario.TRENDING, scores=scores, reason=reason, history=history or selectors.History()
    )
    return _serve(
        signal=signal, params=params, user_id=user_id, session_id=session_id, preview=preview, profile=profile
    )


def _serve(
    *,
    signal: _Signal,
    params: ListParams,
    preview: PreviewOptions | None,
    user_id: str = "",
    session_id: str = "",
    profile=None,
) -> Answer:
    now = (preview.now if preview and preview.now else None) or timezone.now()
    arm = experiments.arm_current()
    profile = _arm_profile(arm) or profile or selectors.profile_for_surface(surface=params.surface)
    config = RerankConfig.from_profile(profile)
    filters = _filters(params, in_stock_only=config.in_stock_only)
    scores, ranked_by = _scores(
        signal, profile=profile, config=config, filters=filters, now=now, preview=preview
    )
    answer = _serve_scored(
        signal=signal,
        scores=scores,
        ranked_by=ranked_by,
        params=params,
        preview=preview,
        user_id=user_id,
        session_id=session_id,
        profile=profile,
        now=now,
    )
    assert answer is not None  # min_items=0: never short
    return answer


def _scores(
    signal: _Signal, *, profile, config: RerankConfig, filters: HardFilters, now: datetime, preview
) -> tuple[dict[int, float], _RankedBy | None]:
    """The candidates and their scores, before the re-ranking: the ranker's order over its sources, a
    fixed list, the two-tower search, or one vector search."""
    if signal.sources is not None:
        return _ranked(signal, config=config, filters=filters, now=now, preview=preview)
    if signal.scores is not None:
        return dict(signal.scores), None
    if signal.search is not None:
        return signal.search(k=profile.candidate_k, filters=filters), None
    candidates = get_backend().search(vector=signal.vector, k=profile.candidate_k, filters=filters)
    return {c.item_pk: 1.0 - c.distance for c in candidates}, None


def _serve_scored(
    *,
    signal: _Signal,
    scores: dict[int, float],
    ranked_by: _RankedBy | None,
    params: ListParams,
    preview: PreviewOptions | None,
    user_id: str,
    session_id: str,
    profile,
    now: datetime,
    min_items: int = 0,
    promotions: list[PromotionRule] | None = None,
    features: selectors.Features | None = None,
) -> Answer | None:
    """Promotions, features (the hard filters checked on fresh rows), re-ranking, explanations, hydration
    and the log. None, with nothing logged, when fewer than `min_items` candidates pass the filters and the
    history exclusions (a pre-computed list the request's filters cut too short). A cache hit gives the
    live promotions and the features it read with the user's state (`_cache_plan`: the same promotions,
    pinned items and vectors as here); `scores` is then not read."""
    config = RerankConfig.from_profile(profile)
    filters = _filters(params, in_stock_only=config.in_stock_only)
    backend = get_backend()
    if promotions is None:
        promotions = _promotions(signal, params=params, config=config, preview=preview, now=now)
    if features is None:
        # An item pinned by a promotion is offered even when retrieval did not find it (it must still
        # pass the hard filters, checked with the features).
        floor = min(scores.values(), default=0.0)
        for pk in _pinned_offered(promotions):
            if pk not in scores:
                scores[pk] = floor
        # Vectors (for near duplicates, MMR and explanations) only for the candidates that can reach the
        # list: the best by retrieval score, and pinned items. The rest are compared as if dissimilar.
        pks = np.fromiter(scores, np.int64, len(scores))
        values = np.fromiter(scores.values(), np.float64, len(scores))
        best = pks[order_by_score(values, pks)[: pool_size(params.limit)]].tolist()
        features = selectors.items_features(
            scores=scores,
            filters=filters,
            with_vector=[*best, *_pinned_vectors(promotions)],
            extra_pks=signal.explain_pks,
        )
    candidates = features.candidates
    if min_items and _servable(candidates, signal=signal, config=config) < min_items:
        return None
    if signal.explain_pks:
        signal.explainers = _explainers(signal.explain_pks, features.extra, bought=signal.history.bought_pks)

    context = RerankContext(
        scenario=signal.scenario,
        limit=params.limit,
        now=now,
        bought_pks=frozenset(signal.history.bought_pks),
        seen_pks=frozenset(signal.history.seen_pks),
        promotions=promotions,
    )
    if preview is not None and preview.trace is not None:
        # what re-ranking starts from, so that the ablation can re-apply it with steps left out
        preview.trace["rerank"] = {"candidates": candidates, "config": config, "context": context}
    ranked = rerank(candidates, config=config, context=context)

    items = []
    for c in ranked:
        reason = dict(c.reason) if c.reason else _explain(c, signal, ranked_by)
        if c.explored:
            reason["explore"] = True
        card = features.card(c.pk, c.category_path)
        items.append(
            {
                "pk": c.pk,
                "id": card.external_id,
                "title": card.title,
                "price": card.price,
                "image_url": card.image_url,
                "category_path": list(card.category_path),
                "score": round(float(c.score), 6),
                "reason": reason,
            }
        )
    answer = Answer(
        recommendation_id=uuid.uuid4(),
        scenario=signal.scenario,
        items=items,
        profile=profile.surface,
        profile_version=profile.version,
    )
    arm = experiments.arm_current()
    labelled = arm is not None and arm.labelled
    if labelled:
        answer.experiment, answer.variant = arm.experiment, arm.variant
    if preview is None:
        services.served_list_log(
            answer=answer,
            user_id=user_id,
            session_id=session_id,
            surface=params.surface,
            model_version=(f"ranker:{ranked_by.name}" if ranked_by is not None else "")
            or signal.model_version
            or (current_model_name() if signal.vector is not None else "popularity"),
            backend=backend.name
            if signal.vector is not None
            or signal.search is not None
            or signal.sources is not None
            or signal.cached
            else "",
            experiment=arm.experiment_id if labelled else None,
            variant=arm.variant if labelled else "",
        )
    return answer


def _promotions(
    signal: _Signal,
    *,
    params: ListParams,
    config: RerankConfig,
    preview: PreviewOptions | None,
    now: datetime,
) -> list[PromotionRule]:
    if not config.promotions_enabled or (preview is not None and not preview.promotions):
        return []
    return selectors.promotions_live(
        surface=params.surface,
        now=now,
        include_inactive=bool(preview and preview.include_inactive_promotions),
        search=signal.scenario == Scenario.SEARCH,
    )


def _pinned_offered(promotions: list[PromotionRule]) -> list[int]:
    """The items pinned by item promotions: offered at the candidates' lowest score when not among them."""
    return [
        r.item_pk for r in promotions if r.target_type == "item" and r.pinned_slot and r.item_pk is not None
    ]


def _pinned_vectors(promotions: list[PromotionRule]) -> list[int]:
    """The pinned items whose vectors are read, whatever their score."""
    return [r.item_pk for r in promotions if r.pinned_slot and r.item_pk is not None]


def _servable(candidates: Candidates, *, signal: _Signal, config: RerankConfig) -> int:
    """How many candidates the re-ranking could show: available, and not hidden by the history."""
    hidden: set[int] = set()
    if signal.scenario in config.exclude_bought_in:
        hidden |= signal.history.bought_pks
    if signal.scenario in config.exclude_seen_in:
        hidden |= signal.history.seen_pks
    shown = candidates.without(np.fromiter(hidden, np.int64, len(hidden)))
    return len(shown) if not config.in_stock_only else int(shown.available.sum())


@dataclass(frozen=True)
class _CachePlan:
    """What serving a user's pre-computed list needs before reading it: the experiment arm's verdict, the
    profile, the key the list must have, the time, the live promotions; and `check`, for `user_state` to read
    the list's features in the same query (None under an arm the list cannot serve)."""

    arm_ok: bool
    profile: Any
    key: str
    now: datetime
    fresh_after: datetime  # a list computed before this is too old to serve
    promotions: list[PromotionRule]
    check: selectors.ServeCheck | None


def _cache_plan(params: ListParams) -> _CachePlan:
    arm = experiments.arm_current()
    # the list was computed with the default models and sources
    arm_ok = arm is None or (arm.model_version is None and not arm.disabled_sources)
    profile = _arm_profile(arm) or selectors.profile_for_surface(surface=params.surface)
    key = candidate_cache.key_current(profile=profile)
    now = timezone.now()
    fresh_after = now - candidate_cache.max_age()
    config = RerankConfig.from_profile(profile)
    signal = _Signal(scenario=Scenario.USER)  # the promotions of a personalised answer
    promotions = _promotions(signal, params=params, config=config, preview=None, now=now)
    check = (
        selectors.ServeCheck(
            key=key,
            fresh_after=fresh_after,
            filters=_filters(params, in_stock_only=config.in_stock_only),
            pool=pool_size(params.limit),
            pinned=tuple(_pinned_offered(promotions)),
            pinned_vector=tuple(_pinned_vectors(promotions)),
        )
        if arm_ok
        else None
    )
    return _CachePlan(arm_ok, profile, key, now, fresh_after, promotions, check)


def _from_cache(
    state: selectors.UserState, plan: _CachePlan, *, user_id: str, session_id: str, params: ListParams
) -> tuple[Answer | None, str]:
    """The answer from the user's pre-computed candidates, or (None, "miss:<why>") when they cannot give
    the answer the live path would: none, older than the user's newest event, computed with other models
    or profile settings (an experiment's arm that pins a model or leaves sources out included), older than
    the bound, or cut below `limit` by the request's filters. `user_state` read the list's features when
    the list passed the same checks (`plan.check`); without them (serving reads on a replica), they are
    read here."""
    cached = state.cached
    if cached is None:
        return None, "miss:none"
    if cached.last_event_id != state.newest_event_id:
        return None, "miss:events"
    if not plan.arm_ok:
        return None, "miss:experiment"
    if cached.key != plan.key:
        return None, "miss:key"
    if cached.computed_at < plan.fresh_after:  # now - computed_at > max_age
        return None, "miss:stale"
    history = state.history
    signal = _Signal(
        scenario=cached.scenario,
        history=history,
        reasons=cached.reasons,
        model_version=cached.model_version,
        cached=True,
    )
    signal.explain_pks = [pk for pk, _ in history.recent][: selectors.EXPLAIN_ITEMS]
    answer = _serve_scored(
        signal=signal,
        scores={} if state.features is not None else dict(zip(cached.item_pks, cached.scores, strict=True)),
        ranked_by=None,
        params=params,
        preview=None,
        user_id=user_id,
        session_id=session_id,
        profile=plan.profile,
        now=plan.now,
        min_items=params.limit,
        promotions=plan.promotions,
        features=state.features,
    )
    if answer is None:
        return None, "miss:filtered"
    answer.cache = "hit"
    return answer, "hit"


def user_candidates_compute(*, user_id: str) -> candidate_cache.Computed | None:
    """The user's ranked candidates as the live path computes them for the default profile and no request
    filters (the worker's side of candidate_cache), with each candidate's source reason; None when the
    personalised path has nothing for them (no vector and no history: session or trending instead)."""
    started = timezone.now()
    state = selectors.user_state(user_id=user_id)
    params = ListParams()
    profile = selectors.profile_for_surface(surface=params.surface)
    # the key first: a model promoted during the computation leaves a row that is a miss, never a wrong hit
    key = candidate_cache.key_current(profile=profile)
    signal = _user_signal(
        user_id=user_id, params=params, history=state.history, vector=state.vector(), overridden=False
    )
    if signal is None:
        return None
    ranked = _candidates_rank(signal, params=params, profile=profile, now=started)
    return candidate_cache.Computed(
        key=key,
        last_event_id=state.newest_event_id,
        scenario=signal.scenario,
        model_version=ranked.model_version,
        item_pks=ranked.item_pks,
        scores=ranked.scores,
        reasons=ranked.reasons,
        computed_at=started,
    )


@dataclass(frozen=True)
class _Ranked:
    item_pks: list[int]
    scores: list[float]
    reasons: list[dict[str, Any] | None]  # the source that placed each candidate (None: single retrieval)
    model_version: str


def _candidates_rank(signal: _Signal, *, params: ListParams, profile, now) -> _Ranked:
    """A signal's candidates ranked for storage (the worker's side of candidate_cache and item_cache):
    the profile's hard filters, no request filters, best first (ties by pk), each with its source reason
    when a ranker ordered them."""
    config = RerankConfig.from_profile(profile)
    filters = _filters(params, in_stock_only=config.in_stock_only)
    scores, ranked_by = _scores(
        signal, profile=profile, config=config, filters=filters, now=now, preview=None
    )
    order = sorted(scores, key=lambda pk: (-scores[pk], pk))
    reasons: list[dict[str, Any] | None] = [None] * len(order)
    if ranked_by is not None:
        vectors = selectors.item_vectors(item_pks=order)
        for i, pk in enumerate(order):
            c = Scored(pk=pk, score=scores[pk], vector=vectors.get(pk))
            reasons[i] = _source_reason(c, signal, ranked_by)
    model_version = (
        (f"ranker:{ranked_by.name}" if ranked_by is not None else "")
        or signal.model_version
        or (current_model_name() if signal.vector is not None else "popularity")
    )
    return _Ranked(order, [scores[pk] for pk in order], reasons, model_version)


def _with_sources(
    signal: _Signal,
    *,
    params: ListParams,
    recent: list[int],
    vector: np.ndarray | None,
    learned: two_tower_serving.Query | None,
    anchor: int | None = None,
) -> None:
    """With an active ranker, the candidates come from the sources around these recent items (newest
    first) and the ranker orders them. Without one, the signal stays as it was (one retrieval)."""
    if _ranker() is None:
        return
    profile = _arm_profile(experiments.arm_current()) or selectors.profile_for_surface(surface=params.surface)
    config = RerankConfig.from_profile(profile)
    signal.sources = sources.SourceContext(
        recent=tuple(recent),
        # the user's newest visit; a session (or an item page) is its own visit: the anchors stand for it
        visit=tuple(signal.history.last_visit) if signal.scenario == Scenario.USER else (),
        bought=frozenset(signal.history.bought_pks),
        anchor=anchor,
        vector=vector,
        two_tower=learned,
        allow_repeat=signal.scenario not in config.exclude_bought_in,
    )


@dataclass
class _RankedBy:
    name: str
    gathered: sources.Gathered


def _ranked(
    signal: _Signal, *, config: RerankConfig, filters: HardFilters, now: datetime, preview
) -> tuple[dict[int, float], _RankedBy | None]:
    """The union of the ranker's sources, scored by the ranker, as exp(score - best score): the best
    candidate 1, the others in (0, 1) by how far the ranker puts them below it (the re-ranking steps add
    and subtract on the scale of a cosine similarity)."""
    from recommendations.ranker.features import context_features

    loaded = _ranker()
    context = signal.sources
    context.now = now
    # what the re-ranking will hide anyway is not worth a candidate slot
    hidden = set()
    if signal.scenario in config.exclude_bought_in:
        hidden |= signal.history.bought_pks
    if signal.scenario in config.exclude_seen_in:
        hidden |= signal.history.seen_pks
    source_filters = replace(filters, exclude_item_pks=filters.exclude_item_pks | frozenset(hidden))
    context.memo["filters"] = source_filters
    # the sources' and the features' reads in two round trips, not one each (the same statements)
    sources.sources_prefetch(context, names=loaded.ranker.sources, filters=source_filters)
    gathered = sources.candidates_gather(context, names=loaded.ranker.sources, filters=source_filters)
    arm = experiments.arm_current()
    if arm is not None and arm.disabled_sources:
        gathered = _without_sources(gathered, arm.disabled_sources)
    features = context_features(context, gathered, now_ts=now.timestamp(), dim=selectors_dim())
    raw = loaded.ranker.predict(features)
    if preview is not None and preview.trace is not None:
        preview.trace["sources"] = gathered.by_source
        preview.trace["ranked"] = [int(gathered.pks[i]) for i in np.argsort(-raw, kind="stable")]
    if not len(raw):
        return {}, _RankedBy(loaded.name, gathered)
    scaled = np.exp(raw - float(raw.max()))
    return {int(pk): float(v) for pk, v in zip(gathered.pks, scaled, strict=True)}, _RankedBy(
        loaded.name, gathered
    )


def _ranker() -> ranker_serving.Loaded | None:
    """The experiment arm's ranker version when it pins one, else the active ranker."""
    arm = experiments.arm_current()
    if arm is not None and arm.ranker_version is not None:
        return experiments.arm_ranker(arm.ranker_version)
    return ranker_serving.ranker_active()


def _arm_two_tower():
    arm = experiments.arm_current()
    return arm.two_tower_version if arm is not None else None


def _arm_profile(arm: experiments.ArmConfig | None):
    return arm.profile if arm is not None else None


def _without_sources(gathered: sources.Gathered, disabled: frozenset[str]) -> sources.Gathered:
    """The candidates as if the disabled sources had offered nothing: their columns empty, and the
    candidates only they offered gone."""
    off = [j for j, name in enumerate(gathered.names) if name in disabled]
    if not off:
        return gathered
    on = [j for j in range(len(gathered.names)) if j not in off]
    keep = ~np.all(np.isnan(gathered.ranks[:, on]), axis=1) if on else np.zeros(len(gathered.pks), bool)
    scores, ranks = gathered.scores[keep].copy(), gathered.ranks[keep].copy()
    scores[:, off] = np.nan
    ranks[:, off] = np.nan
    kept = set(gathered.pks[keep].tolist())
    by_source = {
        name: ({} if name in disabled else {pk: v for pk, v in out.items() if pk in kept})
        for name, out in gathered.by_source.items()
    }
    return sources.Gathered(
        pks=gathered.pks[keep], names=gathered.names, scores=scores, ranks=ranks, by_source=by_source
    )


def selectors_dim() -> int:
    from django.conf import settings

    return settings.EMBEDDING_DIM


# The source that placed an item names the reason.
_SOURCE_REASONS = {
    "bought_together": "bought_together",
    "viewed_together": "because_you_viewed",
    "last_visit": "bought_together",
    "content_recent": "similar_to",
    "trending": "trending",
}


def _source_reason(c: Scored, signal: _Signal, ranked_by: _RankedBy) -> dict[str, Any] | None:
    gathered = ranked_by.gathered
    where = np.flatnonzero(gathered.pks == c.pk)
    if not len(where):
        return None
    ranks = gathered.ranks[where[0]]
    if np.all(np.isnan(ranks)):
        return None
    name = gathered.names[int(np.nanargmin(ranks))]
    kind = _SOURCE_REASONS.get(name)
    if kind is None:  # user vector, two-tower, repeat: the history item closest to it
        return None
    if kind == "trending":
        return {"type": "trending"}
    context = signal.sources
    anchor = None
    if name == "last_visit":
        anchor = sources.visit_anchor(context, c.pk)
    elif name in ("bought_together", "viewed_together"):
        rows = context.memo.get(f"covis:{name.split('_')[0]}", {})
        best = max(rows, key=lambda a: rows[a].get(c.pk, 0.0), default=None)
        anchor = best if best is not None and rows[best].get(c.pk) else None
    else:
        vectors = context.recent_vectors()
        anchors = [pk for pk in context.anchors if pk in vectors][: sources.CONTENT_ANCHORS]
        if anchors and c.vector is not None:
            anchor = max(anchors, key=lambda a: cosine(c.vector, vectors[a][1]))
        elif anchors:
            anchor = anchors[0]
    if anchor is None:
        return None
    external_id = context.recent_vectors().get(anchor, (None,))[0]
    if external_id is None:
        # visit items beyond the recent ones: read once per anchor (the worker explains every candidate)
        names = context.memo.setdefault("external_ids", {})
        if anchor not in names:
            names[anchor] = _external_id(anchor)
        external_id = names[anchor]
    return {"type": kind, "item_id": external_id}


def _external_id(pk: int) -> str:
    from catalog.selectors import item_external_id

    return item_external_id(pk=pk)


def _two_tower(signal: _Signal, learned: two_tower_serving.Query | None) -> None:
    """With an active two-tower version, candidates come from it (the user tower ran on the recent
    items); explanations and re-ranking stay as they are. None: content vectors, as without a model."""
    if learned is not None:
        signal.search, signal.model_version = learned.search, learned.name


def _explain(c: Scored, signal: _Signal, ranked_by: _RankedBy | None = None) -> dict[str, Any]:
    """The signal's fixed reason, the source that placed the item (with its anchor item), or the history
    item closest to this one."""
    if signal.reasons and c.pk in signal.reasons:
        return dict(signal.reasons[c.pk])
    if signal.reason is not None:
        return dict(signal.reason)
    if ranked_by is not None:
        reason = _source_reason(c, signal, ranked_by)
        if reason is not None:
            return reason
    if signal.explainers and c.vector is not None:
        best_pk = max(signal.explainers, key=lambda pk: cosine(c.vector, signal.explainers[pk][1]))
        external_id, _, bought = signal.explainers[best_pk]
        return {"type": "because_you_bought" if bought else "because_you_viewed", "item_id": external_id}
    if signal.explainers:  # no vector for this item (an exploration pick): the most recent history item
        external_id, _, bought = next(iter(signal.explainers.values()))
        return {"type": "because_you_bought" if bought else "because_you_viewed", "item_id": external_id}
    return {"type": "recommended"}


def _explainers(
    pks: list[int], vectors: dict[int, tuple[str, np.ndarray]], *, bought: set[int]
) -> dict[int, tuple[str, np.ndarray, bool]]:
    return {pk: (*vectors[pk], pk in bought) for pk in pks if pk in vectors}


def _filters(params: ListParams, *, in_stock_only: bool) -> HardFilters:
    return HardFilters(
        category_prefix=params.category,
        min_price=params.min_price,
        max_price=params.max_price,
        exclude_item_pks=frozenset(params.exclude_pks),
        in_stock_only=in_stock_only,
    )


def _excluding(params: ListParams, pks: list[int]) -> ListParams:
    return replace(params, exclude_pks=params.exclude_pks | frozenset(pks))
