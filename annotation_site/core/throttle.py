"""Login throttling: after LOGIN_FAILURE_LIMIT failed sign-ins for one user name from one address, that
pair is locked out for LOGIN_LOCKOUT_SECONDS, even with the right password. Counts live in the cache
(Redis in production), so every web machine sees them.

A broken cache lets sign-ins through (logged): locking every rater out because Redis is down would do
more harm than an attacker's few extra guesses."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind the reverse proxy (LOGIN_TRUST_X_FORWARDED_FOR) it is the last
    address of X-Forwarded-For, the one our own proxy appended; earlier entries are the client's word."""
    if settings.LOGIN_TRUST_X_FORWARDED_FOR:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def login_locked_seconds(*, username: str, address: str) -> int:
    """Seconds left of the pair's lockout, 0 when they may try."""
    key = _key(username, address)
    try:
        entries = cache.get_many([key, key + ":until"])
    except Exception as exc:  # see the module docstring
        logger.warning("login throttle: cache unreadable, letting the attempt through: %s", exc)
        return 0
    if entries.get(key, 0) < settings.LOGIN_FAILURE_LIMIT:
        return 0
    return max(1, math.ceil(entries.get(key + ":until", 0) - time.time()))


def login_failure_record(*, username: str, address: str) -> None:
    key, timeout = _key(username, address), settings.LOGIN_LOCKOUT_SECONDS
    try:
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
    except Exception as exc:
        logger.warning("login throttle: cache unwritable, failure not counted: %s", exc)
        return
    if count >= settings.LOGIN_FAILURE_LIMIT:
        logger.warning("login throttle: %r locked out from %s after %d failed attempts", username[:150], address, count)


def login_failures_forget(*, username: str, address: str) -> None:
    key = _key(username, address)
    try:
        cache.delete_many([key, key + ":until"])
    except Exception as exc:
        logger.warning("login throttle: cache unwritable: %s", exc)


class ThrottledLoginMixin:
    """For Django's authentication forms: refuses a locked-out pair before checking the password, counts
    a failure, forgets the count on success."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked_out": "Too many failed sign-ins for this account from your address. Try again in %(minutes)s.",
    }
    locked_out = False

    def clean(self) -> dict:
        request: HttpRequest | None = self.request  # type: ignore[attr-defined]
        username = str(self.data.get("username", ""))[:150]  # type: ignore[attr-defined]
        address = client_address(request) if request is not None else "unknown"
        seconds = login_locked_seconds(username=username, address=address)
        if seconds:
            self.locked_out = True
            minutes = math.ceil(seconds / 60)
            raise forms.ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={"minutes": f"{minutes} minute{'s' if minutes != 1 else ''}"},
            )
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except forms.ValidationError as exc:
            if any(error.code == "invalid_login" for error in exc.error_list):
                login_failure_record(username=username, address=address)
            raise
        login_failures_forget(username=username, address=address)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


def locked_out_status(form: forms.Form, response: HttpResponse) -> HttpResponse:
    """429 Too Many Requests for a page that shows the lockout, so scripts and monitoring notice."""
    if getattr(form, "locked_out", False):
        response.status_code = 429
    return response
