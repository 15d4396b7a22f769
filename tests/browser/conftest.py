"""A real headless Chromium (Debian's package) driven by Playwright against pytest-django's live server."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse
    # ORM calls from the test body; the test is synchronous code, so the check does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def admin_page(browser, live_server, admin_user, client):  # type: ignore[no-untyped-def]
    """A browser tab logged in as the admin (the session cookie of a Django test-client login)."""
    client.force_login(admin_user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}]
    )
    page = context.new_page()
    yield page
    context.close()
