"""The public payloads, each defined once: an item (`ItemIn`, `ItemPatch`), an event (`EventIn`), their
batches, and the list options every recommendation endpoint and the item list take (`ListFiltersSerializer`).

The API views, the import commands (`import_catalog`, `import_events`) and the demo data validate with
`check_item` / `check_event`; the OpenAPI schema's components are these models' JSON schema
(core/openapi.py), so the documented rules and the enforced ones cannot disagree
(tests/project/test_payloads_schema.py).

Each field is one declaration: its type and the bounds JSON Schema can state (pydantic enforces them and
writes them into the schema), and a cleaner (a before-validator) that normalises the value (strip, CSV
forms, UTC) and gives the error message the API and the import commands answer with. Rules no JSON Schema
can state (a time relative to the server's clock, the size of `attributes` as JSON, a lone surrogate) are
in the cleaners and the descriptions.

Self-contained (Django settings and DRF only): every app, and the project's own modules, may import it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError
from rest_framework import serializers

Errors = dict[str, list[str]]


class FieldError(ValueError):
    """A cleaner's refusal; its text is the reason the API and the import commands give for the field."""


# --- Rules shared by several fields -------------------------------------------------------------------

CATEGORY_SEPARATOR_INPUT = ">"
CATEGORY_SEPARATOR = " > "  # as stored in Category.path and shown
MAX_CATEGORY_DEPTH = 10
MAX_CATEGORY_NAME = 200
# Category.path is varchar(1000): ten levels of 200 characters would not fit.
MAX_CATEGORY_PATH = 1000
MAX_ITEM_ID = 255
MAX_PRICE = Decimal("9999999999.99")
MAX_STOCK = 2**31 - 1
# Real attributes are a flat map or a level or two deeper; 32 is far beyond any catalog and far below the
# depth where Python's recursion (json.dumps, a walk) would fail with a 500.
MAX_ATTRIBUTES_DEPTH = 32
MAX_EVENT_ID = 128
MAX_POSITION = 10_000
# A purchase's unit price and quantity (negative for a return). 1e9 leaves room for currencies without
# subunits (IDR, VND); the Online Retail data's largest line is 80,995 units. value x quantity is at most
# 1e14, which attribution's and the rollups' revenue columns hold (analytics/models.py, issue 12).
MAX_VALUE = Decimal("1000000000")
MAX_QUANTITY = 100_000
# The one list of event types: interactions.models.EventType declares the same values, in this order
# (tests/project/test_payloads.py), and the two-tower model indexes its type embedding by it.
EVENT_TYPES = (
    "view",
    "click",
    "add_to_favorites",
    "add_to_cart",
    "contact_seller",
    "purchase",
    "review",
)

# JSON Schema patterns of what the cleaners accept.
NO_NUL = r"^[^\x00]*$"
# Each pattern has one way to match (leading whitespace, then the first character that is not): the
# ambiguous "[^\x00]*[^\x00\s][^\x00]*" backtracks cubically in Python's re on a long non-matching string (the
# fuzzer's regex strategy spent minutes on a 2,000-character category), for the same language.
NOT_BLANK = r"^\s*[^\x00\s][^\x00]*$"  # the cleaners strip whitespace, then require something
CATEGORY_NAME = r"\s*[^\x00>\s][^\x00>]*"
DATE_TIME = "ISO 8601, any offset (stored in UTC); at most 15 minutes in the future."


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


def _json_type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def clean_string(value: Any, *, max_length: int, required: bool = False) -> str:
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
    if len(text) > max_length:
        raise FieldError(f"At most {max_length} characters (got {len(text)}).")
    return text


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


def _clean_recent(value: Any) -> datetime:
    """Like an event's timestamp, an item's publication: a date in the future would pin the item as a
    "new arrival" (freshness boost) until then."""
    return clean_datetime(value, max_future_seconds=settings.RECSYS_MAX_FUTURE_SKEW_SECONDS)


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
        value = value.split(CATEGORY_SEPARATOR_INPUT)
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


def clean_event_type(value: Any) -> str:
    if not isinstance(value, str) or value not in EVENT_TYPES:
        raise FieldError(f"Must be one of {', '.join(EVENT_TYPES)}; got {str(value)[:50]!r}.")
    return value


def clean_uuid(value: Any) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise FieldError("Must be a UUID, as given in a recommendation answer.") from None


def _required(clean: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A required field: absent and null get the same answer."""

    def check(value: Any) -> Any:
        if value is None:
            raise FieldError("This field is required.")
        return clean(value)

    return check


def _text(max_length: int, *, required: bool = False) -> tuple[Any, ...]:
    """A string field's bounds and its cleaner (strip; refuse what PostgreSQL cannot store), for
    `Annotated[str, *_text(n)]`."""
    return (
        Field(max_length=max_length, pattern=NOT_BLANK if required else NO_NUL),
        BeforeValidator(lambda v: clean_string(v, max_length=max_length, required=required)),
    )


def _settings_text(name: str, *, required: bool = False) -> tuple[Any, ...]:
    """Like `_text`, for a cap that is a setting (read when validating, so a test can change it)."""
    return (
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": getattr(settings, name),
                "pattern": NOT_BLANK if required else NO_NUL,
            }
        ),
        BeforeValidator(lambda v: clean_string(v, max_length=getattr(settings, name), required=required)),
    )


def _decimal(*, places: int, low: Decimal, high: Decimal, pattern: str, description: str) -> tuple[Any, ...]:
    """A decimal: a JSON number or a string (as CSV gives it), documented as the string form DRF renders
    (the pattern states the range and the places), for `Annotated[Decimal | None, *_decimal(...)]`."""
    return (
        WithJsonSchema({"type": ["string", "null"], "pattern": pattern, "description": description}),
        BeforeValidator(lambda v: clean_decimal(v, min_value=low, max_value=high, places=places)),
    )


# --- Item ---------------------------------------------------------------------------------------------


class _Payload(BaseModel):
    # An unknown field is a 400 (and `additionalProperties: false` in the schema). Field order in
    # Annotated matters: the constraints (Field) come before the cleaner (BeforeValidator), so pydantic
    # checks them on the cleaned value and writes them into the JSON schema.
    model_config = ConfigDict(extra="forbid")


_Title = Annotated[str, *_settings_text("RECSYS_MAX_TITLE", required=True)]
_CategoryPath = Annotated[
    list[Annotated[str, Field(max_length=MAX_CATEGORY_NAME, pattern=f"^{CATEGORY_NAME}$")]],
    Field(max_length=MAX_CATEGORY_DEPTH, description="Category names from the root (in CSV: 'A > B > C')."),
    BeforeValidator(clean_category_path),
]
_Currency = Annotated[
    str,
    Field(pattern=r"^([A-Za-z]{3})?$", description="A 3-letter ISO 4217 code."),
    BeforeValidator(clean_currency),
]
_ImageUrl = Annotated[
    str,
    # stricter than the cleaner (any http(s) URL with a host): a URL the schema allows is always accepted
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 2000,
            "pattern": r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(/[!-~]*)?$",
        }
    ),
    BeforeValidator(clean_url),
]
_Attributes = Annotated[
    dict[str, Any],
    Field(
        description=f"A JSON object (in CSV: a JSON string): at most 16 KiB as JSON and {MAX_ATTRIBUTES_DEPTH} "
        "levels deep, no NUL and no lone UTF-16 surrogate in keys or values."
    ),
    BeforeValidator(clean_attributes),
]
_Published = Annotated[
    datetime | None,
    Field(description=DATE_TIME),
    BeforeValidator(lambda v: None if v in (None, "") else _clean_recent(v)),
]


class ItemPatch(_Payload):
    """The fields a client may change on an item with PATCH; every one optional. `id` is the key and is
    never changed."""

    title: _Title = None  # type: ignore[assignment]  # optional here, but never null when sent
    description: Annotated[str, *_settings_text("RECSYS_MAX_DESCRIPTION")] = ""
    category_path: _CategoryPath = []
    price: Annotated[
        Decimal | None,
        *_decimal(
            places=2,
            low=Decimal(0),
            high=MAX_PRICE,
            pattern=r"^\d{1,10}(?:\.\d{1,2})?$",
            description=f"From 0 to {MAX_PRICE}.",
        ),
    ] = None
    currency: _Currency = ""
    brand: Annotated[str, *_text(200)] = ""
    location: Annotated[str, *_text(200)] = ""
    condition: Annotated[str, *_text(50)] = ""
    image_url: _ImageUrl = ""
    attributes: _Attributes = {}
    in_stock: Annotated[bool, BeforeValidator(clean_bool)] = True
    stock: Annotated[
        Annotated[int, Field(ge=0, le=MAX_STOCK)] | None,
        BeforeValidator(lambda v: clean_int(v, min_value=0, max_value=MAX_STOCK)),
    ] = None
    published_at: _Published = None


class ItemIn(ItemPatch):
    """An item as a shop sends it (API batch upsert, import_catalog), upserted by `id`."""

    id: Annotated[str, *_text(MAX_ITEM_ID, required=True)]
    title: _Title  # required here


# Every field a client sends, in the order of the import file's columns and the answer.
ITEM_FIELDS = ("id", *ItemPatch.model_fields)
# Fields a client may change on an existing item with PATCH (`id` is the key, everything else is ours).
ITEM_PATCHABLE = tuple(ItemPatch.model_fields)
# Fields the API shows but computes itself: a PATCH that sends them is refused, not silently ignored.
ITEM_READ_ONLY = frozenset({"is_active", "has_embedding", "created_at", "updated_at"})


def _unknown_item_field(name: str, *, partial: bool) -> str:
    if name == "id" and partial:
        return "Cannot be changed: it is the item's key."
    return "Read-only." if name in ITEM_READ_ONLY else "Unknown field."


def check_item(raw: Any, *, partial: bool = False) -> tuple[dict[str, Any] | None, Errors]:
    """Validate one item. With `partial` (PATCH), only the given fields are checked and `id` must be absent.
    Returns (clean, {}) or (None, errors). Only fields present in `raw` appear in `clean`."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each item must be a JSON object."]}
    model = ItemPatch if partial else ItemIn
    unknown = {
        printable(name): [_unknown_item_field(name, partial=partial)]
        for name in sorted(raw.keys() - model.model_fields.keys())
    }
    try:
        item = model.model_validate(_known(raw, model) if unknown else raw)
    except ValidationError as exc:
        return None, {**unknown, **_errors(exc, order=ITEM_FIELDS)}
    if unknown:
        return None, unknown
    given = item.model_fields_set
    return {name: value for name, value in item.__dict__.items() if name in given}, {}


# --- Event --------------------------------------------------------------------------------------------


class EventIn(_Payload):
    """An event (API batch, import_events, the storefront's own events); idempotent on `event_id`."""

    event_id: Annotated[
        str,
        Field(
            max_length=MAX_EVENT_ID, pattern=NOT_BLANK, description="Unique per event: the idempotency key."
        ),
        BeforeValidator(lambda v: clean_string(v, max_length=MAX_EVENT_ID, required=True)),
    ]
    user_id: Annotated[
        Annotated[str, Field(max_length=MAX_EVENT_ID, pattern=NO_NUL)] | None,
        Field(description="user_id or session_id is required."),
        BeforeValidator(lambda v: clean_string(v, max_length=MAX_EVENT_ID) or None),
    ] = None
    session_id: Annotated[str, *_text(MAX_EVENT_ID)] = ""
    item_id: Annotated[str, *_text(MAX_ITEM_ID, required=True)]
    event_type: Annotated[
        str, WithJsonSchema({"enum": list(EVENT_TYPES)}), BeforeValidator(_required(clean_event_type))
    ]
    timestamp: Annotated[datetime, Field(description=DATE_TIME), BeforeValidator(_required(_clean_recent))]
    device_type: Annotated[str, *_text(50)] = ""
    recommendation_id: Annotated[
        uuid.UUID | None,
        Field(description="As given in a recommendation answer."),
        BeforeValidator(clean_uuid),
    ] = None
    surface: Annotated[str, *_text(100)] = ""
    position: Annotated[
        Annotated[int, Field(ge=0, le=MAX_POSITION)] | None,
        BeforeValidator(lambda v: clean_int(v, min_value=0, max_value=MAX_POSITION)),
    ] = None
    value: Annotated[
        Decimal | None,
        *_decimal(
            places=4,
            low=-MAX_VALUE,
            high=MAX_VALUE,
            pattern=r"^-?\d{1,9}(?:\.\d{1,4})?$",
            description="A purchase's unit price (revenue = value x quantity; negative for a refund), or a "
            f"rating. Between -{MAX_VALUE} and {MAX_VALUE}.",
        ),
    ] = None
    quantity: Annotated[
        Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)] | None,
        Field(description="Units bought (negative for a return)."),
        BeforeValidator(lambda v: clean_int(v, min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY)),
    ] = None

    @model_validator(mode="after")
    def _someone(self) -> EventIn:
        if not self.user_id and not self.session_id:
            raise PydanticCustomError("someone", "Either user_id or session_id is required.")
        return self


# In the column order of the bulk insert (interactions.services.events_ingest).
EVENT_KEYS = tuple(EventIn.model_fields)
EVENT_FIELDS = frozenset(EVENT_KEYS)


def check_event(raw: Any) -> tuple[dict[str, Any] | None, Errors]:
    """Validate one event. Returns (clean, {}) or (None, {field: [reason, ...]}); `clean` has every field
    of EVENT_KEYS."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    unknown = {printable(name): ["Unknown field."] for name in sorted(raw.keys() - EVENT_FIELDS)}
    try:
        event = EventIn.model_validate(_known(raw, EventIn) if unknown else raw)
    except ValidationError as exc:
        return None, {**unknown, **_errors(exc, order=EVENT_KEYS)}
    if unknown:
        return None, unknown
    return dict(event.__dict__), {}


# --- Batches ------------------------------------------------------------------------------------------


class ItemBatchIn(_Payload):
    items: list[ItemIn] = Field(
        min_length=1, max_length=settings.RECSYS_MAX_BATCH, description="1 to 1,000 items."
    )


class EventBatchIn(_Payload):
    events: list[EventIn] = Field(
        min_length=1, max_length=settings.RECSYS_MAX_BATCH, description="1 to 1,000 events."
    )


def _known(raw: dict, model: type[BaseModel]) -> dict:
    """`raw` without its unknown fields. They are reported before pydantic sees them: it cannot read a
    key that is not valid Unicode (a lone surrogate), and would answer for the whole object."""
    return {name: value for name, value in raw.items() if name in model.model_fields}


def _errors(exc: ValidationError, *, order: tuple[str, ...]) -> Errors:
    """pydantic's errors as {field: [reason]}, the fields in their declared order, each with its cleaner's
    message."""
    errors: Errors = {}
    for error in exc.errors(include_url=False, include_input=False):
        kind, loc = error["type"], error["loc"]
        if kind == "someone":  # the model's rule: named after the first of the two fields
            field = "user_id"
        else:
            field = str(loc[0]) if loc else "non_field_errors"
        if kind == "missing":
            reason = "This field is required."
        elif kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), FieldError):
            reason = str(error["ctx"]["error"])
        else:  # a bound pydantic checks after the cleaner (cannot fail unless the two disagree)
            reason = error["msg"]
        errors.setdefault(field, []).append(reason)
    rank = {name: index for index, name in enumerate(order)}
    return dict(sorted(errors.items(), key=lambda entry: rank.get(entry[0], len(rank))))


# --- The error shape ----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every 4xx (core/errors.py): {"error": code, "detail": text, "fields": {field: [reasons]}}."""

    error = serializers.CharField()
    detail = serializers.CharField()
    # a declared field named like a Serializer attribute: DRF's metaclass moves declared fields out of the
    # class, so the attribute is untouched at run time; the stubs cannot see that
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# --- List options -------------------------------------------------------------------------------------

DEFAULT_LIMIT = 10
MAX_LIMIT = 100  # larger limits are capped, not refused
MAX_EXCLUDE = 500
MAX_FILTER_PRICE = 10**10


@extend_schema_field(OpenApiTypes.STR)
class IdListField(serializers.Field):
    """Item ids as a comma-separated string (query string) or a list of strings (JSON body)."""

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            ids = [part.strip() for part in data.split(",")]
        elif isinstance(data, list) and all(isinstance(i, str) for i in data):
            ids = [i.strip() for i in data]
        else:
            raise serializers.ValidationError("Must be comma-separated item ids, or a list of id strings.")
        ids = [storable(i) for i in ids if i]
        if len(ids) > MAX_EXCLUDE:
            raise serializers.ValidationError(f"At most {MAX_EXCLUDE} ids.")
        return ids

    def to_representation(self, value: Any) -> Any:
        return value


def storable(value: str) -> str:
    """`value`, or a 400 when PostgreSQL text cannot hold it (NUL, a lone surrogate): a 500 otherwise."""
    try:
        check_storable_text(value)
    except FieldError as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class ListFiltersSerializer(serializers.Serializer):
    """The list options of every recommendation endpoint and of the item list (query string; the session
    and cart endpoints also accept them in their body): how many, and which items may appear."""

    limit = serializers.IntegerField(
        required=False,
        default=DEFAULT_LIMIT,
        min_value=1,
        help_text=f"Default {DEFAULT_LIMIT}; values above {MAX_LIMIT} are capped.",
    )
    exclude = IdListField(required=False, help_text="Comma-separated item ids (or a list in a body).")
    category = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text=f"A category path prefix, names joined by '{CATEGORY_SEPARATOR_INPUT}'.",
    )
    min_price = serializers.DecimalField(
        required=False, max_digits=16, decimal_places=4, min_value=0, max_value=MAX_FILTER_PRICE
    )
    max_price = serializers.DecimalField(
        required=False, max_digits=16, decimal_places=4, min_value=0, max_value=MAX_FILTER_PRICE
    )

    def validate_limit(self, value: int) -> int:
        return min(value, MAX_LIMIT)

    def validate_category(self, value: str) -> tuple[str, ...]:
        parts = [storable(part.strip()) for part in value.split(CATEGORY_SEPARATOR_INPUT)]
        if value.strip() and not all(parts):
            raise serializers.ValidationError("Empty category name in the path.")
        if len(parts) > MAX_CATEGORY_DEPTH:
            raise serializers.ValidationError(f"At most {MAX_CATEGORY_DEPTH} levels.")
        return tuple(p for p in parts if p)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_price": ["Must not be greater than max_price."]})
        return attrs


# What the query-string pattern of `category` says the serializer accepts (OpenAPI; fuzzing holds the API to
# it): empty, or one to ten names joined by '>'.
CATEGORY_QUERY_PATTERN = rf"^\s*$|^{CATEGORY_NAME}(>{CATEGORY_NAME}){{0,9}}$"
PRICE_QUERY_PATTERN = r"^\d{1,10}(?:\.\d{1,4})?$"
SURFACE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]*$")
