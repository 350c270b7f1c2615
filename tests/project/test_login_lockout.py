"""Admin login lockout (django-axes): wrong passwords for one username from one address lock that pair out,
even for the right password, until the cool-off ends or an administrator resets it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # dozens of logins per test: PBKDF2's cost is not what is under test here
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "b@example.com", "pw-boss-right-1")


def _login(client: Client, password: str, username: str = "boss"):
    return client.post(LOGIN, {"username": username, "password": password})


def _logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_thirty_wrong_passwords_then_the_right_one_is_refused_with_a_clear_page(boss):
    client = Client(REMOTE_ADDR="198.51.100.1")
    for _ in range(30):
        assert _login(client, "wrong-password").status_code in (200, 429)
    response = _login(client, "pw-boss-right-1")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert f"after {settings.AXES_FAILURE_LIMIT} wrong passwords" in page
    assert "axes_reset" in page
    assert not _logged_in(client)


def test_a_few_wrong_passwords_do_not_lock_out(boss):
    client = Client(REMOTE_ADDR="198.51.100.2")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong-password").status_code == 200  # the form again, with its error
    assert _login(client, "pw-boss-right-1").status_code == 302
    assert _logged_in(client)


def test_the_lockout_is_per_username_and_address(boss, django_user_model):
    django_user_model.objects.create_user("other", password="pw-other-right-1", is_staff=True)
    attacker = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(attacker, "wrong-password")
    assert _login(attacker, "pw-boss-right-1").status_code == 429
    # the real boss elsewhere, and another user from the attacker's address, still log in
    assert _login(Client(REMOTE_ADDR="198.51.100.3"), "pw-boss-right-1").status_code == 302
    assert _login(attacker, "pw-other-right-1", username="other").status_code == 302


def test_axes_reset_lifts_the_lockout(boss):
    client = Client(REMOTE_ADDR="198.51.100.4")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong-password")
    assert _login(client, "pw-boss-right-1").status_code == 429
    call_command("axes_reset")
    assert _login(client, "pw-boss-right-1").status_code == 302
    assert _logged_in(client)
