"""Event spam must not poison recommendations: a user's events beyond a human rate count less, then not at
all, in their vector. The events themselves are stored (nothing a client sent is lost; analytics and
erasure still see them); only their weight in the user vector changes.

Rate = the user's events within the same minute of event time, counted in id order, so the incremental
update and the rebuild give an event the same rank (the SQL is `RANK_IN_MINUTE_SQL`). Purchases are neither
counted nor capped: one checkout of a large basket is many purchase events in the same minute (Online
Retail invoices have up to hundreds of lines), and buying is not a cheap way to spam.
- up to RECSYS_BOT_EVENTS_PER_MINUTE events a minute: full weight (people browse fast, but not that fast);
- past it: bot-like, down-weighted to RECSYS_BOT_WEIGHT;
- past RECSYS_MAX_USER_EVENTS_PER_MINUTE: weight 0, the cap.
Per-key request rates are the API throttle's job (core/authentication.py)."""

from __future__ import annotations

from django.conf import settings

# Events of the same user in the same minute of event time with a lower id: served by the
# event_user_recent index (user_id, -timestamp). `e` is the event being applied.
RANK_IN_MINUTE_SQL = """(
    SELECT count(*) FROM interactions_event o
    WHERE o.user_id = e.user_id AND o.id < e.id AND o.event_type <> 'purchase'
      AND o.timestamp >= date_trunc('minute', e.timestamp)
      AND o.timestamp < date_trunc('minute', e.timestamp) + interval '1 minute'
)"""


def event_rate_factor(*, rank_in_minute: int, event_type: str) -> float:
    """The multiplier of an event's weight, given how many of its user's (non-purchase) events came
    before it in its minute (0 for the first)."""
    if event_type == "purchase":
        return 1.0
    if rank_in_minute >= settings.RECSYS_MAX_USER_EVENTS_PER_MINUTE:
        return 0.0
    if rank_in_minute >= settings.RECSYS_BOT_EVENTS_PER_MINUTE:
        return settings.RECSYS_BOT_WEIGHT
    return 1.0
