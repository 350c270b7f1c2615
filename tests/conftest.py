"""Shared fixtures. Tests run against the real embedded PostgreSQL + pgvector and the real Redis."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def api_key(db) -> str:
    from recsys_project.models import ApiKey

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
