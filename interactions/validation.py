"""Validation of untrusted events (API and imports): `check_event` gives clean values or field errors."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings

from catalog.validation import (
    Errors,
    FieldError,
    clean_datetime,
    clean_decimal,
    clean_int,
    clean_string,
    printable,
)
from interactions.models import EventType

# In the column order of the bulk insert (interactions.services.events_ingest).
EVENT_KEYS = (
    "event_id",
    "user_id",
    "session_id",
    "item_id",
    "event_type",
    "timestamp",
    "device_type",
    "recommendation_id",
    "surface",
    "position",
    "value",
    "quantity",
)
EVENT_FIELDS = frozenset(EVENT_KEYS)
EVENT_TYPES = frozenset(EventType.values)
MAX_ID = 128
# A purchase's unit price and quantity (negative for a return). 1e9 leaves room for currencies without
# subunits (IDR, VND); the Online Retail data's largest line is 80,995 units. value x quantity is at most
# 1e14, which attribution's and the rollups' revenue columns hold (analytics/models.py, issue 12).
MAX_VALUE = Decimal("1000000000")
MAX_QUANTITY = 100_000


def _clean_event_type(value: Any) -> str:
    if not isinstance(value, str) or value not in EVENT_TYPES:
        raise FieldError(f"Must be one of {', '.join(EventType.values)}; got {str(value)[:50]!r}.")
    return value


def _clean_uuid(value: Any) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise FieldError("Must be a UUID, as given in a recommendation answer.") from None


_CLEANERS = {
    "event_id": lambda v: clean_string(v, max_length=MAX_ID, required=True),
    "user_id": lambda v: clean_string(v, max_length=MAX_ID) or None,
    "session_id": lambda v: clean_string(v, max_length=MAX_ID),
    "item_id": lambda v: clean_string(v, max_length=255, required=True),
    "event_type": _clean_event_type,
    "timestamp": lambda v: clean_datetime(v, max_future_seconds=settings.RECSYS_MAX_FUTURE_SKEW_SECONDS),
    "device_type": lambda v: clean_string(v, max_length=50),
    "recommendation_id": _clean_uuid,
    "surface": lambda v: clean_string(v, max_length=100),
    "position": lambda v: clean_int(v, min_value=0, max_value=10_000),
    "value": lambda v: clean_decimal(v, min_value=-MAX_VALUE, max_value=MAX_VALUE, places=4),
    "quantity": lambda v: clean_int(v, min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY),
}
REQUIRED = ("event_id", "item_id", "event_type", "timestamp")


def check_event(raw: Any) -> tuple[dict[str, Any] | None, Errors]:
    """Validate one event. Returns (clean, {}) or (None, {field: [reason, ...]})."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    errors: Errors = {}
    for unknown in sorted(set(raw) - EVENT_FIELDS):
        errors[printable(unknown)] = ["Unknown field."]
    clean: dict[str, Any] = {}
    for field, cleaner in _CLEANERS.items():
        value = raw.get(field)
        if value is None and field in REQUIRED:
            errors[field] = ["This field is required."]
            continue
        try:
            clean[field] = cleaner(value)
        except FieldError as exc:
            errors[field] = [str(exc)]
    if not errors and not clean["user_id"] and not clean["session_id"]:
        errors["user_id"] = ["Either user_id or session_id is required."]
    if errors:
        return None, errors
    return clean, {}
