"""Login throttling. Three counts of failed sign-ins, each with its own limit, and a lockout of
LOGIN_LOCKOUT_SECONDS once one reaches it, even with the right password:

- one user name from one address (LOGIN_FAILURE_LIMIT, 5): a guesser is stopped, the real user elsewhere is not;
- one user name from any address (LOGIN_ACCOUNT_FAILURE_LIMIT, 10): guesses spread over many addresses;
- one address for any user names (LOGIN_ADDRESS_FAILURE_LIMIT, 15): one guesser trying many accounts.

The user name is counted as Django's login form reads it (stripped, NFKC) and then case-folded, so every
spelling that signs in as an account (full-width letters, ligatures, another case) meets the same count.
Only failed authentications count: a right password that the admin refuses (a rater is not staff) does not.
The caller's address is REMOTE_ADDR, or with LOGIN_TRUSTED_PROXIES proxies in front the entry of
X-Forwarded-For that the outermost of them appended (docs/deployment.md, "The caller's address").

Counts live in the cache (Redis in production), so every web machine sees them. A broken cache lets
sign-ins through (logged): locking every rater out because Redis is down would do more harm than an
attacker's few extra guesses."""

from __future__ import annotations

import hashlib
import logging
import math
import time
import unicodedata
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)

# Longer than any user name the form accepts (150 characters after NFKC), so cutting here changes no count.
_NAME_READ_LIMIT = 4096
_ADDRESS_LIMIT = 100


def client_address(request: HttpRequest) -> str:
    """The caller's address. With LOGIN_TRUSTED_PROXIES = N proxies in front of gunicorn, each appending the
    address it was reached from to X-Forwarded-For, the caller is the N-th entry from the end (the one the
    outermost trusted proxy appended); earlier entries are the client's word. With fewer entries than N the
    request skipped an outer proxy, and the first entry is the closest to the caller we know. N = 0:
    REMOTE_ADDR, whatever the headers say."""
    proxies = max(0, int(settings.LOGIN_TRUSTED_PROXIES))
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-proxies if len(forwarded) >= proxies else 0][:_ADDRESS_LIMIT]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def normalised_username(username: str) -> str:
    """The user name as Django's login form reads it (stripped, then NFKC: UsernameField), case-folded and
    normalised again, so that every NFKC- and case-equivalent spelling of a name gives the same text."""
    name = unicodedata.normalize("NFKC", str(username)[:_NAME_READ_LIMIT].strip())
    return unicodedata.normalize("NFKC", name.casefold())


@dataclass(frozen=True)
class _Count:
    key: str
    limit: int
    what: str  # for the log and the message


def _counts(*, username: str, address: str) -> list[_Count]:
    name = normalised_username(username)

    def key(kind: str, *parts: str) -> str:
        digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"login-failures:{kind}:{digest}"

    return [
        _Count(key("pair", name, address), settings.LOGIN_FAILURE_LIMIT, "pair"),
        _Count(key("account", name), settings.LOGIN_ACCOUNT_FAILURE_LIMIT, "account"),
        _Count(key("address", address), settings.LOGIN_ADDRESS_FAILURE_LIMIT, "address"),
    ]


def _active(counts: list[_Count]) -> list[_Count]:
    return [count for count in counts if count.limit > 0]  # a limit of 0 turns that count off


def login_lockout(*, username: str, address: str) -> tuple[str, int] | None:
    """Which count locks this attempt out ("pair", "account" or "address") and the seconds left of it;
    None when the attempt may go ahead."""
    counts = _active(_counts(username=username, address=address))
    try:
        entries = cache.get_many([name for count in counts for name in (count.key, count.key + ":until")])
    except Exception as exc:  # see the module docstring
        logger.warning("login throttle: cache unreadable, letting the attempt through: %s", exc)
        return None
    locked = [
        (count.what, max(1, math.ceil(entries.get(count.key + ":until", 0) - time.time())))
        for count in counts
        if entries.get(count.key, 0) >= count.limit
    ]
    return max(locked, key=lambda item: item[1]) if locked else None


def login_locked_seconds(*, username: str, address: str) -> int:
    """Seconds left of the lockout that stops this attempt, 0 when it may go ahead."""
    lockout = login_lockout(username=username, address=address)
    return lockout[1] if lockout else 0


def _increment(key: str, timeout: int) -> int:
    # add-then-incr is atomic in Redis: parallel guesses cannot share one count.
    if cache.add(key, 1, timeout):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.set(key, 1, timeout)
            count = 1
        cache.touch(key, timeout)  # each failure restarts the window: a slow guesser stays locked
    cache.set(key + ":until", time.time() + timeout, timeout)
    return count


def login_failure_record(*, username: str, address: str) -> None:
    timeout = settings.LOGIN_LOCKOUT_SECONDS
    for count in _active(_counts(username=username, address=address)):
        try:
            value = _increment(count.key, timeout)
        except Exception as exc:
            logger.warning("login throttle: cache unwritable, failure not counted: %s", exc)
            return
        if value == count.limit:
            logger.warning(
                "login throttle: %s locked out after %d failed attempts (user name %r, address %s)",
                count.what, value, str(username)[:150], address,
            )


def login_failures_forget(*, username: str, address: str) -> None:
    """After a successful sign-in: the name's own counts start again. The address's count stays, or a
    guesser with an account of their own could clear it between guesses at other accounts."""
    pair, account, _address = _counts(username=username, address=address)
    try:
        cache.delete_many([pair.key, pair.key + ":until", account.key, account.key + ":until"])
    except Exception as exc:
        logger.warning("login throttle: cache unwritable: %s", exc)


LOCKED_OUT_MESSAGES = {
    "locked_out": _("Too many failed sign-ins for this account from your address. Try again in %(minutes)s."),
    "locked_out_account": _("Too many failed sign-ins for this account. Try again in %(minutes)s."),
    "locked_out_address": _("Too many failed sign-ins from your address. Try again in %(minutes)s."),
}


class ThrottledLoginMixin:
    """For Django's authentication forms: refuses a locked-out attempt before checking the password, counts
    a failed authentication, forgets the name's counts on a successful sign-in."""

    error_messages = {**AuthenticationForm.error_messages, **LOCKED_OUT_MESSAGES}
    locked_out = False

    def clean(self) -> dict:
        request: HttpRequest | None = self.request  # type: ignore[attr-defined]
        username = str(self.data.get("username", ""))  # type: ignore[attr-defined]
        address = client_address(request) if request is not None else "unknown"
        lockout = login_lockout(username=username, address=address)
        if lockout:
            what, seconds = lockout
            self.locked_out = True
            minutes = math.ceil(seconds / 60)
            raise forms.ValidationError(
                self.error_messages["locked_out" if what == "pair" else f"locked_out_{what}"],
                code="locked_out",
                params={"minutes": ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}},
            )
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError as exc:
            # Only a failed authentication counts: with a user the password was right and the form refused
            # the account afterwards (the admin's form refuses anyone who is not staff, a rater included).
            authenticated = self.get_user() is not None  # type: ignore[attr-defined]
            if not authenticated and any(error.code == "invalid_login" for error in exc.error_list):
                login_failure_record(username=username, address=address)
            raise
        if self.get_user() is not None:  # type: ignore[attr-defined]
            # Authenticated. (Without a user, the fields were invalid and no password was checked.)
            login_failures_forget(username=username, address=address)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    # The admin's own "... for a staff account" message for a refused sign-in.
    error_messages = {**AdminAuthenticationForm.error_messages, **LOCKED_OUT_MESSAGES}


def locked_out_status(form: forms.Form, response: HttpResponse) -> HttpResponse:
    """429 Too Many Requests for a page that shows the lockout, so scripts and monitoring notice."""
    if getattr(form, "locked_out", False):
        response.status_code = 429
    return response
