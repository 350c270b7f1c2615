"""OpenAPI post-processing: document the answers every API operation can give, whichever view it is.

Found by fuzzing the schema (tests/security/test_api_fuzz.py): the views documented their own 200/400/404
but not what the shared layers answer, so the schema said less than the API does:
- 401 (no or bad key) and 429 (throttled: per key, or per client address without a valid key) on every
  operation, in the error shape;
- 404 on every operation with a path parameter (an id that no route matches, e.g. with a newline), and
  400 (an id with a NUL character, refused by recsys_project/middleware.py);
- 413 (body over the cap) and 415 (not JSON) on every operation that takes a body;
- a batch endpoint's 400 is either the error shape (the body is not a batch) or the batch answer with
  every entry rejected (which also carries "error" and "detail").
"""

from __future__ import annotations

ERROR_REF = {"$ref": "#/components/schemas/Error"}
SHARED_ANSWERS = {
    "401": "No API key, or an invalid or revoked one.",
    "429": "Too many requests: per API key (RECSYS_API_RATE), or per client address for requests without a "
    "valid key (RECSYS_API_ANON_RATE). Retry-After says when to retry.",
}
BODY_ANSWERS = {"413": "The body is larger than the cap.", "415": "The body is not JSON."}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def postprocess_shared_answers(result: dict, generator, request, public) -> dict:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
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
