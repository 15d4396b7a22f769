"""Login throttling: after LOGIN_FAILURE_LIMIT (5) failed sign-ins for one user name from one address,
that pair is locked out for LOGIN_LOCKOUT_SECONDS, even with the right password; so is a user name after
LOGIN_ACCOUNT_FAILURE_LIMIT (10) from any addresses, and an address after LOGIN_ADDRESS_FAILURE_LIMIT (15)
for any user names. The site's login page and the admin's share the counts. Counts live in the cache
(Redis when REDIS_URL is set)."""

from __future__ import annotations

import random
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


def _user(prefix: str):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_user(f"{prefix}-{uuid.uuid4().hex[:8]}", password=PASSWORD)


def _address() -> str:
    """A fresh address per client: the count per address lives in the cache, which outlives each test."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def _fullwidth(text: str) -> str:
    """The same text in full-width letters and digits (U+FF01..U+FF5E), which NFKC turns back."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def _login(client: Client, username: str, password: str, url: str = "/accounts/login/", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(url, {"username": username, "password": password}, **extra)


def _fail(client: Client, username: str, times: int = 5, **extra: str) -> None:
    for _ in range(times):
        response = _login(client, username, "wrong-guess", **extra)
        assert response.status_code == 200 and "did not match" in response.content.decode()


def test_after_five_failures_even_the_right_password_is_refused_with_429_and_a_reason(user):
    client = Client(REMOTE_ADDR=_address())
    _fail(client, user.username)

    response = _login(client, user.username, PASSWORD)

    assert response.status_code == 429
    assert LOCKED in response.content.decode() and "Try again in 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_four_failures_still_let_the_right_password_in_and_a_success_clears_the_count(user):
    client = Client(REMOTE_ADDR=_address())
    _fail(client, user.username, times=4)
    assert _login(client, user.username, PASSWORD).status_code == 302

    other = Client(REMOTE_ADDR=_address())
    _fail(other, user.username, times=4)
    assert _login(other, user.username, PASSWORD).status_code == 302


def test_the_lockout_is_per_user_name_and_address(user):
    attacker = Client(REMOTE_ADDR=_address())
    _fail(attacker, user.username)
    assert _login(attacker, user.username, PASSWORD).status_code == 429
    assert _login(attacker, user.username.upper(), PASSWORD).status_code == 429  # names match case-insensitively

    # The real user, from their own address, still signs in; and the attacker's address is not locked for others.
    assert _login(Client(REMOTE_ADDR=_address()), user.username, PASSWORD).status_code == 302
    someone = get_user_model().objects.create_user(f"someone-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    assert _login(attacker, someone.username, PASSWORD).status_code == 302


def test_the_admin_login_shares_the_count(user):
    client = Client(REMOTE_ADDR=_address())
    _fail(client, user.username, times=3)
    _fail_admin = [_login(client, user.username, "wrong-guess", url="/admin/login/") for _ in range(2)]
    assert all(response.status_code == 200 for response in _fail_admin)

    admin_attempt = _login(client, user.username, PASSWORD, url="/admin/login/")
    site_attempt = _login(client, user.username, PASSWORD)

    assert LOCKED in admin_attempt.content.decode() and "_auth_user_id" not in client.session
    assert site_attempt.status_code == 429


@override_settings(LOGIN_LOCKOUT_SECONDS=3)
def test_the_lockout_ends_after_its_time(user):
    client = Client(REMOTE_ADDR=_address())
    _fail(client, user.username)
    assert _login(client, user.username, PASSWORD).status_code == 429
    assert "Try again in 1 minute." in _login(client, user.username, PASSWORD).content.decode()

    # Waits for the lockout to run out rather than for a fixed time, so a slow machine cannot fail it.
    deadline = time.monotonic() + 30
    while (status := _login(client, user.username, PASSWORD).status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.5)

    assert status == 302


@override_settings(LOGIN_TRUSTED_PROXIES=1)
def test_behind_the_proxy_the_address_it_appended_is_the_one_counted(user):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    caller = _address()
    _fail(Client(**proxy), user.username, HTTP_X_FORWARDED_FOR=caller)
    # A client cannot escape by claiming another address: the proxy appends the real one last.
    spoofed = _login(Client(**proxy), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"1.1.1.1, {caller}")
    assert spoofed.status_code == 429
    assert _login(Client(**proxy), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=_address()).status_code == 302


def test_without_a_trusted_proxy_a_forged_forwarded_for_header_changes_nothing(user):
    client = Client(REMOTE_ADDR=_address())
    for index in range(5):
        _login(client, user.username, "wrong-guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{index}")
    assert _login(client, user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_production_trusts_the_proxy_and_development_does_not() -> None:
    from tests.observability.test_logs import _settings_value

    production = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "labels.example.org"}
    assert _settings_value("annotation_site.settings.production", "settings.LOGIN_TRUSTED_PROXIES", **production) == "1"
    assert _settings_value("annotation_site.settings.dev", "settings.LOGIN_TRUSTED_PROXIES") == "0"


def test_the_older_switch_and_a_load_balancer_set_how_many_proxies_are_trusted() -> None:
    from tests.observability.test_logs import _settings_value

    production = {"SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "labels.example.org"}
    count = "settings.LOGIN_TRUSTED_PROXIES"
    older = {"LOGIN_TRUST_X_FORWARDED_FOR": "0", **production}
    assert _settings_value("annotation_site.settings.production", count, **older) == "0"
    assert _settings_value("annotation_site.settings.production", count, LOGIN_TRUSTED_PROXIES="2", **production) == "2"
    assert _settings_value("annotation_site.settings.dev", count, LOGIN_TRUST_X_FORWARDED_FOR="1") == "1"


def test_every_nfkc_and_case_equivalent_spelling_of_a_name_meets_the_same_lockout():
    # "ﬁ" (one ligature character) and full-width letters are what Django's login form turns into "fi" and
    # ASCII (NFKC) before it checks the password; case only changes which account in no way here.
    name = f"fiRaterB-{uuid.uuid4().hex[:6]}"
    get_user_model().objects.create_user(name, password=PASSWORD)
    spellings = [name, _fullwidth(name), name.upper(), name.lower(), "ﬁ" + name[2:], _fullwidth(name.swapcase()),
                 f"  {name}\u3000", "ﬁ" + _fullwidth(name[2:]).upper()]
    # Unlocked, the odd spellings are the account itself: the full-width one signs in as it.
    probe = Client(REMOTE_ADDR=_address())
    assert _login(probe, _fullwidth(name), PASSWORD).status_code == 302
    assert get_user_model().objects.get(pk=probe.session["_auth_user_id"]).username == name

    client = Client(REMOTE_ADDR=_address())
    statuses = [_login(client, spellings[index % len(spellings)], "wrong-guess").status_code for index in range(12)]
    assert statuses == [200] * 5 + [429] * 7  # rotating spellings from one address meets the lockout at the sixth

    for spelling in spellings:
        response = _login(client, spelling, PASSWORD)
        assert response.status_code == 429, spelling
        assert LOCKED in response.content.decode() and "_auth_user_id" not in client.session


def test_a_form_refused_before_any_password_check_does_not_clear_the_count(user):
    client = Client(REMOTE_ADDR=_address())
    # Longer than 150 characters once stripped, so the form refuses the name before checking a password; its
    # first 150 characters are the guessed name followed by spaces. Sent after every fourth guess.
    overlong = user.username + " " * 150 + "x"
    statuses = []
    for index in range(8):
        if index % 4 == 0:
            assert _login(client, overlong, "wrong-guess").status_code in (200, 429)
        statuses.append(_login(client, user.username, "wrong-guess").status_code)

    assert statuses == [200] * 5 + [429] * 3


def test_a_right_password_that_the_admin_refuses_because_the_account_is_not_staff_is_not_a_failure():
    rater = _user("rater")
    client = Client(REMOTE_ADDR=_address())
    for _ in range(6):
        response = _login(client, rater.username, PASSWORD, url="/admin/login/")
        assert response.status_code == 200 and "staff account" in response.content.decode()

    assert _login(client, rater.username, PASSWORD).status_code == 302


def test_a_name_is_locked_out_after_ten_failures_from_any_addresses(user):
    for _ in range(10):  # one guess from each of ten addresses: no pair reaches its limit of five
        _fail(Client(REMOTE_ADDR=_address()), user.username, times=1)

    client = Client(REMOTE_ADDR=_address())
    response = _login(client, _fullwidth(user.username), PASSWORD)

    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed sign-ins for this account. Try again in 15 minutes." in response.content.decode()


def test_an_address_is_locked_out_after_fifteen_failures_over_any_accounts():
    address = _address()
    names = [_user("sprayed").username for _ in range(6)]
    client = Client(REMOTE_ADDR=address)
    # Four guesses at each of five accounts (20 in all, no pair reaching five): the sixteenth meets the lockout.
    statuses = [_login(client, names[index % 5], "wrong-guess").status_code for index in range(20)]
    assert statuses == [200] * 15 + [429] * 5

    refused = _login(Client(REMOTE_ADDR=address), names[5], PASSWORD)  # even an untried account, right password
    assert refused.status_code == 429
    assert "Too many failed sign-ins from your address. Try again in 15 minutes." in refused.content.decode()
    # The accounts themselves are not locked for their owners elsewhere.
    assert _login(Client(REMOTE_ADDR=_address()), names[0], PASSWORD).status_code == 302


def test_a_successful_sign_in_does_not_clear_the_count_of_its_address():
    mine = _user("guesser")
    targets = [_user("target") for _ in range(4)]
    client = Client(REMOTE_ADDR=_address())
    statuses = []
    for index in range(16):
        statuses.append(_login(client, targets[index % 4].username, "wrong-guess").status_code)
        if index % 4 == 3:  # the guesser signs in with an account of their own now and then
            own = _login(Client(REMOTE_ADDR=client.defaults["REMOTE_ADDR"]), mine.username, PASSWORD)
            assert own.status_code in (302, 429)
    assert statuses == [200] * 15 + [429]


@override_settings(LOGIN_ACCOUNT_FAILURE_LIMIT=0, LOGIN_ADDRESS_FAILURE_LIMIT=0)
def test_a_limit_of_zero_turns_that_count_off():
    address = _address()
    names = [_user("off").username for _ in range(5)]
    client = Client(REMOTE_ADDR=address)
    assert [_login(client, names[index % 5], "wrong-guess").status_code for index in range(20)] == [200] * 20


@override_settings(LOGIN_TRUSTED_PROXIES=2)
def test_behind_a_load_balancer_and_nginx_the_address_the_balancer_appended_is_counted(user):
    nginx = {"REMOTE_ADDR": "127.0.0.1"}
    balancer = "10.0.0.5"  # nginx appends the balancer's address after the one the balancer appended
    caller, neighbour = _address(), _address()
    _fail(Client(**nginx), user.username, HTTP_X_FORWARDED_FOR=f"{caller}, {balancer}")

    locked = _login(Client(**nginx), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"{caller}, {balancer}")
    assert locked.status_code == 429
    # A forged entry in front changes nothing; another client behind the same balancer is not locked out.
    forged = _login(Client(**nginx), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"1.1.1.1, {caller}, {balancer}")
    assert forged.status_code == 429
    other = _login(Client(**nginx), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"{neighbour}, {balancer}")
    assert other.status_code == 302


@override_settings(LOGIN_TRUSTED_PROXIES=1)
def test_behind_nginx_alone_rotating_a_forged_forwarded_for_entry_does_not_escape(user):
    nginx, caller = {"REMOTE_ADDR": "127.0.0.1"}, _address()
    for index in range(5):
        _login(Client(**nginx), user.username, "wrong-guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{index}, {caller}")
    forged = _login(Client(**nginx), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=f"192.0.2.99, {caller}")
    assert forged.status_code == 429


def test_without_a_trusted_proxy_rotating_forwarded_for_meets_the_lockout_of_remote_addr(user):
    client = Client(REMOTE_ADDR=_address())
    statuses = [
        _login(client, user.username, "wrong-guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{index}").status_code
        for index in range(12)
    ]
    assert statuses == [200] * 5 + [429] * 7
