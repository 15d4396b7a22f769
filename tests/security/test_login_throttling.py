"""Login throttling: after LOGIN_FAILURE_LIMIT (5) failed sign-ins for one user name from one address,
that pair is locked out for LOGIN_LOCKOUT_SECONDS, even with the right password; the site's login page
and the admin's share the count. Counts live in the cache (Redis when REDIS_URL is set)."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

PASSWORD = "right-pass-123"
LOCKED = "Too many failed sign-ins for this account from your address"


@pytest.fixture
def user():  # type: ignore[no-untyped-def]
    # A fresh name per test: the counts live in the cache, which outlives each test's database.
    return get_user_model().objects.create_user(f"throttled-{uuid.uuid4().hex[:8]}", password=PASSWORD, is_staff=True)


def _login(client: Client, username: str, password: str, url: str = "/accounts/login/", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(url, {"username": username, "password": password}, **extra)


def _fail(client: Client, username: str, times: int = 5, **extra: str) -> None:
    for _ in range(times):
        response = _login(client, username, "wrong-guess", **extra)
        assert response.status_code == 200 and "did not match" in response.content.decode()


def test_after_five_failures_even_the_right_password_is_refused_with_429_and_a_reason(user):
    client = Client()
    _fail(client, user.username)

    response = _login(client, user.username, PASSWORD)

    assert response.status_code == 429
    assert LOCKED in response.content.decode() and "Try again in 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_four_failures_still_let_the_right_password_in_and_a_success_clears_the_count(user):
    client = Client()
    _fail(client, user.username, times=4)
    assert _login(client, user.username, PASSWORD).status_code == 302

    other = Client()
    _fail(other, user.username, times=4)
    assert _login(other, user.username, PASSWORD).status_code == 302


def test_the_lockout_is_per_user_name_and_address(user):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    _fail(attacker, user.username)
    assert _login(attacker, user.username, PASSWORD).status_code == 429
    assert _login(attacker, user.username.upper(), PASSWORD).status_code == 429  # names match case-insensitively

    # The real user, from their own address, still signs in; and the attacker's address is not locked for others.
    assert _login(Client(REMOTE_ADDR="198.51.100.7"), user.username, PASSWORD).status_code == 302
    someone = get_user_model().objects.create_user(f"someone-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    assert _login(attacker, someone.username, PASSWORD).status_code == 302


def test_the_admin_login_shares_the_count(user):
    client = Client()
    _fail(client, user.username, times=3)
    _fail_admin = [_login(client, user.username, "wrong-guess", url="/admin/login/") for _ in range(2)]
    assert all(response.status_code == 200 for response in _fail_admin)

    admin_attempt = _login(client, user.username, PASSWORD, url="/admin/login/")
    site_attempt = _login(client, user.username, PASSWORD)

    assert LOCKED in admin_attempt.content.decode() and "_auth_user_id" not in client.session
    assert site_attempt.status_code == 429


@override_settings(LOGIN_LOCKOUT_SECONDS=3)
def test_the_lockout_ends_after_its_time(user):
    client = Client()
    _fail(client, user.username)
    assert _login(client, user.username, PASSWORD).status_code == 429
    assert "Try again in 1 minute." in _login(client, user.username, PASSWORD).content.decode()

    # Waits for the lockout to run out rather than for a fixed time, so a slow machine cannot fail it.
    deadline = time.monotonic() + 30
    while (status := _login(client, user.username, PASSWORD).status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.5)

    assert status == 302


@override_settings(LOGIN_TRUST_X_FORWARDED_FOR=True)
def test_behind_the_proxy_the_address_it_appended_is_the_one_counted(user):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    _fail(Client(**proxy), user.username, HTTP_X_FORWARDED_FOR="203.0.113.9")
    # A client cannot escape by claiming another address: the proxy appends the real one last.
    spoofed = _login(Client(**proxy), user.username, PASSWORD, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9")
    assert spoofed.status_code == 429
    assert _login(Client(**proxy), user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


def test_without_a_trusted_proxy_a_forged_forwarded_for_header_changes_nothing(user):
    client = Client()
    for index in range(5):
        _login(client, user.username, "wrong-guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{index}")
    assert _login(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_production_trusts_the_proxy_and_development_does_not() -> None:
    from tests.observability.test_logs import _settings_value

    production = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "labels.example.org"}
    assert _settings_value("annotation_site.settings.production", "settings.LOGIN_TRUST_X_FORWARDED_FOR", **production) == "True"
    assert _settings_value("annotation_site.settings.dev", "settings.LOGIN_TRUST_X_FORWARDED_FOR") == "False"
