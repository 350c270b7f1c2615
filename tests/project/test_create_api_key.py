from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.models import ApiKey, api_key_hash

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_alone_on_its_last_line_and_it_works():
    out = StringIO()
    call_command("create_api_key", "my shop", stdout=out)
    last_line = out.getvalue().rstrip("\n").splitlines()[-1]
    assert " " not in last_line and last_line.startswith("rk_")
    key = ApiKey.objects.get()
    assert key.name == "my shop" and key.key_hash == api_key_hash(last_line)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {last_line}")
    assert client.get("/api/v1/items/none").status_code == 404


def test_each_call_creates_a_distinct_key():
    keys = set()
    for _ in range(3):
        out = StringIO()
        call_command("create_api_key", "shop", stdout=out)
        keys.add(out.getvalue().splitlines()[-1])
    assert len(keys) == 3 and ApiKey.objects.count() == 3


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_invalid_name_is_refused(name):
    with pytest.raises(CommandError, match="NAME"):
        call_command("create_api_key", name, stdout=StringIO())
    assert ApiKey.objects.count() == 0
