"""Fuzzing the API with schemathesis from the project's own OpenAPI schema (/api/schema/), in process
through the WSGI app and against the real database: every operation, with a valid key and without one.

Checks: no 5xx, status codes, content types and bodies as the schema documents them, schema-valid input
accepted (ST202; but for the rules no JSON Schema can state, INEXPRESSIBLE), and every 4xx in the one error
shape ({"error", "detail", "fields"?}). The storefront's same-origin endpoints are fuzzed from their own
schema (storefront/openapi.py) with a visitor's session cookie and CSRF token. Examples per operation: RECSYS_FUZZ_EXAMPLES (CI: 20;
the figure in docs/reliability.md was run with 100). The number of cases tried is printed at the end of the session."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from werkzeug.test import Client

from recsys_project.wsgi import application
from storefront.openapi import STOREFRONT_SCHEMA

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("RECSYS_FUZZ_EXAMPLES", "20"))
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
storefront_schema = schemathesis.openapi.from_dict(STOREFRONT_SCHEMA)
storefront_schema.app = application
CASES: Counter = Counter()
# Rejections of schema-valid input that the schema cannot express: relative to the server's clock or to
# the stored data, or across fields. A 400 whose every reason is one of these is not a schema mismatch.
# "before 1970" is declared (a pattern beside format: date-time) but schemathesis' date-time generator
# does not apply the pattern.
INEXPRESSIBLE = re.compile(
    r"in the future|Must not be before 1970|Unknown item id|Either user_id or session_id is required|Must not be greater than "
    r"max_price|At most \d+ characters when joined|At most \d+ bytes as JSON|Nested more than"
    # the storefront's reason for a control character (declared) or a lone surrogate (not expressible)
    r"|Must not contain control characters or lone surrogates"
)


# `attributes` is a free-form object: the schema cannot say "no NUL or lone surrogate in any nested key or
# value" (its description says it).
INEXPRESSIBLE_IN = {"attributes": re.compile(r"Must not contain (NUL|a lone UTF-16 surrogate)")}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for child in value.values() if isinstance(value, dict) else value:
            yield from _strings(child)


def _reasons(body: dict):
    """(field, reason) for every reason of a 400: the body's `fields`, or each rejected entry's `errors`."""
    for errors in [body["fields"]] if body.get("fields") else [r["errors"] for r in body.get("rejected", [])]:
        for field, value in errors.items():
            for reason in _strings(value):
                yield field, reason


def _inexpressible(field: str, reason: str) -> bool:
    return bool(INEXPRESSIBLE.search(reason)) or bool(
        field in INEXPRESSIBLE_IN and INEXPRESSIBLE_IN[field].search(reason)
    )


def positive_data_accepted(ctx, response, case):
    """Schemathesis' positive_data_acceptance (ST202), but for the rejections in INEXPRESSIBLE."""
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])[0]
    if response.status_code == 400 and content_type.startswith("application/json"):
        body = response.json()
        reasons = list(_reasons(body))
        if reasons and all(_inexpressible(field, reason) for field, reason in reasons):
            return None
    return checks.positive_data_acceptance(ctx, response, case)


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    positive_data_accepted,
]


def assert_error_shape(response) -> None:
    if 400 <= response.status_code < 500:
        body = response.json()
        # batch endpoints add their counts to a 400 where every entry was rejected
        assert {"error", "detail"} <= set(body), body
        assert isinstance(body["error"], str) and isinstance(body["detail"], str)
        if "fields" in body:
            assert isinstance(body["fields"], dict)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes "old" database connections around each request, which would close the
    test's transaction: disconnect that, as Django's test client does."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    print(f"\nschemathesis cases tried: {sum(CASES.values())}")
    for operation, count in sorted(CASES.items()):
        print(f"  {count:5d}  {operation}")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_documented_answers_with_a_valid_key(case, api_key):
    CASES[f"with key {case.operation.label}"] += 1
    response = case.call_and_validate(headers={"Authorization": f"Api-Key {api_key}"}, checks=CHECKS)
    assert_error_shape(response)


@schema.parametrize()
@settings(max_examples=max(5, EXAMPLES // 5), deadline=None, suppress_health_check=list(HealthCheck))
def test_without_a_key_every_operation_answers_401_in_the_error_shape(case):
    CASES[f"without key {case.operation.label}"] += 1
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call()
    path = case.formatted_path.upper()
    resolves = "\n" not in path and "%0A" not in path  # no route matches: 404 comes before auth
    # Before authentication: no route (404) and a NUL in the URL (400, core/middleware.py).
    nul_in_url = response.status_code == 400 and "Null characters" in response.json()["detail"]
    assert response.status_code == (401 if resolves else 404) or nul_in_url, (
        case.method,
        case.formatted_path,
    )
    assert_error_shape(response)


@pytest.fixture
def visitor() -> dict:
    """A storefront visitor: the session and CSRF cookies a page view gives (through the same WSGI app; the
    Django test client would reconnect the signals that close the test's connection)."""
    browser = Client(application)
    browser.get("/")
    return {name: browser.get_cookie(name).value for name in ("sessionid", "csrftoken")}


@storefront_schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_storefront_endpoints_answer_no_5xx_and_as_documented(case, visitor):
    CASES[f"storefront {case.operation.label}"] += 1
    response = case.call_and_validate(
        cookies=visitor, headers={"X-CSRFToken": visitor["csrftoken"]}, checks=CHECKS
    )
    assert response.status_code != 403, "the visitor's CSRF token was refused"
