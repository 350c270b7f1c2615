"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector and the real Redis."""

from __future__ import annotations

import os

import pytest

from tests.browser import chromium_launch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def api_key(db) -> str:
    from core.models import ApiKey

    _key, raw = ApiKey.generate(name="test shop")
    return raw


@pytest.fixture
def api(api_key):
    """A DRF client that sends a valid `Authorization: Api-Key` header."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


@pytest.fixture
def anon_api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(scope="session", autouse=True)
def _embedded_servers():
    """The test run is an entry point: it starts the embedded PostgreSQL and Redis the settings point at
    (loading the settings starts nothing: core/embedded.py), before pytest-django creates the test database
    (a session fixture that is autouse is set up before the ones a test asks for). tests/cluster, which runs
    servers of its own, overrides it with one that starts nothing."""
    from core import embedded

    embedded.ensure_started()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Stop the embedded PostgreSQL (and Redis) that this run started (`_embedded_servers`), after the
    session's fixtures are torn down: `make test` leaves nothing running that it started. A server that
    was already running is left alone, and so is one that another process (a demo, a second test run)
    has connected to since."""
    from core import embedded

    if not embedded.started_here:
        return
    from django.db import connections

    connections.close_all()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    if "postgres" in embedded.started_here:
        others = embedded.embedded_postgres_other_clients()
        if others:
            say(f"left the embedded PostgreSQL running: {others} other connection(s) use it")
        elif embedded.embedded_postgres_stop():
            say("stopped the embedded PostgreSQL this test run started")
    if "redis" in embedded.started_here and embedded.embedded_redis_stop():
        say("stopped the embedded Redis this test run started")


@pytest.fixture(autouse=True)
def _serving_model_caches_reset():
    """The active ranker and two-tower version are cached per process (and a test may override them): each
    test starts and ends with nothing cached, since each test has its own database (a ranker left from one
    test served the next test's lists)."""
    from recommendations.ranker import serving as ranker_serving
    from recommendations.two_tower import serving as two_tower_serving

    def reset():
        with ranker_serving._lock:
            ranker_serving._state.update(expires=0.0, loaded=None, override=None, path=None)
        two_tower_serving.active_version_clear()

    reset()
    yield
    reset()


@pytest.fixture
def browser(monkeypatch):
    """Debian's headless Chromium through Playwright (tests/browser.py), closed after the test."""
    yield from chromium_launch(monkeypatch)
