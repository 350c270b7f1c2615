"""`python manage.py seed_demo [--items N] [--users N] [--seed S]`: load the synthetic demo shop."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from demo.shop import DemoShop, demo_shop_is_loaded, demo_shop_load

DEFAULT_ITEMS = 3000
DEFAULT_USERS = 1000
DEFAULT_SEED = 42


class Command(BaseCommand):
    help = (
        "Load the demo shop: a deterministic, synthetic catalog and shoppers' events over the last 90 days. "
        "Safe to re-run (items upsert by id, events are idempotent on event_id)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--items", type=int, default=DEFAULT_ITEMS, help=f"catalog size ({DEFAULT_ITEMS})"
        )
        parser.add_argument("--users", type=int, default=DEFAULT_USERS, help=f"shoppers ({DEFAULT_USERS})")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed ({DEFAULT_SEED})")
        parser.add_argument(
            "--anchor",
            help="end of the event history, ISO 8601 (default: the start of the current hour, UTC)",
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing when this exact shop is already loaded"
        )

    def handle(
        self, *args, items: int, users: int, seed: int, anchor: str | None, if_missing: bool, **options
    ):
        shop = shop_from_options(items=items, users=users, seed=seed, anchor=anchor)
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise CommandError(
                f"The database has {len(pending)} unapplied migration(s): run `python manage.py migrate` first."
            )
        if if_missing and demo_shop_is_loaded(shop=shop):
            self.stdout.write(
                f"The demo shop ({items} items, {users} shoppers, seed {seed}) is already loaded."
            )
            return
        seed_shop(shop, stdout=self.stdout)


def shop_from_options(*, items: int, users: int, seed: int, anchor: str | None = None) -> DemoShop:
    if items < 1 or items > 10_000_000:
        raise CommandError("--items must be between 1 and 10,000,000.")
    if users < 0 or users > 10_000_000:
        raise CommandError("--users must be between 0 and 10,000,000.")
    moment = None
    if anchor:
        moment = parse_datetime(anchor)
        if moment is None or moment.tzinfo is None:
            raise CommandError(f"--anchor must be an ISO 8601 date-time with a time zone, got {anchor!r}.")
    return DemoShop(items=items, users=users, seed=seed, anchor=moment)


def seed_shop(shop: DemoShop, *, stdout) -> None:
    """Load `shop` with progress bars (on stderr) and a summary line on `stdout`."""
    item_bar = tqdm(total=shop.n_items, desc="demo items", unit="item", mininterval=1)
    # Events are generated as they are written; their total is known only at the end.
    event_bar = tqdm(desc="demo events", unit="event", mininterval=1)
    try:
        result = demo_shop_load(shop=shop, on_items=item_bar.update, on_events=event_bar.update)
    finally:
        item_bar.close()
        event_bar.close()
    stdout.write(
        f"Demo shop loaded: items {result.items_created} created, {result.items_updated} updated, "
        f"{result.items_unchanged} unchanged; events {result.events_accepted} stored, "
        f"{result.events_duplicates} already there."
    )
