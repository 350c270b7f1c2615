"""OpenAPI description of the storefront's same-origin endpoints (storefront/views.py), for the browser
client and for fuzzing (tests/security/test_api_fuzz.py). They are plain Django views outside DRF, so
drf-spectacular does not see them; this is written by hand from the views and kept beside them.

Authentication is the visitor's Django session (cookie), and the POST needs Django's CSRF token."""

from __future__ import annotations

from core.openapi import NO_CONTROL, NOT_BLANK_NO_CONTROL
from storefront.views import (
    BROWSER_EVENT_TYPES,
    KINDS,
    MAX_EVENTS_PER_POST,
    MAX_IMPRESSIONS_PER_POST,
    MAX_LIMIT,
)

ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {}},
    },
    "required": ["error", "detail"],
}
BATCH_ANSWER = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["accepted", "duplicates", "rejected"],
}
LIST = {
    "type": "object",
    "properties": {
        "recommendation_id": {"type": "string", "format": "uuid"},
        "scenario": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["recommendation_id", "scenario", "items"],
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


STOREFRONT_SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "recsys storefront (same-origin, session cookie)", "version": "1"},
    "paths": {
        "/storefront/recommendations/{kind}": {
            "get": {
                "operationId": "storefront_recommendations",
                "summary": "A list for this visitor: user, trending, similar or bought_together (?item=ID), cart",
                "parameters": [
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(KINDS)},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 8},
                    },
                    {"name": "surface", "in": "query", "schema": {"type": "string", "pattern": NO_CONTROL}},
                    {
                        "name": "item",
                        "in": "query",
                        "description": "similar, bought_together: a known item id (an unknown one is a 400).",
                        "schema": {"type": "string", "pattern": NO_CONTROL},
                    },
                    {
                        "name": "exclude",
                        "in": "query",
                        "description": "Comma-separated item ids to leave out.",
                        "schema": {"type": "string", "pattern": NO_CONTROL},
                    },
                ],
                "responses": {
                    "200": _json(LIST, "The list, logged under its recommendation_id."),
                    "400": _json(ERROR, "A parameter is invalid; fields names it."),
                },
            }
        },
        "/storefront/impressions": {
            "post": {
                "operationId": "storefront_impressions",
                "summary": "Positions of served lists the visitor saw; recorded on this visitor's lists only",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "impressions": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": MAX_IMPRESSIONS_PER_POST,
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "recommendation_id": {"type": "string", "format": "uuid"},
                                                "positions": {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "maxItems": MAX_LIMIT * 4,
                                                    "items": {
                                                        "type": "integer",
                                                        "minimum": 1,
                                                        "maximum": 100,
                                                    },
                                                },
                                            },
                                            "required": ["recommendation_id", "positions"],
                                        },
                                    }
                                },
                                "required": ["impressions"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "recorded": {"type": "integer"},
                                "rejected": {"type": "array", "items": {"type": "object"}},
                            },
                            "required": ["recorded", "rejected"],
                        },
                        "How many lists were updated.",
                    ),
                    "400": _json(
                        {"anyOf": [ERROR, {"type": "object"}]}, "The body, or every entry, was rejected."
                    ),
                    "403": {"description": "No CSRF token (Django's page)."},
                },
            }
        },
        "/storefront/events": {
            "post": {
                "operationId": "storefront_events",
                "summary": "Events from the browser; the visitor's ids and the timestamp are set by the server",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": MAX_EVENTS_PER_POST,
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "event_id": {
                                                    "type": "string",
                                                    "maxLength": 128,
                                                    "pattern": NOT_BLANK_NO_CONTROL,
                                                },
                                                "item_id": {
                                                    "type": "string",
                                                    "maxLength": 255,
                                                    "pattern": NOT_BLANK_NO_CONTROL,
                                                },
                                                "event_type": {
                                                    "type": "string",
                                                    "enum": sorted(BROWSER_EVENT_TYPES),
                                                },
                                                "recommendation_id": {"type": "string", "format": "uuid"},
                                                "surface": {
                                                    "type": "string",
                                                    "maxLength": 100,
                                                    "pattern": NO_CONTROL,
                                                },
                                                "position": {
                                                    "type": "integer",
                                                    "minimum": 0,
                                                    "maximum": 10000,
                                                },
                                            },
                                            "required": ["event_id", "item_id", "event_type"],
                                        },
                                    }
                                },
                                "required": ["events"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(BATCH_ANSWER, "Something was accepted or duplicated."),
                    "400": _json({"anyOf": [ERROR, BATCH_ANSWER]}, "The body, or every event, was rejected."),
                    "403": {"description": "No CSRF token (Django's page)."},
                },
            }
        },
    },
}
