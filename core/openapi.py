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

The bodies an item and an event take are the payload models' own JSON schema (core/payloads.py,
through `PayloadSchema`), so they state what the validators enforce. This module also declares the rules of
the other inputs that DRF's field arguments cannot (CONSTRAINTS, QUERY_CONSTRAINTS): no NUL in any string,
ids that are not blank, the list options' patterns. Schemathesis' positive check (ST202, "schema-valid
request rejected") holds the API to them. Rules no JSON Schema can state (a time relative to the server's
clock, unknown ids, a lone surrogate) are in the descriptions.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.pydantic import PydanticExtension
from drf_spectacular.plumbing import ResolvedComponent

from core.payloads import (
    CATEGORY_QUERY_PATTERN,
    NO_NUL,
    NOT_BLANK,
    PRICE_QUERY_PATTERN,
    SURFACE_PATTERN,
)

ERROR_REF = {"$ref": "#/components/schemas/Error"}
SHARED_ANSWERS = {
    "401": "No API key, or an invalid or revoked one.",
    "429": "Too many requests: per API key (RECSYS_API_RATE), or per client address for requests without a "
    "valid key (RECSYS_API_ANON_RATE). Retry-After says when to retry.",
}
BODY_ANSWERS = {"413": "The body is larger than the cap.", "415": "The body is not JSON."}


# The storefront refuses any control character in its URLs (storefront/middleware.py).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
NOT_BLANK_NO_CONTROL = r"^ *[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
# component -> property -> what is declared, for bodies that are DRF serializers.
CONSTRAINTS = {
    "SessionIn": {"item_ids": {"items": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK}}},
    "CartIn": {"item_ids": {"items": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK}}},
}
QUERY_CONSTRAINTS = {
    "surface": {"pattern": SURFACE_PATTERN.pattern},
    "min_price": {"pattern": PRICE_QUERY_PATTERN},
    "max_price": {"pattern": PRICE_QUERY_PATTERN},
    "category": {"pattern": CATEGORY_QUERY_PATTERN},
    "q": {"pattern": NOT_BLANK},
}
STRINGS_SOMETHING_DESCRIBES = ("pattern", "format", "enum", "$ref")


def openapi_30(schema: Any) -> Any:
    """A pydantic JSON schema (2020-12) in OpenAPI 3.0's dialect: `nullable` instead of a null type, no
    titles (pydantic's "Event Id" for event_id says nothing the name does not)."""
    if isinstance(schema, list):
        return [openapi_30(entry) for entry in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {
        # property names are not keywords: a property may be called "title"
        key: {name: openapi_30(v) for name, v in value.items()} if key == "properties" else openapi_30(value)
        for key, value in schema.items()
        if key != "title"
    }
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        schema["type"] = rest[0] if len(rest) == 1 else rest
        schema["nullable"] = True
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
        schema["nullable"] = True
    return schema


class PayloadSchema(PydanticExtension):
    """A payload model (core.payloads) as an OpenAPI component: its JSON schema in validation mode
    (what the API takes; drf-spectacular's own extension writes the serialization mode), in 3.0's dialect."""

    priority = 1

    def map_serializer(self, auto_schema, direction):
        schema = self.target.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        for name, sub_schema in schema.pop("$defs", {}).items():
            component = ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, object=name, schema=openapi_30(sub_schema)
            )
            auto_schema.registry.register_on_missing(component)
        return openapi_30(schema)


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
