"""A small generated shop with a planted sequential pattern for the two-tower tests.

Every group g has three items A_g, B_g, C_g with unrelated (random) content vectors, so content similarity
knows nothing about the pattern. "Trainer" users buy A_g and, a day later, C_g (two items: never
evaluated, all their events train). Evaluated users buy a random noise item, then A_g, then B_x (another
group's B: the leave-one-out validation item), then C_g (the test item). Under leave-one-out their history
is [noise, A_g], and the planted answer is C_g: only a model that learned "A_g, later C_g" finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from catalog.embedding import current_model_name
from catalog.models import Item
from interactions.models import Event

GROUPS = 12
NOISE_ITEMS = 30
TRAINERS_PER_GROUP = 12
EVALUATED_PER_GROUP = 3

# A tiny, quick configuration (TrainConfig fields): the pattern is learned in well under a minute.
TINY = {
    "max_len": 8,
    "batch_size": 64,
    "max_epochs": 25,
    "patience": 25,
    "lr": 0.01,
    "hidden": 0,
    "threads": 1,
    "id_min_count": 1,
    "id_dropout": 0.1,
}


def random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=settings.EMBEDDING_DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Shop:
    a: list[Item]
    b: list[Item]
    c: list[Item]
    noise: list[Item]


def planted_shop(*, seed: int = 0) -> Shop:
    rng = np.random.default_rng(seed)
    model = current_model_name()

    def item(ext: str) -> Item:
        return Item.objects.create(
            external_id=ext,
            title=ext,
            price=10,
            embedding=random_unit(rng),
            embedding_model=model,
            embedding_dirty=False,
            published_at=timezone.now() - timedelta(days=400),
        )

    shop = Shop(
        a=[item(f"a-{g}") for g in range(GROUPS)],
        b=[item(f"b-{g}") for g in range(GROUPS)],
        c=[item(f"c-{g}") for g in range(GROUPS)],
        noise=[item(f"n-{i}") for i in range(NOISE_ITEMS)],
    )
    start = timezone.now() - timedelta(days=200)
    events: list[Event] = []

    def buy(user: str, it: Item, day: float) -> None:
        events.append(
            Event(
                event_id=f"{user}-{it.external_id}-{len(events)}",
                user_id=user,
                session_id=f"{user}-{day}",
                item=it,
                item_external_id=it.external_id,
                event_type="purchase",
                timestamp=start + timedelta(days=day),
            )
        )

    for g in range(GROUPS):
        for t in range(TRAINERS_PER_GROUP):
            day = float(rng.uniform(0, 150))
            buy(f"trainer-{g}-{t}", shop.a[g], day)
            buy(f"trainer-{g}-{t}", shop.c[g], day + 1)
        for e in range(EVALUATED_PER_GROUP):
            user, day = f"user-{g}-{e}", float(rng.uniform(0, 150))
            buy(user, shop.noise[int(rng.integers(NOISE_ITEMS))], day)
            buy(user, shop.a[g], day + 1)
            buy(user, shop.b[(g + 1) % GROUPS], day + 2)
            buy(user, shop.c[g], day + 3)
    Event.objects.bulk_create(events)
    return shop


def buy_now(user: str, item: Item, *, minutes_ago: float = 0.0) -> None:
    Event.objects.create(
        event_id=f"live-{user}-{item.external_id}-{Event.objects.count()}",
        user_id=user,
        session_id=f"live-{user}",
        item=item,
        item_external_id=item.external_id,
        event_type="purchase",
        timestamp=timezone.now() - timedelta(minutes=minutes_ago),
    )


def planted_shop_with_early_purchases() -> Shop:
    """The planted shop, each evaluated user with two more purchases 199 days back: the ranker's own
    leave-one-out split, inside a gate's or an evaluation's training events, then still has a history and a
    target for them."""
    shop = planted_shop()
    early = timezone.now() - timedelta(days=199)
    users = sorted({u for u in Event.objects.values_list("user_id", flat=True) if u.startswith("user-")})
    Event.objects.bulk_create(
        Event(
            event_id=f"early-{u}-{k}",
            user_id=u,
            session_id=f"early-{u}",
            item=shop.noise[(n * 2 + k) % len(shop.noise)],
            item_external_id=shop.noise[(n * 2 + k) % len(shop.noise)].external_id,
            event_type="purchase",
            timestamp=early + timedelta(hours=k),
        )
        for n, u in enumerate(users)
        for k in range(2)
    )
    return shop
