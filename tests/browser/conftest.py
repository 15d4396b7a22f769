"""A real headless Chromium (Debian's package) driven by Playwright against pytest-django's live server."""

from __future__ import annotations

import os
import shutil
import time
from typing import Iterator

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread for as long as it lives, which
    # makes Django refuse every later ORM call of the session; the tests are synchronous code, so the
    # check does not apply while the browser is up.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def _wait_for_function_under_the_csp(page):  # type: ignore[no-untyped-def]
    """page.wait_for_function that works under the site's content security policy (script-src 'self'):
    Playwright's own evaluates its predicate with eval inside the page, which the policy forbids, as it
    should; page.evaluate goes through the DevTools protocol and is not bound by it."""
    from playwright.sync_api import Error, TimeoutError

    def wait_for_function(  # type: ignore[no-untyped-def]
        expression: str, *, arg: object = None, timeout: float | None = None, polling: object = None
    ):
        deadline = time.monotonic() + (30_000 if timeout is None else timeout) / 1000
        while True:
            try:
                value = page.evaluate(expression, arg)
            except Error as exc:  # the page navigated (a reload) while it was asked: ask the new one
                if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"wait_for_function: {expression!r} still false after {timeout or 30_000} ms")
            page.wait_for_timeout(polling if isinstance(polling, (int, float)) else 50)

    return wait_for_function


@pytest.fixture
def page_for(browser, live_server):  # type: ignore[no-untyped-def]
    """Opens a browser tab logged in as a user (the session cookie of a Django test-client login)."""
    from django.test import Client

    tabs = []
    errors: list[str] = []

    def open_tab(user):  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}]
        )
        page = context.new_page()
        page.wait_for_function = _wait_for_function_under_the_csp(page)
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A script or other resource the content security policy blocked is a broken page too.
        page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None)
        in_flight: set = set()
        page.on("request", lambda request: in_flight.add(request))
        page.on("requestfinished", lambda request: in_flight.discard(request))
        page.on("requestfailed", lambda request: in_flight.discard(request))
        tabs.append((context, page, in_flight))
        return page

    yield open_tab
    for context, page, in_flight in tabs:
        # A page may still be fetching (the prefetch of its next task): let nothing new out and wait for what
        # is on its way, or the live server would still be writing while the test database is flushed.
        page.route("**/*", lambda route: route.abort())
        while in_flight:
            page.wait_for_timeout(20)
        context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def admin_page(page_for, admin_user):  # type: ignore[no-untyped-def]
    return page_for(admin_user)
