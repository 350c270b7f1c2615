"""`python manage.py demo_warmup [--items N] [--users N] [--seed S] [--days 14]`: bring a freshly loaded
demo shop to life before anyone opens it.

In order: embed the catalog in-process (every core: nothing else runs yet), rebuild the co-visitation
tables, compute trending, replay `--days` days of simulated shoppers through the
real serving path (`demo.traffic`), compute trending again (with that traffic), roll up the
daily metrics of those days (`rollup_metrics --since`) and save an offline evaluation run. `manage.py demo`
runs it once after loading the shop.

The shoppers' stored vectors are left to the worker (the events queued their updates; `items_embed` queues
the ones that waited for item vectors): serving builds a vector from the history meanwhile, and rebuilding
them here would cost 10-25 s of the time to a working demo."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from demo.management.commands.seed_demo import (
    DEFAULT_ITEMS,
    DEFAULT_SEED,
    DEFAULT_USERS,
    shop_from_options,
)
from demo.traffic import DEFAULT_DAYS, demo_traffic_simulate
from recommendations.services import item_popularity_refresh

# The evaluation saved at load time: the baselines only (~2 s on the 3,000-item shop); the served path's
# own evaluation replays serving per user and is started from the evaluation report page instead.
EVALUATION_METHODS = ["popularity", "cooccurrence", "content", "user_vector"]


class Command(BaseCommand):
    help = (
        "Warm up the demo shop: embed, co-visitation, trending, 14 days of simulated shoppers "
        "through the serving path, daily rollups and an evaluation run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
        parser.add_argument("--users", type=int, default=DEFAULT_USERS)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"simulated days ({DEFAULT_DAYS})")

    def handle(self, *args, items: int, users: int, seed: int, days: int, **options):
        if not 1 <= days <= 90:
            raise CommandError("--days must be between 1 and 90.")
        shop = shop_from_options(items=items, users=users, seed=seed)
        quiet = {"stdout": open(os.devnull, "w")}  # noqa: SIM115  (closed below)
        try:
            self._step("embedding the catalog", self._embed, quiet)
            self._step("co-visitation", lambda: call_command("covisitation_rebuild", **quiet))
            self._step("trending", item_popularity_refresh)
            now = timezone.now()
            with tqdm(total=days, desc="simulated days", unit="day", disable=None) as bar:
                traffic = self._step(
                    f"{days} days of simulated shoppers through the serving path",
                    lambda: demo_traffic_simulate(shop=shop, days=days, now=now, on_day=bar.update),
                )
            self.stdout.write(
                f"   {traffic.visits} visits, {traffic.lists_served} lists served, {traffic.clicks} clicks, "
                f"{traffic.add_to_carts} add-to-carts, {traffic.purchases} purchases"
            )
            self._step("trending, with that traffic", item_popularity_refresh)
            since = (now - timedelta(days=days)).date().isoformat()
            self._step(
                f"daily metrics since {since}", lambda: call_command("rollup_metrics", since=since, **quiet)
            )
            self._step(
                "an offline evaluation run",
                lambda: call_command(
                    "evaluate",
                    protocol="temporal",
                    methods=EVALUATION_METHODS,
                    label="demo",
                    no_progress=True,
                    **quiet,
                ),
            )
        finally:
            quiet["stdout"].close()

    def _embed(self, quiet) -> None:
        # The demo's workers are not running yet: this process may use every core for the forward passes.
        import torch

        from catalog.embedding import get_embedder

        get_embedder()
        torch.set_num_threads(os.cpu_count() or 1)
        call_command("embed_items", **quiet)

    def _step(self, what: str, run, *args):
        self.stdout.write(f"== {what}")
        started = time.monotonic()
        try:
            value = run(*args)
        except CommandError as exc:
            # e.g. a tiny shop with nothing to evaluate: the demo still starts, and says what is missing
            self.stdout.write(f"   skipped: {exc}")
            return None
        self.stdout.write(f"   in {time.monotonic() - started:.1f} s")
        return value
