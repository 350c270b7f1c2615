"""`python manage.py rollup_metrics --since YYYY-MM-DD [--until YYYY-MM-DD]`: roll up every day of a past
range (both ends included; `--until` defaults to today, UTC), e.g. after importing months of history. Each
day is rolled up as the beat does it (`daily_metrics_rollups`: its own transaction, replacing what was
there, a failure dead-lettered while the other days go on). Safe to re-run. Exits non-zero when a day
failed."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from analytics.rollups import daily_metrics_rollups

# A longer range is almost certainly a typo in the year (and would run for hours).
MAX_DAYS = 3660


def _day(value: str, *, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise CommandError(
            f"{option}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-09-01"
        ) from None


class Command(BaseCommand):
    help = "Roll up the daily metrics of every day from --since to --until (default today), with progress."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--until", default=None, help="last day, YYYY-MM-DD (UTC); default: today")

    def handle(self, *args, since: str, until: str | None, **options):
        today = timezone.now().date()
        first = _day(since, option="--since")
        last = _day(until, option="--until") if until is not None else today
        if first > today:
            raise CommandError(f"--since: {first} is in the future (today is {today})")
        if last < first:
            raise CommandError(f"--until: {last} is before --since {first}")
        last = min(last, today)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if len(days) > MAX_DAYS:
            raise CommandError(f"--since: {len(days)} days is more than {MAX_DAYS}; check the year")
        failed: list[str] = []
        slices = 0
        with tqdm(total=len(days), unit="day", disable=None) as bar:
            for day in days:
                written = daily_metrics_rollups(days=[day])[str(day)]
                if written is None:
                    failed.append(str(day))
                else:
                    slices += written
                bar.update(1)
        self.stdout.write(
            f"rolled up {len(days) - len(failed)} of {len(days)} days ({first} to {last}): {slices} slices"
        )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(days)} days failed and were dead-lettered (retry them from admin, Dead letters): "
                + ", ".join(failed[:20])
            )
