"""The demo shop: a deterministic, seeded generator of a plausible catalog and of shoppers' events.

Everything here is synthetic. `DemoShop` is pure (no database): the same `seed`, sizes and `anchor` give the
same items and the same events, in the same order. `demo_shop_load` writes them through the public write
paths, `catalog.services.item_upsert` and `interactions.services.events_ingest`, after the same validation
the API applies, so every hook downstream of those services sees the demo data like real data.

The shoppers have consistent tastes: each prefers two or three leaf categories, one or two brands and a price
band, and most of what they look at comes from there. Their sessions walk the funnel
view -> click -> add_to_cart -> purchase, with conversion higher on what they like.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

DEMO_ITEM_PREFIX = "demo-"
DEMO_USER_PREFIX = "demo-user-"
HISTORY_DAYS = 90

# Funnel: P(click | view), P(add_to_cart | click), P(purchase | add_to_cart), before the taste boost.
# Overall about 30% of views get a click and 3% a purchase, in line with e-commerce product-page rates.
P_CLICK = 0.25
P_CART = 0.18
P_PURCHASE = 0.35
P_FAVORITE = 0.06
# Conversion multiplier for an item in one of the shopper's preferred categories and price band.
TASTE_BOOST = 1.6
# Share of a shopper's views that come from their preferred categories (the rest: the whole catalog).
P_IN_TASTE = 0.8
P_BRAND = 0.35  # within a preferred category, share of views that go to a preferred brand
P_BAND = 0.75  # within a preferred category, share of views in the preferred price band

# One batch per call of the write services. Measured on the 2-core dev box (shared, noisy): 1,000 items per
# item_upsert ~0.35 s; 1,000 events per events_ingest ~0.08 s. Larger batches gained nothing.
ITEM_BATCH_SIZE = 1000
EVENT_BATCH_SIZE = 1000

# department -> leaf path (below the department) -> (nouns, brands, (min price, max price), attribute kinds)
_TAXONOMY: dict[str, dict[tuple[str, ...], tuple[list[str], list[str], tuple[int, int], list[str]]]] = {
    "Electronics": {
        ("Phones", "Smartphones"): (
            ["Smartphone", "5G Phone", "Phone"],
            ["Nokona", "Pixelon", "Aplex", "Samsara"],
            (120, 1300),
            ["color", "storage"],
        ),
        ("Phones", "Cases & Covers"): (
            ["Phone Case", "Folio Cover", "Bumper Case"],
            ["Shieldo", "Casely", "Aplex"],
            (8, 60),
            ["color", "material"],
        ),
        ("Computers", "Laptops"): (
            ["Laptop", "Ultrabook", "Notebook", "2-in-1 Laptop"],
            ["Lenvo", "Aplex", "Dellcor", "Asura"],
            (350, 2600),
            ["color", "storage", "screen"],
        ),
        ("Computers", "Monitors"): (
            ["Monitor", "Curved Monitor", "4K Display"],
            ["Dellcor", "Viewmax", "Asura"],
            (110, 900),
            ["screen"],
        ),
        ("Computers", "Keyboards & Mice"): (
            ["Mechanical Keyboard", "Wireless Mouse", "Keyboard", "Trackball"],
            ["Logitek", "Clickr", "Razo"],
            (15, 180),
            ["color"],
        ),
        ("Audio", "Headphones"): (
            ["Headphones", "Earbuds", "Noise-Cancelling Headphones", "Sports Earphones"],
            ["Sonora", "Bosse", "Jabra", "Aplex"],
            (20, 450),
            ["color"],
        ),
        ("Audio", "Speakers"): (
            ["Bluetooth Speaker", "Soundbar", "Smart Speaker"],
            ["Sonora", "Bosse", "Ultimo"],
            (30, 800),
            ["color"],
        ),
        ("Cameras",): (
            ["Mirrorless Camera", "Action Camera", "Compact Camera", "Camera Lens"],
            ["Kanon", "Nikko", "Fujiro", "GoFar"],
            (150, 2400),
            ["color"],
        ),
    },
    "Home & Kitchen": {
        ("Kitchen", "Cookware"): (
            ["Frying Pan", "Saucepan Set", "Dutch Oven", "Wok", "Stock Pot"],
            ["Le Cruset", "Tefalon", "Zwilly", "Ikeo"],
            (15, 320),
            ["material", "size"],
        ),
        ("Kitchen", "Small Appliances"): (
            ["Blender", "Coffee Machine", "Toaster", "Kettle", "Air Fryer", "Stand Mixer"],
            ["Brevo", "Philipso", "Smegg", "Kitchenex"],
            (20, 700),
            ["color"],
        ),
        ("Kitchen", "Knives"): (
            ["Chef's Knife", "Knife Block Set", "Santoku Knife", "Bread Knife"],
            ["Zwilly", "Global Edge", "Victorio"],
            (12, 260),
            ["material"],
        ),
        ("Furniture", "Living Room"): (
            ["Sofa", "Armchair", "Coffee Table", "Bookshelf", "TV Stand"],
            ["Ikeo", "Habitat", "Norden"],
            (60, 1800),
            ["color", "material"],
        ),
        ("Furniture", "Bedroom"): (
            ["Bed Frame", "Wardrobe", "Nightstand", "Dresser"],
            ["Ikeo", "Norden", "Habitat"],
            (50, 1500),
            ["color", "material"],
        ),
        ("Decor",): (
            ["Table Lamp", "Wall Mirror", "Scented Candle", "Throw Pillow", "Vase", "Picture Frame"],
            ["Habitat", "Ikeo", "Maison Claire"],
            (6, 150),
            ["color", "material"],
        ),
        ("Bedding",): (
            ["Duvet Cover", "Pillow", "Weighted Blanket", "Mattress Topper", "Sheet Set"],
            ["Dreamwell", "Ikeo", "Cottonia"],
            (15, 250),
            ["color", "size"],
        ),
    },
    "Fashion": {
        ("Women", "Dresses"): (
            ["Summer Dress", "Midi Dress", "Wrap Dress", "Evening Dress"],
            ["Zarina", "H&N", "Mangoa", "Levo"],
            (19, 220),
            ["color", "size", "material"],
        ),
        ("Women", "Shoes"): (
            ["Sneakers", "Ankle Boots", "Sandals", "Ballet Flats", "Heels"],
            ["Nikos", "Adidaz", "Clarke", "Zarina"],
            (25, 260),
            ["color", "size"],
        ),
        ("Men", "Shirts"): (
            ["Oxford Shirt", "Linen Shirt", "Polo Shirt", "Flannel Shirt"],
            ["Levo", "H&N", "Ralph Loren", "Uniqlow"],
            (15, 140),
            ["color", "size", "material"],
        ),
        ("Men", "Shoes"): (
            ["Running Shoes", "Leather Boots", "Loafers", "Sneakers"],
            ["Nikos", "Adidaz", "Clarke", "Timberline"],
            (35, 280),
            ["color", "size"],
        ),
        ("Men", "Jackets"): (
            ["Rain Jacket", "Down Jacket", "Denim Jacket", "Wool Coat"],
            ["Patagone", "North Peak", "Levo", "Uniqlow"],
            (40, 450),
            ["color", "size"],
        ),
        ("Accessories", "Bags"): (
            ["Backpack", "Tote Bag", "Crossbody Bag", "Weekender Bag"],
            ["Herschell", "Fjallstrom", "Zarina"],
            (20, 350),
            ["color", "material"],
        ),
        ("Accessories", "Watches"): (
            ["Chronograph Watch", "Smartwatch", "Dress Watch", "Dive Watch"],
            ["Casia", "Seika", "Aplex", "Timexa"],
            (30, 900),
            ["color", "material"],
        ),
    },
    "Sports & Outdoors": {
        ("Fitness",): (
            ["Yoga Mat", "Dumbbell Set", "Resistance Bands", "Kettlebell", "Foam Roller"],
            ["Decathlo", "Gymflex", "Reebo"],
            (10, 300),
            ["color", "weight"],
        ),
        ("Cycling",): (
            ["Road Bike", "Bike Helmet", "Cycling Jersey", "Bike Light Set", "Mountain Bike"],
            ["Trekk", "Specialo", "Decathlo", "Giantex"],
            (15, 2200),
            ["color", "size"],
        ),
        ("Camping & Hiking",): (
            ["Tent", "Sleeping Bag", "Hiking Boots", "Trekking Poles", "Camping Stove"],
            ["North Peak", "Patagone", "Vaudo", "Decathlo"],
            (15, 600),
            ["color", "weight"],
        ),
        ("Running",): (
            ["Running Shoes", "Running Shorts", "Hydration Vest", "GPS Running Watch"],
            ["Nikos", "Asix", "Garmino", "Adidaz"],
            (20, 450),
            ["color", "size"],
        ),
    },
    "Books": {
        ("Fiction",): (
            ["Novel", "Thriller", "Fantasy Saga", "Short Story Collection", "Crime Novel"],
            ["Penguin House", "Harper Lane", "Vintage Press"],
            (7, 35),
            ["format"],
        ),
        ("Non-fiction",): (
            ["Biography", "History Book", "Popular Science Book", "Essay Collection"],
            ["Penguin House", "Oxford Press", "Harper Lane"],
            (9, 45),
            ["format"],
        ),
        ("Cookbooks",): (
            ["Cookbook", "Baking Book", "Vegetarian Cookbook"],
            ["Phaidon", "Penguin House", "Ten Speed"],
            (12, 50),
            ["format"],
        ),
        ("Children's Books",): (
            ["Picture Book", "Bedtime Stories", "Activity Book"],
            ["Puffin", "Scholasto", "Walker"],
            (5, 25),
            ["format"],
        ),
    },
    "Beauty": {
        ("Skincare",): (
            ["Face Cream", "Serum", "Cleanser", "Sunscreen SPF 50", "Eye Cream"],
            ["Nivea", "La Roche", "Cerava", "The Ordinarie"],
            (6, 90),
            ["size"],
        ),
        ("Haircare",): (
            ["Shampoo", "Conditioner", "Hair Dryer", "Hair Oil", "Straightener"],
            ["Dysen", "Loreal", "Philipso", "Aveda"],
            (5, 420),
            ["size"],
        ),
        ("Fragrance",): (
            ["Eau de Parfum", "Eau de Toilette", "Body Mist"],
            ["Chanelle", "Diorr", "Hugo Bass"],
            (18, 180),
            ["size"],
        ),
    },
    "Toys & Games": {
        ("Building Sets",): (
            ["Building Set", "Construction Kit", "Marble Run"],
            ["Lego", "Playmobile", "Brio"],
            (10, 250),
            ["age"],
        ),
        ("Board Games",): (
            ["Board Game", "Card Game", "Puzzle 1000 Pieces", "Strategy Game"],
            ["Hasbra", "Ravensburg", "Asmodo"],
            (8, 90),
            ["age"],
        ),
        ("Video Games",): (
            ["Game Console", "Controller", "Adventure Game", "Racing Game"],
            ["Nintenda", "Sonix", "Xbax"],
            (20, 550),
            ["age"],
        ),
    },
    "Grocery": {
        ("Coffee & Tea",): (
            ["Coffee Beans", "Ground Coffee", "Green Tea", "Herbal Tea", "Espresso Pods"],
            ["Lavazzo", "Illo", "Twinings", "Pukka"],
            (3, 40),
            ["weight"],
        ),
        ("Snacks",): (
            ["Dark Chocolate", "Trail Mix", "Granola", "Crackers"],
            ["Lindta", "Nature Valley", "Kindo"],
            (2, 15),
            ["weight"],
        ),
        ("Pantry",): (
            ["Olive Oil", "Pasta", "Basmati Rice", "Balsamic Vinegar", "Honey"],
            ["Barilo", "De Cecca", "Filippo", "Tilda"],
            (2, 30),
            ["weight"],
        ),
    },
}

_ADJECTIVES = [
    "Classic",
    "Essential",
    "Pro",
    "Compact",
    "Premium",
    "Everyday",
    "Lightweight",
    "Deluxe",
    "Eco",
    "Signature",
    "Urban",
    "Vintage",
    "Smart",
    "Ultra",
    "Studio",
]
_ATTRIBUTE_VALUES = {
    "color": ["black", "white", "grey", "navy", "red", "green", "beige", "blue", "pink", "silver"],
    "material": ["cotton", "leather", "steel", "wood", "ceramic", "linen", "aluminium", "wool", "recycled"],
    "size": ["XS", "S", "M", "L", "XL"],
    "storage": ["64 GB", "128 GB", "256 GB", "512 GB", "1 TB"],
    "screen": ['13"', '14"', '15.6"', '24"', '27"', '32"'],
    "weight": ["250 g", "500 g", "1 kg", "2 kg", "5 kg"],
    "format": ["hardcover", "paperback", "e-book"],
    "age": ["3+", "6+", "8+", "12+", "16+"],
}
_DESCRIPTION_OPENERS = [
    "The {adj} {noun} from {brand}, made for everyday use.",
    "{brand}'s {adj} {noun}: well made, easy to love.",
    "Meet the {adj} {noun} by {brand}.",
    "The {noun} that {brand} customers keep coming back for.",
]
_DESCRIPTION_DETAILS = [
    "Designed to last, with a two-year warranty.",
    "Rated highly by customers for value and quality.",
    "Free returns within 30 days.",
    "Ships in recyclable packaging.",
    "A popular gift.",
    "Easy to clean and maintain.",
    "New for this season.",
]
_LOCATIONS = ["Berlin", "Paris", "Madrid", "Milan", "Amsterdam", "Vienna", "Warsaw", "Lisbon"]
_DEVICES = [("mobile", 0.58), ("desktop", 0.36), ("tablet", 0.06)]


@dataclass(frozen=True)
class Taste:
    """What one shopper likes: leaf categories (indices into `DemoShop.leaves`), brands and a price band
    (0 budget, 1 mid, 2 premium: tertiles of prices within each leaf)."""

    leaves: tuple[int, ...]
    brands: tuple[str, ...]
    band: int
    device: str
    sessions: int


class _WeightedPool:
    """Item indices with cumulative popularity weights, for O(log n) weighted draws."""

    def __init__(self, indices: list[int], weights: list[float]):
        self.indices = indices
        self.cumulative = list(itertools.accumulate(weights))

    def __bool__(self) -> bool:
        return bool(self.indices)

    def draw(self, rng: random.Random) -> int:
        x = rng.random() * self.cumulative[-1]
        return self.indices[min(bisect.bisect_right(self.cumulative, x), len(self.indices) - 1)]


class DemoShop:
    """A synthetic shop of `items` products and `users` shoppers. Pure and deterministic: `items_build()`
    and `events_iter()` depend only on the constructor's arguments. `anchor` is the end of the ~90-day
    history (default: the start of the current hour, UTC); no event is later than it."""

    def __init__(
        self, *, items: int = 3000, users: int = 1000, seed: int = 42, anchor: datetime | None = None
    ):
        if items < 1 or users < 0:
            raise ValueError("items must be at least 1 and users at least 0")
        self.n_items = items
        self.n_users = users
        self.seed = seed
        if anchor is None:
            anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.anchor = anchor
        self.leaves: list[tuple[str, ...]] = []
        self._leaf_specs: list[tuple[list[str], list[str], tuple[int, int], list[str]]] = []
        for department, leaves in _TAXONOMY.items():
            for path, spec in leaves.items():
                self.leaves.append((department, *path))
                self._leaf_specs.append(spec)
        self._items: list[dict[str, Any]] | None = None
        self._item_leaf: list[int] = []
        self._item_band: list[int] = []
        self._popularity: list[float] = []

    # --- catalog

    def items_build(self) -> list[dict[str, Any]]:
        """The catalog, as API-shaped item dicts (DESIGN.md §4 ITEM), in id order. Cached."""
        if self._items is not None:
            return self._items
        rng = random.Random(f"{self.seed}:items")
        # Leaves get uneven shares of the catalog, as in a real shop.
        leaf_weights = [rng.uniform(0.5, 2.0) for _ in self.leaves]
        items: list[dict[str, Any]] = []
        for index in range(self.n_items):
            leaf = rng.choices(range(len(self.leaves)), weights=leaf_weights)[0]
            nouns, brands, (low, high), attribute_kinds = self._leaf_specs[leaf]
            noun, brand, adj = rng.choice(nouns), rng.choice(brands), rng.choice(_ADJECTIVES)
            # Log-uniform prices: many cheap items, a few expensive ones; shop-style .99 endings.
            price = Decimal(int(low * (high / low) ** rng.random())) + Decimal("0.99")
            attributes = {kind: rng.choice(_ATTRIBUTE_VALUES[kind]) for kind in attribute_kinds}
            title = f"{brand} {adj} {noun}"
            if "color" in attributes:
                title += f", {attributes['color'].capitalize()}"
            if "storage" in attributes:
                title += f", {attributes['storage']}"
            description = " ".join(
                [
                    rng.choice(_DESCRIPTION_OPENERS).format(adj=adj.lower(), noun=noun.lower(), brand=brand),
                    *rng.sample(_DESCRIPTION_DETAILS, 2),
                ]
            )
            stock = 0 if rng.random() < 0.07 else int(rng.expovariate(1 / 40)) + 1
            published = (self.anchor - timedelta(days=rng.uniform(0, 540))).replace(microsecond=0)
            items.append(
                {
                    "id": f"{DEMO_ITEM_PREFIX}{index:06d}",
                    "title": title,
                    "description": description,
                    "category_path": list(self.leaves[leaf]),
                    "price": str(price),
                    "currency": "EUR",
                    "brand": brand,
                    "location": rng.choice(_LOCATIONS),
                    "condition": "new" if rng.random() < 0.95 else "refurbished",
                    "attributes": attributes,
                    "stock": stock,
                    "published_at": published.isoformat(),
                }
            )
            self._item_leaf.append(leaf)
            # Zipf-like popularity: a few hits, a long tail.
            self._popularity.append(1.0 / (1 + rng.paretovariate(1.2)) + rng.random() ** 8 * 4)
        self._items = items
        self._assign_price_bands()
        return items

    def _assign_price_bands(self) -> None:
        items = self.items_build()  # cached: called once the catalog is built
        by_leaf: dict[int, list[int]] = {}
        for index, leaf in enumerate(self._item_leaf):
            by_leaf.setdefault(leaf, []).append(index)
        self._item_band = [0] * len(self._item_leaf)
        for indices in by_leaf.values():
            ranked = sorted(indices, key=lambda i: (Decimal(items[i]["price"]), i))
            for rank, i in enumerate(ranked):
                self._item_band[i] = min(2, rank * 3 // len(ranked))

    def item_leaf(self, item_id: str) -> tuple[str, ...]:
        """The leaf category path of a demo item id."""
        self.items_build()
        return self.leaves[self._item_leaf[int(item_id.removeprefix(DEMO_ITEM_PREFIX))]]

    # --- shoppers

    def user_id(self, index: int) -> str:
        return f"{DEMO_USER_PREFIX}{index:05d}"

    def tastes_build(self) -> list[Taste]:
        """Each shopper's taste, by user index. Only leaves that have items are preferred."""
        self.items_build()
        rng = random.Random(f"{self.seed}:tastes")
        stocked = sorted(set(self._item_leaf))
        tastes = []
        for _ in range(self.n_users):
            leaves = tuple(rng.sample(stocked, min(len(stocked), rng.choice((2, 2, 3)))))
            brands_here = sorted({b for leaf in leaves for b in self._leaf_specs[leaf][1]})
            brands = tuple(rng.sample(brands_here, min(len(brands_here), rng.choice((1, 2)))))
            device = rng.choices([d for d, _ in _DEVICES], weights=[w for _, w in _DEVICES])[0]
            # Activity is heavy-tailed: most shoppers come a few times, a few come very often.
            sessions = max(1, min(60, int(rng.lognormvariate(1.5, 0.8))))
            tastes.append(
                Taste(leaves=leaves, brands=brands, band=rng.randrange(3), device=device, sessions=sessions)
            )
        return tastes

    def _pools(self) -> tuple[_WeightedPool, dict, dict]:
        """Weighted draw pools: the whole catalog; per (leaf, band); per (leaf, brand)."""
        everything = _WeightedPool(list(range(self.n_items)), self._popularity)
        by_band: dict[tuple[int, int], list[int]] = {}
        by_brand: dict[tuple[int, str], list[int]] = {}
        for i, item in enumerate(self.items_build()):
            by_band.setdefault((self._item_leaf[i], self._item_band[i]), []).append(i)
            by_brand.setdefault((self._item_leaf[i], item["brand"]), []).append(i)

        def pools(groups: dict) -> dict:
            return {key: _WeightedPool(ix, [self._popularity[i] for i in ix]) for key, ix in groups.items()}

        return everything, pools(by_band), pools(by_brand)

    def _pick(self, rng: random.Random, taste: Taste, everything, by_band, by_brand) -> int:
        if rng.random() >= P_IN_TASTE:
            return everything.draw(rng)
        leaf = rng.choice(taste.leaves)
        if rng.random() < P_BRAND:
            pools = [by_brand[(leaf, b)] for b in taste.brands if (leaf, b) in by_brand]
            if pools:
                return rng.choice(pools).draw(rng)
        band = taste.band if rng.random() < P_BAND else rng.randrange(3)
        for candidate in (band, taste.band, 0, 1, 2):
            if (leaf, candidate) in by_band:
                return by_band[(leaf, candidate)].draw(rng)
        return everything.draw(rng)  # unreachable: preferred leaves always have items

    def events_iter(self) -> Iterator[dict[str, Any]]:
        """Every shopper's events, API-shaped (DESIGN.md §4 EVENT), user by user. Streams: memory does not
        grow with the number of users. Event ids are stable, so loading twice stores nothing twice."""
        self.items_build()
        pools = self._pools()
        for u, taste in enumerate(self.tastes_build()):
            yield from self._user_events(u, taste, pools)

    def last_event_id(self) -> str | None:
        """The id of the last event `events_iter` yields (computed from the last shopper alone)."""
        if not self.n_users:
            return None
        self.items_build()
        events = list(self._user_events(self.n_users - 1, self.tastes_build()[-1], self._pools()))
        return events[-1]["event_id"]

    def _user_events(self, u: int, taste: Taste, pools) -> Iterator[dict[str, Any]]:
        everything, by_band, by_brand = pools
        history = timedelta(days=HISTORY_DAYS)
        rng = random.Random(f"{self.seed}:user:{u}")
        user_id = self.user_id(u)
        counter = itertools.count()
        for s in range(taste.sessions):
            # Recent days are busier than older ones (the shop is growing).
            start = self.anchor - history * (1 - rng.random() ** 0.8)
            session_id = f"demo-s-{u:05d}-{s:03d}"
            device = taste.device if rng.random() < 0.85 else rng.choice([d for d, _ in _DEVICES])
            moment = start
            for _ in range(rng.randint(2, 12)):
                index = self._pick(rng, taste, everything, by_band, by_brand)
                item = self.items_build()[index]
                liked = self._item_leaf[index] in taste.leaves and self._item_band[index] == taste.band
                boost = TASTE_BOOST if liked else 1.0
                steps = ["view"]
                if rng.random() < P_CLICK * boost:
                    steps.append("click")
                    if rng.random() < P_FAVORITE:
                        steps.append("add_to_favorites")
                    if rng.random() < min(0.9, P_CART * boost) and item["stock"] > 0:
                        steps.append("add_to_cart")
                        if rng.random() < min(0.9, P_PURCHASE * boost):
                            steps.append("purchase")
                for event_type in steps:
                    moment += timedelta(seconds=rng.randint(5, 90))
                    if moment > self.anchor:
                        moment = self.anchor
                    event = {
                        "event_id": f"demo-e-{self.seed}-{u:05d}-{next(counter):05d}",
                        "user_id": user_id,
                        "session_id": session_id,
                        "item_id": item["id"],
                        "event_type": event_type,
                        "timestamp": moment.isoformat(),
                        "device_type": device,
                    }
                    if event_type == "purchase":
                        quantity = 1 if rng.random() < 0.85 else 2
                        event["quantity"] = quantity
                        event["value"] = str(Decimal(item["price"]) * quantity)
                    yield event


@dataclass
class LoadResult:
    items_created: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    events_accepted: int = 0
    events_duplicates: int = 0


def _batches(iterable, size: int):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def demo_shop_load(
    *,
    shop: DemoShop,
    on_items: Callable[[int], None] | None = None,
    on_events: Callable[[int], None] | None = None,
) -> LoadResult:
    """Write the demo shop through the public write services, batch by batch (each batch commits on its
    own, so an interrupted load resumes where it stopped when re-run). Safe to repeat: items upsert by id,
    events are idempotent on event_id. `on_items`/`on_events` are called with each batch's size (progress)."""
    from catalog.services import item_upsert
    from core.payloads import check_event, check_item
    from interactions.services import events_ingest

    result = LoadResult()
    for batch in _batches(shop.items_build(), ITEM_BATCH_SIZE):
        clean: list[dict[str, Any]] = []
        for raw in batch:
            values, errors = check_item(raw)
            if values is None:  # a generator bug, not bad input: fail loudly
                raise ValueError(f"demo item {raw['id']} is invalid: {errors}")
            clean.append(values)
        upserted = item_upsert(items=clean)
        result.items_created += upserted.created
        result.items_updated += upserted.updated
        result.items_unchanged += upserted.unchanged
        if on_items:
            on_items(len(batch))
    for batch in _batches(shop.events_iter(), EVENT_BATCH_SIZE):
        clean = []
        for raw in batch:
            values, errors = check_event(raw)
            if values is None:
                raise ValueError(f"demo event {raw['event_id']} is invalid: {errors}")
            clean.append(values)
        ingested = events_ingest(events=clean)
        result.events_accepted += ingested.accepted
        result.events_duplicates += ingested.duplicates
        if on_events:
            on_events(len(batch))
    return result


def demo_shop_is_loaded(*, shop: DemoShop) -> bool:
    """Whether this shop's catalog and its very last event are stored (events load in order and each batch
    commits, so the last event being there means the load finished)."""
    from catalog.selectors import items_stored_count
    from interactions.selectors import event_is_stored

    items = shop.items_build()
    if items_stored_count(external_ids=[item["id"] for item in items]) < len(items):
        return False
    last_event = shop.last_event_id()
    return last_event is None or event_is_stored(event_id=last_event)
