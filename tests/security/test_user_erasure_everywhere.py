"""Privacy: erasing a user leaves no trace in any table that holds a user id, nor in the cache.

The tables are found by introspection (every concrete column of the project's models whose name says it
holds a user id), so a new table with a user column fails this test until its rows are both seeded here
and erased by `user_erase` (through the `user_erasure` signal)."""

from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone

from analytics.attribution import events_attribute_recent
from analytics.models import Attribution
from interactions.models import Event, UserProfile
from interactions.user_vectors import user_vectors_apply
from tests.factories import ItemFactory, topic

pytestmark = pytest.mark.django_db

PROJECT_APPS = {
    "catalog",
    "interactions",
    "recommendations",
    "analytics",
    "accelerator",
    "core",
    "storefront",
}
USER_COLUMN = re.compile(r"(^|_)(user|customer|visitor|shopper|person)(_id|_ids|_external_id)?$")
USER = "erase-me@example.com"
OTHER = "keep-me"


def user_columns() -> list[tuple[type[models.Model], str]]:
    """(model, field name) of every column of the project's models that holds a shop's user id."""
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField):
                continue
            if USER_COLUMN.search(field.name) or (model is UserProfile and field.name == "external_id"):
                found.append((model, field.name))
    return found


def seed_user(api, user: str) -> str:
    """Events (view, then a click on a served list), a vector, a served list and an attribution."""
    events = [
        {"event_id": f"{user}-v{i}", "user_id": user, "session_id": f"s-{user}", "item_id": f"sku-{i}",
         "event_type": "view", "timestamp": "2026-01-01T00:00:00Z"}
        for i in range(3)
    ]  # fmt: skip
    assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 200
    served = api.get(f"/api/v1/recommendations/users/{user}")
    assert served.status_code == 200, served.content
    rec_id = served.json()["recommendation_id"]
    click = {"event_id": f"{user}-c", "user_id": user, "session_id": f"s-{user}", "item_id": "sku-4",
             "event_type": "click", "timestamp": "2026-01-01T00:01:00Z", "recommendation_id": rec_id}  # fmt: skip
    assert api.post("/api/v1/events", {"events": [click]}, format="json").status_code == 200
    return rec_id


def test_the_introspection_finds_the_known_user_columns():
    found = {(m._meta.label, f) for m, f in user_columns()}
    assert {
        ("interactions.Event", "user_id"),
        ("interactions.UserProfile", "external_id"),
        ("recommendations.ServedList", "user_id"),
    } <= found


def test_erasure_leaves_no_row_with_the_user_id_in_any_table_nor_in_the_cache(api):
    from django.core.cache import cache

    from recommendations.candidate_cache import candidate_lists_refresh

    for i in range(6):
        ItemFactory(external_id=f"sku-{i}", embedding=topic(i % 3))
    rec_id = seed_user(api, USER)
    seed_user(api, OTHER)
    user_vectors_apply()
    candidate_lists_refresh(user_ids=[USER, OTHER])  # what the worker does once their vectors changed
    events_attribute_recent()
    cache.set(f"probe:{USER}", "x", 60)  # what a cache trace would look like, to prove the scan sees it
    assert UserProfile.objects.get(external_id=USER).embedding is not None
    assert Attribution.objects.filter(recommendation_id=rec_id).exists()
    for model, field in user_columns():
        assert model.objects.filter(**{field: USER}).exists(), (
            f"{model._meta.label}.{field} holds user ids but this test seeds no row there: extend seed_user"
        )
    cache.delete(f"probe:{USER}")

    response = api.delete(f"/api/v1/users/{USER}")

    assert response.status_code == 200
    for model, field in user_columns():
        assert not model.objects.filter(**{field: USER}).exists(), (
            f"{model._meta.label}.{field} kept the user"
        )
        assert model.objects.filter(**{field: OTHER}).exists(), (
            f"{model._meta.label}.{field} lost another user"
        )
    assert not Attribution.objects.filter(recommendation_id=rec_id).exists()
    assert not Event.objects.filter(session_id=f"s-{USER}").exists()
    redis = cache._cache.get_client(write=False)
    traces = [key for key in redis.scan_iter(count=500) if USER.encode() in key]
    for key in redis.scan_iter(count=500):
        if redis.type(key) == b"string" and USER.encode() in (redis.get(key) or b""):
            traces.append(key)
    assert traces == [], f"cache keys still naming the user in {settings.REDIS_URL}: {traces[:5]}"


# Text columns whose name says they hold a user's or a session's id, found in the database's catalog (so a
# table from any app, or one created outside the ORM, is seen too).
_ID_COLUMNS_SQL = """
SELECT c.table_name, c.column_name
FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
  AND c.data_type IN ('text', 'character varying')
  AND (c.column_name ~ '(^|_)(user|customer|visitor|shopper|person|session)(_id|_ids|_key|_external_id)?$'
       OR (c.table_name = 'interactions_userprofile' AND c.column_name = 'external_id'))
ORDER BY 1, 2
"""
_TEXT_COLUMNS_SQL = """
SELECT c.table_name, c.column_name
FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
  AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')
ORDER BY 1, 2
"""


def _rows_naming(needles: list[str]) -> list[tuple[str, str]]:
    """(table, column) of every text, JSON or array cell in the database that contains one of `needles`."""
    from django.db import connection

    found = []
    with connection.cursor() as cur:
        cur.execute(_TEXT_COLUMNS_SQL)
        for table, column in cur.fetchall():
            for needle in needles:
                cur.execute(
                    f'SELECT 1 FROM "{table}" WHERE strpos("{column}"::text, %s) > 0 LIMIT 1',  # noqa: S608
                    [needle],
                )
                if cur.fetchone():
                    found.append((table, column))
    return found


def _id_columns() -> list[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(_ID_COLUMNS_SQL)
        return cur.fetchall()


def _holds(table: str, column: str, values: list[str]) -> bool:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f'SELECT 1 FROM "{table}" WHERE "{column}" = ANY(%s) LIMIT 1', [values])  # noqa: S608
        return cur.fetchone() is not None


def _visitor_sessions(visitor: str) -> list[str]:
    from django.contrib.sessions.models import Session

    return [s.session_key for s in Session.objects.all() if s.get_decoded().get("visitor_id") == visitor]


def _storefront_visitor(api, items) -> tuple:
    """A browser on the storefront: lists of every kind, a click on its list, an add-to-cart; then the
    shop's backend reports, for the same session but no user id, a purchase and an anonymous session
    list (the visitor before they were known, as a shop may send it)."""
    import json

    from django.test import Client

    browser = Client()
    browser.get("/")
    visitor, session = browser.session["visitor_id"], browser.session.session_key
    lists = [
        browser.get(f"/storefront/recommendations/{kind}").json()["recommendation_id"]
        for kind in ("user", "trending", f"similar?item={items[0].external_id}")
    ]
    clicks = [
        {"event_id": f"c{i}", "item_id": items[i].external_id, "event_type": kind, "recommendation_id": lists[0],
         "surface": "home", "position": 1}
        for i, kind in ((1, "click"), (2, "add_to_cart"))
    ]  # fmt: skip
    answer = browser.post(
        "/storefront/events", json.dumps({"events": clicks}), content_type="application/json"
    )
    assert answer.json()["accepted"] == 2, answer.content
    purchase = {"event_id": f"p-{session}", "session_id": session, "item_id": items[1].external_id,
                "event_type": "purchase", "timestamp": timezone.now().isoformat(), "value": "5"}  # fmt: skip
    assert api.post("/api/v1/events", {"events": [purchase]}, format="json").status_code == 200
    anonymous_list = api.post(
        "/api/v1/recommendations/session",
        {"session_id": session, "item_ids": [items[1].external_id]},
        format="json",
    )
    assert anonymous_list.status_code == 200, anonymous_list.content
    return browser, visitor, session, [*lists, anonymous_list.json()["recommendation_id"]]


def _capture_every_log_handler(stack) -> io.StringIO:
    """Points every configured logging handler's stream at one buffer: what the process would print
    (pytest's own capture handlers aside)."""
    import logging

    buffer = io.StringIO()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for handler in {h for logger in loggers for h in logger.handlers}:
        if type(handler).__module__.startswith("_pytest"):
            continue
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            stack.callback(handler.setStream, handler.setStream(buffer))
    return buffer


def test_erasing_a_storefront_visitor_leaves_no_trace_in_any_table_session_cache_or_log(api):
    import contextlib
    import logging

    from django.core.cache import cache
    from django.test import Client

    from recommendations.candidate_cache import candidate_lists_refresh

    items = [ItemFactory(external_id=f"sku-{i}", embedding=topic(i % 3)) for i in range(6)]
    browser, visitor, session, lists = _storefront_visitor(api, items)
    keeper, kept_visitor, kept_session, kept_lists = _storefront_visitor(api, items)
    # another known user who shared the visitor's session id (a shop's backend may reuse one): theirs stays
    shared = {"event_id": "other-user", "user_id": OTHER, "session_id": session, "item_id": "sku-3",
              "event_type": "view", "timestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert api.post("/api/v1/events", {"events": [shared]}, format="json").status_code == 200
    user_vectors_apply()
    # what the worker does once their vectors changed
    candidate_lists_refresh(user_ids=[visitor, kept_visitor])
    events_attribute_recent()
    assert Attribution.objects.filter(kind="conversion", recommendation_id=lists[0]).exists()
    id_columns = _id_columns()
    assert {("interactions_event", "session_id"), ("django_session", "session_key")} <= set(id_columns)
    for table, column in id_columns:
        assert _holds(table, column, [visitor, session]), (
            f"{table}.{column} holds user or session ids but this test seeds no row there: extend it"
        )

    with contextlib.ExitStack() as stack:
        output = _capture_every_log_handler(stack)
        assert api.put(f"/api/v1/users/{visitor}").status_code == 405  # Django logs a 4xx with its path
        response = api.delete(f"/api/v1/users/{visitor}")
        # what runserver's request handler logs for each request (django.core.servers.basehttp)
        logging.getLogger("django.server").info(
            '"%s" %s %s', f"DELETE /api/v1/users/{visitor} HTTP/1.1", "200", "120",
            extra={"server_time": "30/Nov/2026 21:40:00"},
        )  # fmt: skip
    log_text = output.getvalue()

    assert response.status_code == 200
    assert _rows_naming([visitor]) == []
    assert _rows_naming([session]) == [("interactions_event", "session_id")]  # the other user's event only
    assert list(Event.objects.filter(session_id=session).values_list("user_id", flat=True)) == [OTHER]
    assert _visitor_sessions(visitor) == []
    assert not Attribution.objects.filter(recommendation_id__in=lists).exists()
    assert Attribution.objects.filter(recommendation_id__in=kept_lists).exists()
    for table, column in id_columns:
        assert _holds(table, column, [kept_visitor, kept_session]), f"{table}.{column} lost another visitor"
    redis = cache._cache.get_client(write=False)
    for needle in (visitor.encode(), session.encode()):
        assert [k for k in redis.scan_iter(count=500) if needle in k] == []
        strings = [k for k in redis.scan_iter(count=500) if redis.type(k) == b"string"]
        assert [k for k in strings if needle in (redis.get(k) or b"")] == []
    assert "Method Not Allowed: /api/v1/users/<redacted>" in log_text
    assert '"DELETE /api/v1/users/<redacted> HTTP/1.1" 200' in log_text
    assert visitor not in log_text, log_text

    assert response.json()["deleted"]["storefront_sessions"] == 1
    # the old cookie maps to no visitor any more: the browser starts over as someone new
    assert browser.get("/storefront/recommendations/user").status_code == 200
    browser.get("/")
    assert browser.session.session_key != session
    assert browser.session["visitor_id"] != visitor
    assert Client().get("/").status_code == 200
