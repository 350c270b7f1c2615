"""OpenAPI post-processing: document the answers every API operation can give, whichever view it is.

Found by fuzzing the schema (tests/security/test_api_fuzz.py): the views documented their own 200/400/404
but not what the shared layers answer, so the schema said less than the API does:
- 401 (no or bad key) and 429 (throttled: per key, or per client address without a valid key) on every
  operation, in the error shape;
- 404 on every operation with a path parameter (an id that no route matches, e.g. with a newline), and
  400 (an id with a NUL character, refused by core/middleware.py);
- 413 (body over the cap) and 415 (not JSON) on every operation that takes a body;
- a batch endpoint's 400 is either the error shape (the body is not a batch) or the batch answer with
  every entry rejected (which also carries "error" and "detail").

It also declares the input rules that DRF's field arguments cannot (CONSTRAINTS): no NUL in any string, ids
that are not blank, prices from 0, http(s) image URLs, the value and quantity caps. Schemathesis' positive
check (ST202, "schema-valid request rejected") holds the API to them. Rules no JSON Schema can state (a
time relative to the server's clock, unknown ids, a lone surrogate) are in the descriptions.
"""

from __future__ import annotations

from django.conf import settings

from catalog.validation import MAX_ATTRIBUTES_DEPTH
from interactions.validation import MAX_QUANTITY

ERROR_REF = {"$ref": "#/components/schemas/Error"}
SHARED_ANSWERS = {
    "401": "No API key, or an invalid or revoked one.",
    "429": "Too many requests: per API key (RECSYS_API_RATE), or per client address for requests without a "
    "valid key (RECSYS_API_ANON_RATE). Retry-After says when to retry.",
}
BODY_ANSWERS = {"413": "The body is larger than the cap.", "415": "The body is not JSON."}


NO_NUL = r"^[^\x00]*$"
# The storefront refuses any control character in its URLs (storefront/middleware.py).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
NOT_BLANK_NO_CONTROL = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"  # the validators strip whitespace, then require something
FROM_1970 = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
DATE_TIME = "ISO 8601 from 1970, any offset (stored in UTC); at most 15 minutes in the future."
_CATEGORY_NAME = r"[^\x00>]*[^\x00>\s][^\x00>]*"
# component -> property -> what is declared; `None` removes a key DRF wrote ("format": "uri" allows ftp:).
_ITEM = {
    "id": {"pattern": NOT_BLANK},
    "title": {"pattern": NOT_BLANK},
    "category_path": {"items": {"type": "string", "maxLength": 200, "pattern": f"^{_CATEGORY_NAME}$"}},
    "price": {"pattern": r"^\d{1,10}(?:\.\d{1,2})?$", "description": "From 0 to 9999999999.99."},
    "currency": {"pattern": r"^([A-Za-z]{3})?$", "description": "A 3-letter ISO 4217 code."},
    "image_url": {"format": None, "pattern": r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(/[!-~]*)?$"},
    "stock": {"maximum": 2**31 - 1},
    "attributes": {
        "description": f"A JSON object: at most 16 KiB as JSON and {MAX_ATTRIBUTES_DEPTH} levels deep, no NUL "
        "and no lone UTF-16 surrogate in keys or values."
    },
    "published_at": {
        "description": "ISO 8601, any offset (stored in UTC); at most 15 minutes in the future."
    },
}
CONSTRAINTS = {
    "ItemIn": _ITEM,
    "PatchedItemPatch": {k: v for k, v in _ITEM.items() if k != "id"},
    "EventIn": {
        "event_id": {"pattern": NOT_BLANK},
        "item_id": {"pattern": NOT_BLANK},
        "timestamp": {
            "description": "ISO 8601, any offset (stored in UTC); at most 15 minutes in the future."
        },
        "value": {"pattern": r"^-?\d{1,9}(?:\.\d{1,4})?$", "description": "Between -1e9 and 1e9."},
        "quantity": {"minimum": -MAX_QUANTITY, "maximum": MAX_QUANTITY},
    },
    "ItemBatchIn": {"items": {"minItems": 1, "maxItems": settings.RECSYS_MAX_BATCH}},
    "EventBatchIn": {"events": {"minItems": 1, "maxItems": settings.RECSYS_MAX_BATCH}},
    "SessionIn": {"item_ids": {"items": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK}}},
    "CartIn": {"item_ids": {"items": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK}}},
}
QUERY_CONSTRAINTS = {
    "surface": {"pattern": r"^[A-Za-z0-9_.:-]*$"},
    "min_price": {"pattern": r"^\d{1,10}(?:\.\d{1,4})?$"},
    "max_price": {"pattern": r"^\d{1,10}(?:\.\d{1,4})?$"},
    "category": {"pattern": rf"^\s*$|^{_CATEGORY_NAME}(>{_CATEGORY_NAME}){{0,9}}$"},
    "q": {"pattern": NOT_BLANK},
}
STRINGS_SOMETHING_DESCRIBES = ("pattern", "format", "enum", "$ref")


def _declare(schema: dict, additions: dict) -> None:
    for key, value in additions.items():
        if value is None:
            schema.pop(key, None)
        else:
            schema[key] = value


def _no_nul(schema: dict) -> None:
    """Every string the API takes is refused with a NUL (PostgreSQL text cannot hold one)."""
    if schema.get("type") == "string" and not any(k in schema for k in STRINGS_SOMETHING_DESCRIBES):
        schema["pattern"] = NO_NUL
    for child in schema.get("properties", {}).values():
        _no_nul(child)
    if isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])


def _declare_input_rules(result: dict) -> None:
    schemas = result.get("components", {}).get("schemas", {})
    for component, properties in CONSTRAINTS.items():
        for name, additions in properties.items():
            if component in schemas and name in schemas[component]["properties"]:
                _declare(schemas[component]["properties"][name], additions)
    for component in CONSTRAINTS:
        if component in schemas:
            _no_nul(schemas[component])
            if component != "SessionIn":  # its body may also carry the list options
                schemas[component]["additionalProperties"] = False  # an unknown field is a 400
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter["in"] == "query" and parameter["name"] in QUERY_CONSTRAINTS:
                    _declare(schema, QUERY_CONSTRAINTS[parameter["name"]])
                if parameter["in"] == "path" and path.startswith("/api/v1/recommendations/users/"):
                    schema.setdefault("maxLength", 128)
                _no_nul(schema)


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def postprocess_shared_answers(result: dict, generator, request, public) -> dict:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    _declare_input_rules(result)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" in schemas:
        # Nested fields report nested errors ({"item_ids": {"0": ["..."]}}): any JSON per field.
        schemas["Error"]["properties"]["fields"] = {
            "type": "object",
            "additionalProperties": {},
            "description": "Reasons per field: a list of messages, or an object for nested fields.",
        }
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            answers = dict(SHARED_ANSWERS)
            if "{" in path:
                answers["404"] = "No such resource."
                answers["400"] = "The id is not valid (e.g. contains a NUL character)."
            if "requestBody" in operation:
                answers.update(BODY_ANSWERS)
            for code, description in answers.items():
                responses.setdefault(code, _error_response(description))
            bad = responses.get("400", {}).get("content", {}).get("application/json", {})
            if bad.get("schema") and bad["schema"] != ERROR_REF:
                bad["schema"] = {"anyOf": [ERROR_REF, bad["schema"]]}
    return result
