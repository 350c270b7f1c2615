"""Validation of untrusted item data (API and imports). `check_item` turns one raw mapping into clean
values or a dict of field -> reasons; nothing here touches the database.

Hand-written rather than a DRF serializer: the same checks run for every line of a bulk import, where
DRF's per-field machinery costs ~10x more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

CATEGORY_SEPARATOR_INPUT = ">"
MAX_CATEGORY_DEPTH = 10
MAX_CATEGORY_NAME = 200
# Category.path is varchar(1000): ten levels of 200 characters would not fit.
MAX_CATEGORY_PATH = 1000
CATEGORY_SEPARATOR = " > "
MAX_PRICE = Decimal("9999999999.99")
# Real attributes are a flat map or a level or two deeper; 32 is far beyond any catalog and far below the
# depth where Python's recursion (json.dumps, a walk) would fail with a 500.
MAX_ATTRIBUTES_DEPTH = 32

ITEM_FIELDS = {
    "id",
    "title",
    "description",
    "category_path",
    "price",
    "currency",
    "brand",
    "location",
    "condition",
    "image_url",
    "attributes",
    "in_stock",
    "stock",
    "published_at",
}
# Fields a client may change on an existing item with PATCH (`id` is the key, everything else is ours).
ITEM_PATCHABLE = ITEM_FIELDS - {"id"}
# Fields the API shows but computes itself: a PATCH that sends them is refused, not silently ignored.
ITEM_READ_ONLY = {"is_active", "has_embedding", "created_at", "updated_at"}

Errors = dict[str, list[str]]


class FieldError(ValueError):
    pass


def clean_string(value: Any, *, max_length: int, required: bool = False, allow_empty: bool = True) -> str:
    if value is None:
        if required:
            raise FieldError("This field is required.")
        return ""
    if not isinstance(value, str):
        raise FieldError(f"Must be a string, not {_json_type(value)}.")
    text = value.strip()
    check_storable_text(text)
    if required and not text:
        raise FieldError("Must not be empty.")
    if not allow_empty and not text:
        raise FieldError("Must not be empty.")
    if len(text) > max_length:
        raise FieldError(f"At most {max_length} characters (got {len(text)}).")
    return text


def check_storable_text(text: str) -> None:
    """Refuse what PostgreSQL text and jsonb cannot store, before it fails the whole batch in SQL: NUL, and
    lone UTF-16 surrogates (a JavaScript string cut through an emoji, sent as `"\\ud83d"`), on which
    psycopg's UTF-8 encoding raises. Every string the validators accept goes through here."""
    if "\x00" in text:
        raise FieldError("Must not contain NUL characters.")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise FieldError(
                f"Must not contain a lone UTF-16 surrogate (U+{ord(text[exc.start]):04X} at character "
                f"{exc.start}); was the text cut through an emoji?"
            ) from None


def printable(text: str) -> str:
    """`text` as it can be echoed in a JSON answer (an unknown field name, a rejected id): a lone surrogate
    is written as its escape, since the UTF-8 answer could not hold it."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


def clean_decimal(value: Any, *, max_value: Decimal, min_value: Decimal, places: int) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError("Must be a number, not a boolean.")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise FieldError(f"Must be a decimal number, got {str(value)[:50]!r}.") from None
    if not number.is_finite():
        raise FieldError("Must be a finite number.")
    if number < min_value or number > max_value:
        raise FieldError(f"Must be between {min_value} and {max_value}.")
    return number.quantize(Decimal(1).scaleb(-places))


def clean_int(value: Any, *, min_value: int, max_value: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError("Must be an integer, not a boolean.")
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError("Must be an integer.")
        value = int(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise FieldError(f"Must be an integer, got {str(value)[:50]!r}.") from None
    if number < min_value or number > max_value:
        raise FieldError(f"Must be between {min_value} and {max_value}.")
    return number


def clean_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no"}:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FieldError("Must be a boolean.")


def clean_datetime(value: Any, *, max_future_seconds: int | None = None) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise FieldError(f"Must be an ISO 8601 date-time, got {value[:50]!r}.")
        moment = parsed
    else:
        raise FieldError("Must be an ISO 8601 date-time string.")
    if timezone.is_naive(moment):
        # A time without an offset (e.g. a CSV export) is taken as UTC.
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        # Stored as UTC: PostgreSQL's timestamptz input refuses offsets beyond +-15:59, which Python (and
        # ISO 8601) accept up to +-23:59; the instant is the same.
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise FieldError("Is out of range once converted to UTC.") from None
    if moment.year < 1970:
        raise FieldError("Must not be before 1970.")
    if max_future_seconds is not None:
        skew = (moment - timezone.now()).total_seconds()
        if skew > max_future_seconds:
            raise FieldError(
                f"Is {int(skew)} s in the future; at most {max_future_seconds} s of clock skew is allowed."
            )
    return moment


def _json_type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def check_json_tree(value: Any, *, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` and strings PostgreSQL cannot store, keys included. A loop,
    not recursion: a recursive walk of a body nested ~400 deep overflows Python's stack (a 500)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise FieldError(f"Nested more than {max_depth} levels deep.")
            if isinstance(node, dict):
                for key in node:
                    check_storable_text(key)
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            check_storable_text(node)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def clean_category_path(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):  # CSV form: "A > B > C"
        value = [part for part in value.split(CATEGORY_SEPARATOR_INPUT)]
    if not isinstance(value, list):
        raise FieldError("Must be a list of category names from the root.")
    if len(value) > MAX_CATEGORY_DEPTH:
        raise FieldError(f"At most {MAX_CATEGORY_DEPTH} levels.")
    names = []
    for name in value:
        try:
            name = clean_string(name, max_length=MAX_CATEGORY_NAME, required=True)
            if CATEGORY_SEPARATOR_INPUT in name:
                raise FieldError(f"Must not contain '{CATEGORY_SEPARATOR_INPUT}' (it separates levels).")
            names.append(name)
        except FieldError as exc:
            raise FieldError(f"Level {len(names) + 1}: {exc}") from None
    if len(CATEGORY_SEPARATOR.join(names)) > MAX_CATEGORY_PATH:
        raise FieldError(f"At most {MAX_CATEGORY_PATH} characters when joined with '{CATEGORY_SEPARATOR}'.")
    return names


def clean_attributes(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, str):  # CSV form: a JSON string
        try:
            value = json.loads(value, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise FieldError("Must be a JSON object (in CSV: a JSON string).") from None
    if not isinstance(value, dict):
        raise FieldError(f"Must be an object, not {_json_type(value)}.")
    check_json_tree(value, max_depth=MAX_ATTRIBUTES_DEPTH)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except (ValueError, TypeError, RecursionError):
        raise FieldError("Must be plain JSON (no NaN or Infinity).") from None
    if size > settings.RECSYS_MAX_ATTRIBUTES_BYTES:
        raise FieldError(f"At most {settings.RECSYS_MAX_ATTRIBUTES_BYTES} bytes as JSON (got {size}).")
    return value


def clean_url(value: Any) -> str:
    text = clean_string(value, max_length=2000)
    if text:
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise FieldError("Must be an http(s) URL.")
    return text


def clean_currency(value: Any) -> str:
    text = clean_string(value, max_length=50).upper()
    if text and (len(text) != 3 or not text.isalpha()):
        raise FieldError("Must be a 3-letter ISO 4217 code, e.g. EUR.")
    return text


_CLEANERS = {
    "title": lambda v: clean_string(v, max_length=settings.RECSYS_MAX_TITLE, required=True),
    "description": lambda v: clean_string(v, max_length=settings.RECSYS_MAX_DESCRIPTION),
    "category_path": clean_category_path,
    "price": lambda v: clean_decimal(v, min_value=Decimal(0), max_value=MAX_PRICE, places=2),
    "currency": clean_currency,
    "brand": lambda v: clean_string(v, max_length=200),
    "location": lambda v: clean_string(v, max_length=200),
    "condition": lambda v: clean_string(v, max_length=50),
    "image_url": clean_url,
    "attributes": clean_attributes,
    "in_stock": clean_bool,
    "stock": lambda v: clean_int(v, min_value=0, max_value=2**31 - 1),
    # Like an event's timestamp: a date in the future would pin the item as a "new arrival" (freshness
    # boost) until then. A shop sends an item when it is published.
    "published_at": lambda v: (
        None
        if v in (None, "")
        else clean_datetime(v, max_future_seconds=settings.RECSYS_MAX_FUTURE_SKEW_SECONDS)
    ),
}


def check_item(raw: Any, *, partial: bool = False) -> tuple[dict[str, Any] | None, Errors]:
    """Validate one item. With `partial` (PATCH), only the given fields are checked and `id` must be absent.
    Returns (clean, {}) or (None, errors). Only fields present in `raw` appear in `clean`."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each item must be a JSON object."]}
    errors: Errors = {}
    allowed = ITEM_PATCHABLE if partial else ITEM_FIELDS
    for unknown in sorted(set(raw) - allowed):
        if unknown == "id":
            reason = "Cannot be changed: it is the item's key."
        elif unknown in ITEM_READ_ONLY:
            reason = "Read-only."
        else:
            reason = "Unknown field."
        errors[printable(unknown)] = [reason]
    clean: dict[str, Any] = {}
    if not partial:
        try:
            clean["id"] = clean_string(raw.get("id"), max_length=255, required=True)
        except FieldError as exc:
            errors["id"] = [str(exc)]
        if "title" not in raw:
            errors["title"] = ["This field is required."]
    for field, cleaner in _CLEANERS.items():
        if field not in raw:
            continue
        try:
            clean[field] = cleaner(raw[field])
        except FieldError as exc:
            errors[field] = [str(exc)]
    if errors:
        return None, errors
    return clean, {}
