"""Reads for serving: profiles, live promotions, a user's or session's history, candidate features and
vectors, trending. Each is one query."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Q
from django.utils import timezone

from catalog.embedding import current_model_name
from catalog.models import Item, Promotion, surface_covered
from core.replicas import read_alias, read_connection
from core.round_trip import Read
from interactions.selectors import event_weight
from recommendations.models import DEFAULT_PROFILE, Experiment, RerankProfile, ServedList
from recommendations.rerank.candidates import Candidates, objects
from recommendations.rerank.promotions import PromotionRule
from recommendations.retrieval.base import HardFilters
from recommendations.retrieval.pgvector_backend import filters_where

# How much of a user's recent history is read per request: enough for seen/bought exclusion and for
# explanations, bounded so a heavy user costs the same as a light one.
HISTORY_EVENTS = 200
# The most recent distinct items that can explain a recommendation ("because you viewed X").
EXPLAIN_ITEMS = 20
# A visit: the events within this long before the user's newest event (an Online Retail invoice shares one
# timestamp; a live shop's session is minutes). At most VISIT_ITEMS distinct items of it are kept.
VISIT_SECONDS = 30 * 60.0
VISIT_ITEMS = 50


# Profiles and promotions are read on every request but change rarely: each process keeps them this long.
# An edit in admin reaches every worker within CONFIG_TTL_SECONDS (the process that saved it at once, through
# the signals connected in apps.py), with no restart. Saves two round trips per request.
CONFIG_TTL_SECONDS = 2.0
# Promotions that ended longer ago than this are not loaded at all.
PROMOTION_HISTORY_DAYS = 90
_config: dict[str, Any] = {"expires": 0.0}
_config_lock = threading.Lock()


def serving_config_clear(**_kwargs: Any) -> None:
    """Forget the cached profiles and promotions (a signal receiver: any arguments)."""
    with _config_lock:
        _config["expires"] = 0.0


def _serving_config() -> dict[str, Any]:
    with _config_lock:
        if _config["expires"] > time.monotonic():
            return _config
    profiles = {p.surface: p for p in RerankProfile.objects.all()}
    since = timezone.now() - timedelta(days=PROMOTION_HISTORY_DAYS)
    promotions = list(
        Promotion.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=since))
        .order_by("pk")
        .values("pk", "target_type", "item_id", "category_path", "brand", "boost", "pinned_slot", "surfaces",
                "surface_scope", "starts_at", "ends_at", "is_active")
    )  # fmt: skip
    # a shop that saved no `default` profile serves the built-in defaults: one unsaved instance per
    # refresh, not one per request (building a model instance cost ~0.1 ms of CPU a request)
    builtin = RerankProfile(surface=DEFAULT_PROFILE, version=0)
    with _config_lock:
        _config.update(
            profiles=profiles,
            builtin=builtin,
            promotions=promotions,
            expires=time.monotonic() + CONFIG_TTL_SECONDS,
        )
        return _config


def profile_for_surface(*, surface: str) -> RerankProfile:
    """The surface's profile, else the `default` one, else built-in defaults (unsaved)."""
    config = _serving_config()
    profiles = config["profiles"]
    return profiles.get(surface or DEFAULT_PROFILE) or profiles.get(DEFAULT_PROFILE) or config["builtin"]


def promotions_live(
    *, surface: str, now: datetime, include_inactive: bool = False, search: bool = False
) -> list[PromotionRule]:
    """Active promotions whose window contains `now` and that apply to `surface` (all surfaces, or the named
    ones; a semantic search answer (`search`) only those that name it). The admin preview may include
    inactive (draft) ones."""
    rules = []
    for row in _serving_config()["promotions"]:
        if not (row["is_active"] or include_inactive):
            continue
        if row["starts_at"] > now or (row["ends_at"] is not None and row["ends_at"] <= now):
            continue
        if not surface_covered(
            scope=row["surface_scope"], surfaces=row["surfaces"], surface=surface, search=search
        ):
            continue
        rules.append(
            PromotionRule(
                promotion_id=row["pk"],
                target_type=row["target_type"],
                item_pk=row["item_id"],
                category_path=tuple(row["category_path"] or ()),
                brand=row["brand"],
                boost=row["boost"],
                pinned_slot=row["pinned_slot"],
            )
        )
    return rules


def items_pks_by_external_id(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Shop id -> pk for the ids that exist (active or not)."""
    ids = list(dict.fromkeys(external_ids))
    if not ids:
        return {}
    return dict(Item.objects.filter(external_id__in=ids).values_list("external_id", "pk"))


@dataclass
class History:
    """What a user or session did recently, newest first."""

    bought_pks: set[int] = field(default_factory=set)
    seen_pks: set[int] = field(default_factory=set)
    # distinct items, newest first, with the weight they get in a vector built from history
    recent: list[tuple[int, float]] = field(default_factory=list)
    # the distinct items of the newest visit (events within VISIT_SECONDS of the newest one), newest first;
    # empty when the events' times are not known
    last_visit: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.recent


def _history(rows: Sequence[tuple[int, str]], timestamps: Sequence[float] | None = None) -> History:
    """History from (item pk, event type) rows, newest first; with their times (epoch seconds, same
    order), also the newest visit's items."""
    history = History()
    if timestamps is not None and len(timestamps):
        newest = float(timestamps[0])
        visit: dict[int, None] = {}
        for (item_pk, _), ts in zip(rows, timestamps, strict=True):
            if newest - float(ts) > VISIT_SECONDS or len(visit) >= VISIT_ITEMS:
                break
            visit[item_pk] = None
        history.last_visit = list(visit)
    weights: dict[int, float] = {}
    for rank, (item_pk, event_type) in enumerate(rows):
        if event_type == "purchase":
            history.bought_pks.add(item_pk)
        else:
            history.seen_pks.add(item_pk)
        # the event type's weight (the one table, as in the stored user vector); newer events count more:
        # the weight halves every 20 events back
        weights[item_pk] = weights.get(item_pk, 0.0) + event_weight(event_type) * 0.5 ** (rank / 20)
    history.recent = list(weights.items())
    return history


def history_for(*, session_id: str) -> History:
    """The recent events of a session that are linked to an item. From the primary, even while serving
    from a replica: the session's latest event must change its next answer (read-your-writes)."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT item_id, event_type FROM interactions_event
            WHERE session_id = %s AND item_id IS NOT NULL
            ORDER BY timestamp DESC, id DESC LIMIT %s
            """,
            [session_id, HISTORY_EVENTS],
        )
        return _history(cur.fetchall())


_USER_CONTEXT_SQL = """
SELECT p.embedding::text, p.embedding_model, h.item_ids, h.event_types, h.times
FROM (SELECT 1) AS one
LEFT JOIN interactions_userprofile p ON p.external_id = %(user)s AND p.embedding IS NOT NULL
LEFT JOIN LATERAL (
    SELECT array_agg(e.item_id ORDER BY e.timestamp DESC, e.id DESC) AS item_ids,
           array_agg(e.event_type ORDER BY e.timestamp DESC, e.id DESC) AS event_types,
           array_agg(extract(epoch FROM e.timestamp)::float8 ORDER BY e.timestamp DESC, e.id DESC) AS times
    FROM (
        SELECT id, item_id, event_type, timestamp FROM interactions_event
        WHERE user_id = %(user)s AND item_id IS NOT NULL ORDER BY timestamp DESC, id DESC LIMIT %(n)s
    ) e
) h ON true
"""


def user_context(*, user_id: str) -> tuple[np.ndarray | None, History]:
    """The user's stored vector (if computed with the current model) and recent history, in one query. From
    the primary, even while serving from a replica: the user's latest event must change their next answer
    (read-your-writes)."""
    with connection.cursor() as cur:
        cur.execute(_USER_CONTEXT_SQL, {"user": user_id, "n": HISTORY_EVENTS})
        text, model, item_ids, event_types, times = cur.fetchone()
    vector = None
    if text is not None and (not model or model == current_model_name()):
        vector = np.array(text[1:-1].split(","), dtype=np.float32)
    return vector, _history(list(zip(item_ids or [], event_types or [], strict=True)), times or [])


@dataclass
class CachedCandidates:
    """A user's pre-computed candidate list (recommendations.models.CandidateList), as read for serving."""

    key: str
    last_event_id: int
    scenario: str
    model_version: str
    item_pks: list[int]
    scores: list[float]
    reasons: dict[int, dict[str, Any]]  # pk -> its source reason (the others are explained when served)
    computed_at: datetime


@dataclass
class UserState:
    """What serving a user reads first: their history, the newest of their events (to tell whether a
    pre-computed list saw it) and that list, if any. The stored vector is parsed only when asked for (a
    cache hit never needs it)."""

    history: History
    newest_event_id: int
    cached: CachedCandidates | None
    vector_text: str | None = None
    # the list's candidates' features, read in the same query when asked for (`ServeCheck`) and the list
    # passed its checks; None otherwise
    features: Features | None = None

    def vector(self) -> np.ndarray | None:
        if self.vector_text is None:
            return None
        return np.array(self.vector_text[1:-1].split(","), dtype=np.float32)


_USER_STATE_SQL = """
SELECT CASE WHEN p.embedding_model = '' OR p.embedding_model = %(model)s THEN p.embedding::text END,
       h.item_ids, h.event_types, h.times, h.newest,
       c.key, c.last_event_id, c.scenario, c.model_version, c.item_pks, c.scores, c.reasons, c.reason_index,
       c.computed_at
FROM (SELECT 1) AS one
LEFT JOIN interactions_userprofile p ON p.external_id = %(user)s AND p.embedding IS NOT NULL
LEFT JOIN LATERAL (
    SELECT array_agg(e.item_id ORDER BY e.timestamp DESC, e.id DESC) AS item_ids,
           array_agg(e.event_type ORDER BY e.timestamp DESC, e.id DESC) AS event_types,
           array_agg(extract(epoch FROM e.timestamp)::float8 ORDER BY e.timestamp DESC, e.id DESC) AS times,
           max(e.id) AS newest
    FROM (
        SELECT id, item_id, event_type, timestamp FROM interactions_event
        WHERE user_id = %(user)s AND item_id IS NOT NULL ORDER BY timestamp DESC, id DESC LIMIT %(n)s
    ) e
) h ON true
LEFT JOIN recommendations_candidatelist c ON c.user_id = %(user)s
"""


@dataclass(frozen=True)
class ServeCheck:
    """What `user_state` needs to read, in its one query, the features of the user's pre-computed list
    when the list can be served: the checks the list must pass (the ones `scenarios._from_cache` makes:
    it saw the newest event, it has the key serving now, it is young enough) and what serving it reads
    (`scenarios._serve_scored`'s features read: the hard filters, the vectors of the best `pool`
    candidates and of pinned items, the newest history items that may explain the answer)."""

    key: str
    fresh_after: datetime  # computed at or after this
    filters: HardFilters
    pool: int
    # pinned item promotions: offered at the list's lowest score when the list does not hold them
    pinned: tuple[int, ...] = ()
    # items whose vectors are read whatever their score (the items of pinned promotions)
    pinned_vector: tuple[int, ...] = ()


# `_USER_STATE_SQL`, and the list's features when it passes the checks (`ServeCheck`): one round trip for
# a cache hit instead of two. `s` is the list when it can be served (else no row, and every CTE after it
# is empty: a miss reads no features); `scored` its candidates with their scores, pinned items at the
# list's lowest score; `x` the history's newest distinct items (the explanations' anchors).
_USER_STATE_SERVED_SQL = """
WITH e AS (
    SELECT id, item_id, event_type, timestamp FROM interactions_event
    WHERE user_id = %(user)s AND item_id IS NOT NULL ORDER BY timestamp DESC, id DESC LIMIT %(n)s
), h AS (
    SELECT array_agg(e.item_id ORDER BY e.timestamp DESC, e.id DESC) AS item_ids,
           array_agg(e.event_type ORDER BY e.timestamp DESC, e.id DESC) AS event_types,
           array_agg(extract(epoch FROM e.timestamp)::float8 ORDER BY e.timestamp DESC, e.id DESC) AS times,
           max(e.id) AS newest
    FROM e
), c AS (
    SELECT * FROM recommendations_candidatelist WHERE user_id = %(user)s
), s AS (
    SELECT c.item_pks, c.scores FROM c, h
    WHERE c.last_event_id = COALESCE(h.newest, 0) AND c.key = %(key)s AND c.computed_at >= %(fresh_after)s
), scored AS (
    SELECT u.pk, u.score FROM s, unnest(s.item_pks, s.scores) AS u(pk, score)
    UNION ALL
    SELECT p.pk, (SELECT COALESCE(min(v), 0.0) FROM unnest(s.scores) AS v)
    FROM s, unnest(%(pinned)s::bigint[]) AS p(pk) WHERE p.pk <> ALL(s.item_pks)
), x AS (
    SELECT u.pk FROM s, h, unnest(h.item_ids) WITH ORDINALITY AS u(pk, o)
    GROUP BY u.pk ORDER BY min(u.o) LIMIT %(explain)s
), v AS (
    (SELECT pk FROM scored ORDER BY score DESC, pk LIMIT %(pool)s)
    UNION SELECT unnest(%(pinned_vector)s::bigint[])
    UNION SELECT pk FROM x
), a AS (
    SELECT ARRAY(SELECT pk FROM scored) AS scored, ARRAY(SELECT pk FROM x) AS extra
), f AS ({features})
SELECT CASE WHEN p.embedding_model = '' OR p.embedding_model = %(model)s THEN p.embedding::text END,
       h.item_ids, h.event_types, h.times, h.newest,
       c.key, c.last_event_id, c.scenario, c.model_version, c.item_pks, c.scores, c.reasons, c.reason_index,
       c.computed_at, EXISTS (SELECT 1 FROM s), ft.*
FROM h
LEFT JOIN interactions_userprofile p ON p.external_id = %(user)s AND p.embedding IS NOT NULL
LEFT JOIN c ON true
CROSS JOIN (SELECT {aggregates} FROM f) AS ft
"""


def user_state(*, user_id: str, serve: ServeCheck | None = None) -> UserState:
    """`user_context` and the user's pre-computed candidate list, in one query. The newest event is the
    highest id among the HISTORY_EVENTS read: an event stored late (an older timestamp) still counts.

    With `serve`, the same query also reads the features `scenarios._serve_scored` would read for the list
    when the list passes `serve`'s checks (`UserState.features`). Only when serving reads go to the
    primary: with a replica chosen, the features stay on the replica, in their own query."""
    params: dict[str, Any] = {"user": user_id, "n": HISTORY_EVENTS, "model": current_model_name()}
    if serve is None or read_alias() != DEFAULT_DB_ALIAS:
        with connection.cursor() as cur:
            cur.execute(_USER_STATE_SQL, params)
            text, item_ids, event_types, times, newest, *row = cur.fetchone()
        features = None
    else:
        where, filter_params = filters_where(serve.filters, require_vector=False, active_only=False)
        params.update(
            filter_params,
            key=serve.key,
            fresh_after=serve.fresh_after,
            pinned=pk_array_literal(dict.fromkeys(serve.pinned)),
            pinned_vector=pk_array_literal(serve.pinned_vector),
            pool=serve.pool,
            explain=EXPLAIN_ITEMS,
        )
        sql = _user_state_served_sql(where)
        (result,) = _binary_rows(sql, params, primary=True, prepare=True)
        text, item_ids, event_types, times, newest, *row = result[:14]
        served, aggregates = result[14], result[15:]
        features = _features_parse(aggregates) if served else None
    cached = None
    if row[0] is not None:
        key, last_event_id, scenario, model_version, pks, scores, distinct, index, computed_at = row
        distinct = json.loads(distinct) if isinstance(distinct, str) else distinct  # Django: jsonb as text
        reasons = {pk: distinct[i] for pk, i in zip(pks, index, strict=True) if i >= 0} if index else {}
        cached = CachedCandidates(
            key, last_event_id, scenario, model_version, pks, scores, reasons, computed_at
        )
    history = _history(list(zip(item_ids or [], event_types or [], strict=True)), times or [])
    return UserState(
        history=history, newest_event_id=newest or 0, cached=cached, vector_text=text, features=features
    )


@functools.cache
def _user_state_served_sql(where: str) -> str:
    return _USER_STATE_SERVED_SQL.format(
        # membership by joins, not `= ANY` of a computed array: an array that is not a constant is taken
        # apart again for every row and every aggregate that reads the column (it doubled the query's CPU)
        features=_FEATURES_ROWS.format(
            scored="sc.pk IS NOT NULL",
            with_vector="v.pk IS NOT NULL",
            extra="xx.pk IS NOT NULL",
            where=where,
            score="sc.score",
            join="LEFT JOIN scored sc ON sc.pk = i.id LEFT JOIN v ON v.pk = i.id LEFT JOIN x xx ON xx.pk = i.id",
            scored_pks="(SELECT scored FROM a)::bigint[]",
            extra_pks="(SELECT extra FROM a)::bigint[]",
        ),
        aggregates=_FEATURES_AGGREGATES,
    )


# Django turns psycopg's prepared statements off (`prepare_threshold` None), which also refuses an explicit
# `prepare=True`. A connection that runs a `_PreparedCursor` gets this threshold instead: explicit ones
# only, never automatically.
_PREPARE_ONLY_WHEN_ASKED = 2**31 - 1


class _PreparedCursor(psycopg.Cursor):
    """A cursor whose statements are prepared on the server (once per connection: parsed, analysed and
    planned once, then run with each request's parameters)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ):
        cursor = super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)
        if self._query is None:
            # a prepared run keeps no query text, and Django's query log (debug, tests' captured queries)
            # reads it: without it the statement was logged as None
            self._query = self._convert_query(query, params)
        return cursor


def _binary_rows(
    sql: str, params: dict[str, Any], *, primary: bool = False, prepare: bool = False
) -> list[tuple]:
    """Runs a query with binary results, through Django's cursor wrapper (so it is logged and counted like
    any other query). Binary matters for vectors: parsing pgvector's text form costs ~0.2 ms per 384-d
    vector in Python, reading the binary form costs microseconds. `primary`: never on a replica (UNLOGGED
    tables cannot be read on a standby). With
    `prepare`, the statement is prepared on the server (`_PreparedCursor`)."""
    conn = connection if primary else read_connection()
    conn.ensure_connection()
    prepare = prepare and settings.RECSYS_DB_PREPARED_STATEMENTS
    # Django's psycopg backend binds client-side, which cannot return binary results: a plain psycopg
    # cursor on the same connection (same transaction) can.
    if prepare and conn.connection.prepare_threshold is None:
        conn.connection.prepare_threshold = _PREPARE_ONLY_WHEN_ASKED
    raw = (_PreparedCursor if prepare else psycopg.Cursor)(conn.connection)
    raw.format = psycopg.pq.Format.BINARY
    with conn._prepare_cursor(raw) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def pk_array_literal(pks: Iterable[int]) -> str:
    """A bigint[] parameter in Postgres's text form, '{1,2,3}': psycopg's list dumper inspects every element
    (~1 ms of CPU for the ~500 pks of a request); these are ints, so the text is built directly."""
    return "{" + ",".join(map(str, map(int, pks))) + "}"


def _vector(data: bytes | None) -> np.ndarray | None:
    """pgvector's binary form: uint16 dimensions, uint16 unused, then big-endian float32s."""
    if data is None:
        return None
    return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def history_vectors(*, item_pks: Iterable[int]) -> dict[int, tuple[str, np.ndarray]]:
    """Current-model vectors of these items, with their shop ids (to name them in an explanation)."""
    pks = list(set(item_pks))
    if not pks:
        return {}
    rows = _binary_rows(
        "SELECT id, external_id, embedding FROM catalog_item WHERE id = ANY(%(pks)s::bigint[]) "
        "AND embedding IS NOT NULL AND embedding_model = %(model)s",
        {"pks": pks, "model": current_model_name()},
    )
    return {pk: (ext, _vector(data)) for pk, ext, data in rows}


def history_vectors_read(*, item_pks: Iterable[int]) -> Read:
    """`history_vectors` as a `Read` (text results: the vector as `vector_send`'s bytes, the same binary
    form `history_vectors` reads)."""
    pks = list(set(item_pks))
    if not pks:
        return Read(None, {}, lambda rows: {})
    return Read(
        "SELECT id, external_id, vector_send(embedding) FROM catalog_item WHERE id = ANY(%(pks)s::bigint[]) "
        "AND embedding IS NOT NULL AND embedding_model = %(model)s",
        {"pks": pk_array_literal(pks), "model": current_model_name()},
        lambda rows: {pk: (ext, _vector(bytes(data))) for pk, ext, data in rows},
    )


def external_ids_read(*, item_pks: Iterable[int]) -> Read:
    """pk -> shop id of these items (those that exist), as a `Read`."""
    return Read(
        "SELECT id, external_id FROM catalog_item WHERE id = ANY(%(pks)s::bigint[])",
        {"pks": pk_array_literal(item_pks)},
        lambda rows: dict(rows),
    )


def item_vectors(*, item_pks: Iterable[int]) -> dict[int, np.ndarray]:
    """Current-model vectors of these items (items without one are left out)."""
    return {pk: vector for pk, (_ext, vector) in history_vectors(item_pks=item_pks).items()}


# The candidates' features in one query and one row: each numeric feature comes back as one bytea, the
# candidates' binary values end to end (`int8send` and friends), which numpy reads without a Python object
# per value; the vector only for the items that will be compared (the best candidates, pinned items, and
# history items that may explain them). A card (what the answer shows) is one JSON text per candidate,
# decoded for the answer's items only. Every aggregate reads the rows in the same order: they share one scan
# and none has an ORDER BY of its own. `user_state`'s served form reads the same columns in its own query:
# {scored}, {with_vector} and {extra} are bigint[] expressions, {where} the hard filters, {score} the
# candidate's score (NULL here: the caller has the scores).
_FEATURES_ROWS = """
    SELECT i.id, i.brand, i.is_active AND i.in_stock AND (i.stock IS NULL OR i.stock > 0) AS available,
           COALESCE(i.stock, 0)::int8 AS stock, COALESCE(i.published_at, i.created_at) AS published,
           COALESCE(p.interaction_count, 0)::int8 AS interactions,
           array_to_string(i.category_path, E'\\x1f') AS category,
           json_build_array(i.external_id, i.title, i.price::text, i.image_url)::text AS card,
           CASE WHEN {with_vector} AND i.embedding_model = %(model)s THEN i.embedding END AS embedding,
           {scored} AND {where} AS candidate, {extra} AS extra, i.external_id, {score} AS score
    FROM catalog_item i LEFT JOIN recommendations_itempopularity p ON p.item_id = i.id {join}
    WHERE i.id = ANY({scored_pks}) OR i.id = ANY({extra_pks})
"""
_FEATURES_AGGREGATES = """
    string_agg(int8send(id), '') FILTER (WHERE candidate),
    string_agg(boolsend(available), '') FILTER (WHERE candidate),
    string_agg(int8send(stock), '') FILTER (WHERE candidate),
    string_agg(timestamptz_send(published), '') FILTER (WHERE candidate),
    string_agg(int8send(interactions), '') FILTER (WHERE candidate),
    string_agg(boolsend(embedding IS NOT NULL), '') FILTER (WHERE candidate),
    string_agg(vector_send(embedding), '') FILTER (WHERE candidate AND embedding IS NOT NULL),
    array_agg(category) FILTER (WHERE candidate),
    array_agg(brand) FILTER (WHERE candidate),
    array_agg(card) FILTER (WHERE candidate),
    array_agg(id) FILTER (WHERE extra AND embedding IS NOT NULL),
    array_agg(external_id) FILTER (WHERE extra AND embedding IS NOT NULL),
    string_agg(vector_send(embedding), '') FILTER (WHERE extra AND embedding IS NOT NULL),
    string_agg(float8send(score), '') FILTER (WHERE candidate)
"""
_FEATURES_SQL = (
    "WITH f AS ("
    + _FEATURES_ROWS.format(
        scored="i.id = ANY(%(scored)s::bigint[])",
        with_vector="i.id = ANY(%(with_vector)s::bigint[])",
        extra="i.id = ANY(%(extra)s::bigint[])",
        where="{where}",
        score="NULL::float8",
        join="",
        scored_pks="%(scored)s::bigint[]",
        extra_pks="%(extra)s::bigint[]",
    )
    + ") SELECT"
    + _FEATURES_AGGREGATES
    + "FROM f"
)
# timestamptz_send counts microseconds from 2000-01-01; `Candidates.published` from 1970-01-01.
_PG_EPOCH_US = 946_684_800 * 1_000_000
# array_to_string's separator for a category path (a control character no category name contains)
_PATH_SEPARATOR = "\x1f"


class Card(NamedTuple):
    """What a storefront needs to render an item."""

    external_id: str
    title: str
    price: Any
    image_url: str
    category_path: tuple[str, ...]


@dataclass
class Features:
    candidates: Candidates
    # pk -> the card's JSON text ([external_id, title, price, image_url]); `card` decodes one
    cards: dict[int, str]
    # vectors of the extra (non-candidate) items asked for, with their shop ids
    extra: dict[int, tuple[str, np.ndarray]]

    def card(self, pk: int, category_path: tuple[str, ...]) -> Card:
        external_id, title, price, image_url = json.loads(self.cards[pk])
        return Card(external_id, title, None if price is None else Decimal(price), image_url, category_path)


def items_features(
    *,
    scores: dict[int, float],
    filters: HardFilters,
    with_vector: Iterable[int] = (),
    extra_pks: Iterable[int] = (),
) -> Features:
    """Candidates with their features as columns (scored as given, in no particular order), their cards
    for hydration, and vectors for the pks in `with_vector` and `extra_pks`. The hard filters are checked
    again here, on fresh rows: a pinned promotion or a backend with its own index may offer an item that no
    longer passes them."""
    extra = set(extra_pks)
    if not scores and not extra:
        return Features(Candidates.from_rows([]), {}, {})
    where, params = filters_where(filters, require_vector=False, active_only=False)
    params.update(
        scored=pk_array_literal(scores),
        with_vector=pk_array_literal(set(with_vector) | extra),
        extra=pk_array_literal(extra),
        model=current_model_name(),
    )
    (row,) = _binary_rows(_FEATURES_SQL.format(where=where), params)
    return _features_parse(row, score_of=scores)


def _features_parse(row: Sequence[Any], *, score_of: dict[int, float] | None = None) -> Features:
    """`_FEATURES_AGGREGATES` as `Features`. The candidates' scores are looked up in `score_of` when given,
    else read from the row (the served form of `user_state` returns them with the features)."""
    (pk, available, stock, published, interactions, has_vector, vectors, paths, brands, cards,
     extra_pks_found, extra_ids, extra_vectors, score) = row  # fmt: skip
    pks = _int8s(pk)
    has = _int8s(has_vector, ">u1").astype(bool)
    matrix = _vectors(vectors)
    dense = np.zeros((len(pks), matrix.shape[1]), np.float32)
    dense[has] = matrix
    split: dict[str, tuple[str, ...]] = {}
    candidates = Candidates.build(
        pk=pks,
        score=np.fromiter((score_of[p] for p in pks.tolist()), np.float64, len(pks))
        if score_of is not None
        else np.frombuffer(score or b"", ">f8").astype(np.float64),
        available=_int8s(available, ">u1").astype(bool),
        stock=_int8s(stock),
        published=_int8s(published) + _PG_EPOCH_US,
        interactions=_int8s(interactions),
        category=objects(
            [
                split.get(p) or split.setdefault(p, tuple(p.split(_PATH_SEPARATOR)) if p else ())
                for p in paths or ()
            ]
        ),
        brand=objects(brands or []),
        vectors=dense,
        has_vector=has,
    )
    extras = dict(
        zip(extra_pks_found or (), zip(extra_ids or (), _vectors(extra_vectors), strict=True), strict=True)
    )
    return Features(candidates, dict(zip(pks.tolist(), cards or (), strict=True)), extras)


def _int8s(data: bytes | None, dtype: str = ">i8") -> np.ndarray:
    """Big-endian values end to end (`int8send`, `boolsend`, ...) as a native int64 array."""
    return np.frombuffer(data or b"", dtype=dtype).astype(np.int64)


def _vectors(data: bytes | None) -> np.ndarray:
    """pgvector's binary forms end to end (`vector_send`: uint16 dimensions, uint16 unused, big-endian
    float32s) as an (n, dim) float32 matrix."""
    if not data:
        return np.zeros((0, 0), np.float32)
    dim = int.from_bytes(data[:2], "big")
    rows = np.frombuffer(data, dtype=np.dtype([("dim", ">u2"), ("unused", ">u2"), ("v", ">f4", (dim,))]))
    return rows["v"].astype(np.float32)


def trending_scores(*, filters: HardFilters, k: int) -> dict[int, float]:
    """The `k` most popular items (time-decayed, from ItemPopularity) passing the filters, with their
    popularity scaled to [0, 1] (1 = the most popular among them)."""
    read = trending_read(filters=filters, k=k)
    with read_connection().cursor() as cur:
        cur.execute(read.sql, read.params)
        return read.parse(cur.fetchall())


def _trending_rows(rows: list[tuple]) -> dict[int, float]:
    top = rows[0][1] if rows else 1.0
    return {pk: score / top for pk, score in rows}


def trending_read(*, filters: HardFilters, k: int) -> Read:
    """`trending_scores` as a `Read`."""
    where, params = filters_where(filters, require_vector=False)
    params["k"] = k
    return Read(
        f"""
            SELECT i.id, p.score FROM recommendations_itempopularity p JOIN catalog_item i ON i.id = p.item_id
            WHERE {where} AND p.score > 0 ORDER BY p.score DESC, i.id LIMIT %(k)s
            """,
        params,
        _trending_rows,
    )


def newest_scores(*, filters: HardFilters, k: int) -> dict[int, float]:
    """The `k` newest items passing the filters, scored 1 down to 0: the answer when nothing is popular
    yet (a new shop)."""
    where, params = filters_where(filters, require_vector=False)
    params["k"] = k
    with read_connection().cursor() as cur:
        cur.execute(
            f"""
            SELECT i.id FROM catalog_item i WHERE {where}
            ORDER BY COALESCE(i.published_at, i.created_at) DESC, i.id DESC LIMIT %(k)s
            """,
            params,
        )
        pks = [row[0] for row in cur.fetchall()]
    return {pk: 1.0 - rank / max(len(pks), 1) for rank, pk in enumerate(pks)}


def weighted_mean(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray | None:
    """L2-normalised weighted mean, or None when there is nothing to average."""
    if not vectors:
        return None
    mean = np.average(np.stack(vectors), axis=0, weights=np.asarray(weights, dtype=np.float64))
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


def served_lists_of_visitor(
    *, recommendation_ids: Iterable[uuid.UUID], user_id: str, session_id: str
) -> set[uuid.UUID]:
    """Which of these lists were served to this visitor: logged under their user id or their session. An
    empty id names nobody (lists served to no one in particular have empty ids), so it never matches."""
    ids = set(recommendation_ids)
    if not ids or not (user_id or session_id):
        return set()
    if user_id and session_id:
        whose = Q(user_id=user_id) | Q(session_id=session_id)
    else:
        whose = Q(user_id=user_id) if user_id else Q(session_id=session_id)
    lists = ServedList.objects.filter(whose, recommendation_id__in=ids)
    return set(lists.values_list("recommendation_id", flat=True))


def served_list_sessions_of_user(*, user_id: str) -> set[str]:
    """The session ids under which lists were served to this user (for erasure)."""
    lists = ServedList.objects.filter(user_id=user_id).exclude(session_id="")
    return set(lists.values_list("session_id", flat=True).distinct())


def experiments_all() -> list[Experiment]:
    """Every A/B experiment, newest first, with its arms (the report's picker)."""
    return list(Experiment.objects.prefetch_related("arms").order_by("-starts_at", "-pk"))


def experiment_arm_served(*, experiment_id: int, variant: str) -> bool:
    """Whether the served-list log has lists of this experiment under this arm's name (an index probe,
    servedlist_experiment)."""
    return ServedList.objects.filter(experiment=experiment_id, variant=variant).exists()


def experiment_get(*, pk: int | None = None, name: str = "") -> Experiment | None:
    """One experiment by id or name, with its arms (control first), or None."""
    query = Experiment.objects.prefetch_related("arms__profile", "arms__model_version")
    found = query.filter(pk=pk).first() if pk is not None else query.filter(name=name).first()
    return found


# --- pre-computed item lists (recommendations/item_cache.py): the request's one read


@dataclass
class StoredItemList:
    """An item's pre-computed list as the request reads it (recommendations/item_cache.py)."""

    key: str
    model_version: str
    item_pks: list[int]
    scores: list[float]
    reasons: dict[int, dict[str, Any]]  # pk -> the source reason the worker gave it
    vector_at: datetime | None
    computed_at: datetime


@dataclass
class ItemState:
    """What a `similar` or one-item `session` request reads first, in one query: the item's shop id and
    current-model vector (what the live path reads anyway), its stored list, and whether its co-visitation
    changed since the list was computed."""

    external_id: str
    vector: np.ndarray | None
    embedded_at: datetime | None
    stored: StoredItemList | None
    covisited_since: bool


# The co-visitation kinds the ranker's sources read; a folded event appends a delta, a compaction rewrites
# the pairs, either after the list was computed makes it a miss (only when a ranker orders the list).
_COVISITED_SINCE = """
    l.id IS NOT NULL AND (
        EXISTS (SELECT 1 FROM recommendations_covisitationdelta d
                WHERE d.kind IN ('bought', 'viewed', 'shoppers') AND d.item_a = i.id
                  AND d.created_at > l.computed_at)
        OR EXISTS (SELECT 1 FROM recommendations_covisitationpair p
                   WHERE p.kind IN ('bought', 'viewed', 'shoppers') AND p.item_a = i.id
                     AND p.updated_at > l.computed_at))
"""
_STATE_SQL = """
SELECT i.external_id, CASE WHEN i.embedding_model = %(model)s THEN i.embedding END, i.embedded_at,
       l.key, l.model_version, l.item_pks, l.scores, l.reasons::text, l.reason_index, l.vector_at,
       l.computed_at, {covisited}
FROM catalog_item i
LEFT JOIN recommendations_itemcandidatelist l ON l.item_id = i.id AND l.scenario = %(scenario)s
WHERE i.id = %(pk)s
"""


def item_state(*, item_pk: int, scenario: str, covisitation: bool) -> ItemState | None:
    """The item's vector and stored list in one round trip (None: no such item). `covisitation`: whether
    the list's order depends on co-visitation (a ranker serves), so that a change to it must be seen."""
    sql = _STATE_SQL.format(covisited=_COVISITED_SINCE if covisitation else "false")
    # the primary: the list is in an UNLOGGED table, which a standby cannot read (as user_state)
    rows = _binary_rows(
        sql, {"pk": item_pk, "scenario": scenario, "model": current_model_name()}, primary=True
    )
    if not rows:
        return None
    (external_id, vector, embedded_at, key, model_version, pks, scores, distinct, index, vector_at,
     computed_at, covisited) = rows[0]  # fmt: skip
    stored = None
    if key is not None:
        distinct = json.loads(distinct)
        reasons = {pk: distinct[i] for pk, i in zip(pks, index, strict=True) if i >= 0} if index else {}
        stored = StoredItemList(key, model_version, pks, scores, reasons, vector_at, computed_at)
    return ItemState(external_id, _vector(vector), embedded_at, stored, bool(covisited))
