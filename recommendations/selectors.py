"""Reads for serving: profiles, live promotions, a user's or session's history, candidate features and
vectors, trending. Each is one query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Q

from catalog.embedding import current_model_name
from catalog.models import Item, Promotion
from interactions.models import UserProfile
from recommendations.models import DEFAULT_PROFILE, RerankProfile
from recommendations.rerank.candidates import Scored
from recommendations.rerank.promotions import PromotionRule
from recommendations.retrieval.base import HardFilters
from recommendations.retrieval.pgvector_backend import filters_where

# How much of a user's recent history is read per request: enough for seen/bought exclusion and for
# explanations, bounded so a heavy user costs the same as a light one.
HISTORY_EVENTS = 200
# The most recent distinct items that can explain a recommendation ("because you viewed X").
EXPLAIN_ITEMS = 20
# Weight of an event type in a vector computed from history (when the user has no stored vector yet).
EVENT_WEIGHTS = {"purchase": 3.0, "add_to_cart": 2.0, "add_to_favorites": 2.0, "contact_seller": 2.0}


def profile_for_surface(*, surface: str) -> RerankProfile:
    """The surface's profile, else the `default` one, else built-in defaults (unsaved). Read on every
    request, so an admin edit applies to the next answer without a restart."""
    profiles = {
        p.surface: p
        for p in RerankProfile.objects.filter(surface__in={surface or DEFAULT_PROFILE, DEFAULT_PROFILE})
    }
    return (
        profiles.get(surface)
        or profiles.get(DEFAULT_PROFILE)
        or RerankProfile(surface=DEFAULT_PROFILE, version=0)
    )


def promotions_live(*, surface: str, now: datetime, include_inactive: bool = False) -> list[PromotionRule]:
    """Active promotions whose window contains `now` and that apply to `surface` (empty surfaces = all).
    The admin preview may include inactive (draft) ones."""
    rows = Promotion.objects.filter(starts_at__lte=now)
    if not include_inactive:
        rows = rows.filter(is_active=True)
    rows = (
        rows.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .filter(Q(surfaces=[]) | Q(surfaces__contains=[surface]))
        .order_by("pk")
        .values_list("pk", "target_type", "item_id", "category_path", "brand", "boost", "pinned_slot")
    )
    return [
        PromotionRule(
            promotion_id=pk,
            target_type=target,
            item_pk=item_pk,
            category_path=tuple(path or ()),
            brand=brand,
            boost=boost,
            pinned_slot=slot,
        )
        for pk, target, item_pk, path, brand, boost, slot in rows
    ]


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

    @property
    def empty(self) -> bool:
        return not self.recent


def history_for(*, user_id: str = "", session_id: str = "") -> History:
    """The recent events of a user (or, without a user, of a session) that are linked to an item."""
    if not user_id and not session_id:
        return History()
    column = "user_id" if user_id else "session_id"
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT item_id, event_type FROM interactions_event
            WHERE {column} = %s AND item_id IS NOT NULL
            ORDER BY timestamp DESC, id DESC LIMIT %s
            """,
            [user_id or session_id, HISTORY_EVENTS],
        )
        rows = cur.fetchall()
    history = History()
    weights: dict[int, float] = {}
    for rank, (item_pk, event_type) in enumerate(rows):
        if event_type == "purchase":
            history.bought_pks.add(item_pk)
        else:
            history.seen_pks.add(item_pk)
        # newer events count more: the weight halves every 20 events back
        weights[item_pk] = weights.get(item_pk, 0.0) + EVENT_WEIGHTS.get(event_type, 1.0) * 0.5 ** (rank / 20)
    history.recent = list(weights.items())
    return history


def user_vector(*, user_id: str) -> np.ndarray | None:
    """The user's stored vector, if it was computed with the current embedding model."""
    row = (
        UserProfile.objects.filter(external_id=user_id, embedding__isnull=False)
        .values_list("embedding", "embedding_model")
        .first()
    )
    if row is None or (row[1] and row[1] != current_model_name()):
        return None
    return np.asarray(row[0], dtype=np.float32)


def item_vectors(*, item_pks: Iterable[int]) -> dict[int, np.ndarray]:
    """Current-model vectors of these items (items without one are left out)."""
    pks = list(set(item_pks))
    if not pks:
        return {}
    rows = Item.objects.filter(
        pk__in=pks, embedding__isnull=False, embedding_model=current_model_name()
    ).values_list("pk", "embedding")
    return {pk: np.asarray(vector, dtype=np.float32) for pk, vector in rows}


def history_vectors(*, item_pks: Iterable[int]) -> dict[int, tuple[str, np.ndarray]]:
    """Like `item_vectors`, with the shop ids (to name the item in an explanation)."""
    pks = list(set(item_pks))
    if not pks:
        return {}
    rows = Item.objects.filter(
        pk__in=pks, embedding__isnull=False, embedding_model=current_model_name()
    ).values_list("pk", "external_id", "embedding")
    return {pk: (ext, np.asarray(vector, dtype=np.float32)) for pk, ext, vector in rows}


# Everything the re-ranking steps and the answer need, in one query for all candidates.
_FEATURES_SQL = """
SELECT i.id, i.external_id, i.title, i.price, i.image_url, i.category_path, i.brand,
       i.is_active AND i.in_stock AND (i.stock IS NULL OR i.stock > 0) AS available, i.stock,
       COALESCE(i.published_at, i.created_at) AS published_at, COALESCE(p.interaction_count, 0)
FROM catalog_item i LEFT JOIN recommendations_itempopularity p ON p.item_id = i.id
WHERE i.id = ANY(%s::bigint[])
"""


@dataclass(frozen=True)
class Card:
    """What a storefront needs to render an item."""

    external_id: str
    title: str
    price: Any
    image_url: str
    category_path: tuple[str, ...]


def items_features(*, scores: dict[int, float], filters: HardFilters) -> tuple[list[Scored], dict[int, Card]]:
    """Candidates with their features (scored as given), and their cards for hydration. The hard filters
    are checked again here, on fresh rows: a pinned promotion or a backend with its own index may offer an
    item that no longer passes them."""
    if not scores:
        return [], {}
    with connection.cursor() as cur:
        cur.execute(_FEATURES_SQL, [list(scores)])
        rows = cur.fetchall()
    candidates, cards = [], {}
    for pk, ext, title, price, image, path, brand, available, stock, published, count in rows:
        path = tuple(path or ())
        if not _passes(filters, pk=pk, path=path, price=price, available=available):
            continue
        candidates.append(
            Scored(
                pk=pk,
                external_id=ext,
                score=scores[pk],
                category_path=path,
                brand=brand,
                available=available,
                stock=stock,
                published_at=published,
                interaction_count=count,
            )
        )
        cards[pk] = Card(external_id=ext, title=title, price=price, image_url=image, category_path=path)
    return candidates, cards


def _passes(filters: HardFilters, *, pk: int, path: tuple[str, ...], price: Any, available: bool) -> bool:
    if pk in filters.exclude_item_pks:
        return False
    if filters.in_stock_only and not available:
        return False
    if filters.category_prefix and path[: len(filters.category_prefix)] != filters.category_prefix:
        return False
    if filters.min_price is not None and (price is None or price < filters.min_price):
        return False
    if filters.max_price is not None and (price is None or price > filters.max_price):
        return False
    return True


def trending_scores(*, filters: HardFilters, k: int) -> dict[int, float]:
    """The `k` most popular items (time-decayed, from ItemPopularity) passing the filters, with their
    popularity scaled to [0, 1] (1 = the most popular among them)."""
    where, params = filters_where(filters, require_vector=False)
    params["k"] = k
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT i.id, p.score FROM recommendations_itempopularity p JOIN catalog_item i ON i.id = p.item_id
            WHERE {where} AND p.score > 0 ORDER BY p.score DESC, i.id LIMIT %(k)s
            """,
            params,
        )
        rows = cur.fetchall()
    top = rows[0][1] if rows else 1.0
    return {pk: score / top for pk, score in rows}


def newest_scores(*, filters: HardFilters, k: int) -> dict[int, float]:
    """The `k` newest items passing the filters, scored 1 down to 0: the answer when nothing is popular
    yet (a new shop)."""
    where, params = filters_where(filters, require_vector=False)
    params["k"] = k
    with connection.cursor() as cur:
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
