"""`rollup_metrics --since`: backfill the daily rollups of a past range, with clear errors."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.models import DailyMetric
from analytics.rollups import ALL
from tests.factories import T0, ItemFactory, served_list

pytestmark = pytest.mark.django_db


def test_backfill_rolls_up_every_day_of_the_range():
    a, b = (
        ItemFactory(category_path=[], embedding=None, published_at=None),
        ItemFactory(category_path=[], embedding=None, published_at=None),
    )
    for days, count in ((0, 2), (1, 1), (3, 4)):
        for n in range(count):
            served_list(
                [a, b], surface="home", scenario="user", created_at=T0 + timedelta(days=days, minutes=n)
            )
    out = StringIO()
    call_command(
        "rollup_metrics",
        "--since",
        str(T0.date()),
        "--until",
        str((T0 + timedelta(days=3)).date()),
        stdout=out,
    )
    totals = dict(
        DailyMetric.objects.filter(surface=ALL, scenario=ALL)
        .order_by("day")
        .values_list("day", "lists_served")
    )
    assert {(d - T0.date()).days: n for d, n in totals.items() if n} == {0: 2, 1: 1, 3: 4}
    assert "rolled up 4 of 4 days" in out.getvalue()

    call_command("rollup_metrics", "--since", str(T0.date()), "--until", str(T0.date()), stdout=StringIO())
    assert (
        DailyMetric.objects.filter(day=T0.date(), surface=ALL, scenario=ALL).get().lists_served == 2
    )  # re-run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since: 'last tuesday' is not a date; write it as YYYY-MM-DD"),
        (["--since", "2026-02-30"], "--since: '2026-02-30' is not a date"),
        (
            ["--since", "2026-03-02", "--until", "2026-03-01"],
            "--until: 2026-03-01 is before --since 2026-03-02",
        ),
        (["--since", "2999-01-01"], "--since: 2999-01-01 is in the future"),
        (["--since", "1900-01-01"], "more than 3660; check the year"),
    ],
)
def test_a_bad_range_is_a_clear_error_and_rolls_up_nothing(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("rollup_metrics", *args, stdout=StringIO())
    assert not DailyMetric.objects.exists()


def test_a_day_that_fails_is_reported_and_the_command_fails(monkeypatch):
    from analytics import rollups

    real = rollups.daily_metrics_rollup
    bad_day = T0.date() + timedelta(days=1)

    def rollup(*, day):
        if day == bad_day:
            raise RuntimeError("boom")
        return real(day=day)

    monkeypatch.setattr(rollups, "daily_metrics_rollup", rollup)
    served_list([ItemFactory(category_path=[], embedding=None, published_at=None)], created_at=T0)
    with pytest.raises(CommandError, match=f"1 of 2 days failed .*{bad_day}"):
        call_command("rollup_metrics", "--since", str(T0.date()), "--until", str(bad_day), stdout=StringIO())
    assert DailyMetric.objects.filter(day=T0.date()).exists()  # the other day still rolled up
