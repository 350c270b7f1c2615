"""Simulated shoppers of the demo shop: the past days of traffic, served by the real serving path.

`demo_traffic_simulate` replays `days` days of visits to the storefront. Each visit calls the serving
scenarios in-process, exactly as the storefront's endpoints do (home: "Recommended for you" and "Trending";
item page: similar items and "bought together"; cart: cart recommendations), so every list is logged
under its `recommendation_id`. The shopper then clicks, adds to cart and buys with probabilities that
follow their taste (`DemoShop.tastes_build`) and the position in the list; the positions they scrolled
past are recorded as impressions (`seen_positions`), and the events carry the list's `recommendation_id`, surface and position, through the same validation and ingestion as the
storefront's. Afterwards each served list is moved to the moment it was served, so attribution, the daily
rollups and the reports see weeks of history.

Deterministic for a given database state and seed (the shoppers' choices come from a seeded generator).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.payloads import check_event
from demo.shop import DemoShop, Taste
from interactions.services import events_ingest
from recommendations import services
from recommendations.served_log import served_log_timed

DEFAULT_DAYS = 14
# Visits per simulated day: every day of the reports gets clicks and purchases, and the whole replay stays
# within ~20 s: each visit serves ~3.6 lists, at ~40 ms a list on the 2 shared cores (measured: 560 visits,
# 2,029 lists in 86 s at a load average of 7).
MAX_VISITS_PER_DAY = 10
LIST_LIMIT = 8
# P(click) at position 1 for an item in one of the shopper's preferred categories, and for any other item;
# lower positions are clicked less (1/sqrt(position)), as position bias goes.
P_CLICK_LIKED = 0.16
P_CLICK_OTHER = 0.03
P_SECOND_CLICK = 0.35  # a click on the item page's lists, after a first click
P_CART = 0.35
P_PURCHASE = 0.55


@dataclass
class TrafficResult:
    visits: int = 0
    lists_served: int = 0
    events: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    since: datetime | None = None
    served_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    surfaces: dict[uuid.UUID, str] = field(default_factory=dict)


class _Visit:
    """One visit: its shopper, session and clock, and the events it produced."""

    def __init__(self, *, user_id: str, session_id: str, start: datetime, taste: Taste, shop: DemoShop):
        self.user_id, self.session_id, self.clock = user_id, session_id, start
        self.taste, self.shop = taste, shop
        self.events: list[dict[str, Any]] = []
        self.seen: dict[uuid.UUID, range] = {}  # impressions: positions seen, per served list
        self.rng = random.Random(session_id)

    def tick(self, rng: random.Random, low: int = 5, high: int = 60) -> datetime:
        self.clock += timedelta(seconds=rng.randint(low, high))
        return self.clock

    def event(
        self, rng: random.Random, event_type: str, item: dict, origin: dict | None = None, **more
    ) -> None:
        self.events.append(
            {
                "event_id": f"{self.session_id}-{len(self.events):02d}",
                "user_id": self.user_id,
                "session_id": self.session_id,
                "item_id": item["id"],
                "event_type": event_type,
                "timestamp": self.tick(rng).isoformat(),
                "device_type": self.taste.device,
                **(origin or {}),
                **more,
            }
        )

    def likes(self, item: dict) -> bool:
        leaves = [self.shop.leaves[i] for i in self.taste.leaves]
        return tuple(item["category_path"]) in leaves


def demo_traffic_simulate(
    *,
    shop: DemoShop,
    days: int = DEFAULT_DAYS,
    visits_per_day: int | None = None,
    now: datetime | None = None,
    on_day: Callable[[int], None] | None = None,
) -> TrafficResult:
    """Replay `days` days of visits (ending `now`) through the serving scenarios, ingest the visitors'
    events and move each served list to its simulated time. Returns what was served and done."""
    now = now or timezone.now()
    tastes = shop.tastes_build()
    result = TrafficResult(since=now - timedelta(days=days))
    if not tastes:
        return result
    per_day = visits_per_day or max(2, min(MAX_VISITS_PER_DAY, len(tastes) // 10))
    rng = random.Random(f"{shop.seed}:traffic")
    for day in range(days, 0, -1):
        day_start = now - timedelta(days=day)
        batch: list[dict[str, Any]] = []
        for n in range(per_day):
            u = rng.randrange(len(tastes))
            start = day_start + timedelta(seconds=rng.uniform(0, 86_400 - 3_600))
            visit = _Visit(
                user_id=shop.user_id(u),
                # unique per replay and visit (a replay's day may straddle midnight: not the date)
                session_id=f"demo-sim-{shop.seed}-{now:%Y%m%d%H}-{day:02d}-{n:03d}",
                start=start,
                taste=tastes[u],
                shop=shop,
            )
            _visit_play(visit, rng=rng, result=result)
            services.served_lists_seen_record(
                seen=visit.seen, user_id=visit.user_id, session_id=visit.session_id
            )
            batch.extend(visit.events)
            result.visits += 1
        _ingest(batch, result)
        if on_day:
            on_day(1)
    services.served_lists_backdate(served_at=result.served_at)
    return result


@served_log_timed()  # each simulated list carries its serve time, like a list the storefront serves
def _serve(visit: _Visit, result: TrafficResult, *, kind: str, surface: str, item: dict | None = None):
    answer = services.recommendations_serve(
        kind=kind,
        limit=LIST_LIMIT,
        surface=surface,
        user_id=visit.user_id,
        session_id=visit.session_id,
        item=(item["pk"], item["id"]) if item is not None else None,
        cart={item["pk"]: item["id"]} if item is not None else None,
    )
    result.served_at[answer.recommendation_id] = visit.clock
    if answer.items:
        # what the shopper scrolled past: the first half of the list at least, often all of it
        visit.seen[answer.recommendation_id] = range(
            1, visit.rng.randint((len(answer.items) + 1) // 2, len(answer.items)) + 1
        )
    result.surfaces[answer.recommendation_id] = surface
    result.lists_served += 1
    return answer


def _pick(visit: _Visit, rng: random.Random, answers: list) -> tuple[Any, int, dict] | None:
    """The item the shopper clicks in these lists (at most one), by taste and position."""
    for answer in answers:
        for position, item in enumerate(answer.items, start=1):
            p = (P_CLICK_LIKED if visit.likes(item) else P_CLICK_OTHER) / position**0.5
            if rng.random() < p:
                return answer, position, item
    return None


def _visit_play(visit: _Visit, *, rng: random.Random, result: TrafficResult) -> None:
    home = [
        _serve(visit, result, kind="user", surface="home"),
        _serve(visit, result, kind="trending", surface="trending"),
    ]
    rng.shuffle(home)  # which list the shopper looks at first
    picked = _pick(visit, rng, home)
    for _hop in range(2):
        if picked is None:
            return
        answer, position, item = picked
        origin = {
            "recommendation_id": str(answer.recommendation_id),
            "surface": result.surfaces[answer.recommendation_id],
            "position": position,
        }
        visit.event(rng, "click", item, origin)
        visit.event(rng, "view", item, origin)
        result.clicks += 1
        page = [
            _serve(visit, result, kind="similar", surface="pdp", item=item),
            _serve(visit, result, kind="bought_together", surface="bought_together", item=item),
        ]
        if rng.random() < P_CART * (1.4 if visit.likes(item) else 0.6):
            visit.event(rng, "add_to_cart", item, origin)
            result.add_to_carts += 1
            _serve(visit, result, kind="cart", surface="cart", item=item)
            if rng.random() < P_PURCHASE and item["price"] is not None:
                visit.event(rng, "purchase", item, quantity=1, value=str(Decimal(str(item["price"]))))
                result.purchases += 1
        picked = _pick(visit, rng, page) if rng.random() < P_SECOND_CLICK else None


def _ingest(raw_events: list[dict[str, Any]], result: TrafficResult) -> None:
    clean = []
    for raw in raw_events:
        values, errors = check_event(raw)
        if values is None:  # a simulator bug, not bad input: fail loudly
            raise ValueError(f"simulated event {raw['event_id']} is invalid: {errors}")
        clean.append(values)
    if clean:
        result.events += events_ingest(events=clean).accepted
