"""Photos behind the sample nginx (deploy/nginx.conf) and gunicorn on the production settings: Django checks who
asks, nginx sends the file from its internal location (X-Accel-Redirect), and nobody reaches that location
directly."""

from __future__ import annotations

import http.client
import ssl

import pytest
from django.core.files.storage import default_storage

from annotation_site.labeling.assignments import membership_ensure
from annotation_site.projects.services import project_create
from annotation_site.raters.services import rater_create
from tests.conftest import make_images

from .services import Browser, Nginx

pytestmark = pytest.mark.postgres

PASSWORD = "media-pass-123"


def _fetch(port: int, path: str, session: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """A GET through the proxy's TLS port with the given session cookie: status, headers, body bytes."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ssl._create_unverified_context())
    try:
        conn.request("GET", path, headers={"Cookie": f"sessionid={session}"} if session else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_nginx_sends_a_photo_only_to_those_django_lets_through(project, realqa_schema, make_env, start_gunicorn):
    [mine] = make_images(project, 1, start_seed=5000)
    other = project_create(slug="other-project", name="Other", schema_definition=realqa_schema)
    [theirs] = make_images(other, 1, start_seed=5100)
    member = rater_create(username="member", password=PASSWORD)
    membership_ensure(project=project, rater=member)
    rater_create(username="staff", password=PASSWORD, is_staff=True)
    env = make_env(FORWARDED_ALLOW_IPS="127.0.0.1")  # production settings: MEDIA_X_ACCEL_REDIRECT=/protected-media/
    web = start_gunicorn(env, workers=1)
    proxy = Nginx([web.port], media_root=env["MEDIA_ROOT"])
    proxy.start()
    try:
        sessions = {}
        for username in ("member", "staff"):
            browser = Browser(web.port)
            assert browser.login(username, PASSWORD) == 302
            sessions[username] = browser.cookies["sessionid"]

        status, headers, body = _fetch(proxy.https_port, mine.display.url, sessions["member"])
        assert status == 200 and body == default_storage.open(mine.display.name).read()
        assert headers["content-type"] == "image/jpeg" and "x-accel-redirect" not in headers
        assert headers["cache-control"] == "private, max-age=86400" and headers["x-content-type-options"] == "nosniff"
        # A photo sent from nginx's internal location keeps the security headers of a page, and no version.
        _, page_headers, _ = _fetch(proxy.https_port, "/accounts/login/")
        for name in ("strict-transport-security", "content-security-policy", "x-frame-options", "referrer-policy"):
            assert headers.get(name) == page_headers[name], name
        assert headers["server"] == page_headers["server"] == "nginx"
        assert _fetch(proxy.https_port, mine.thumbnail.url, sessions["member"])[0] == 200

        assert _fetch(proxy.https_port, theirs.display.url, sessions["member"])[0] == 404  # another project's photo
        assert _fetch(proxy.https_port, mine.display.url)[0] == 404  # signed out
        status, _, body = _fetch(proxy.https_port, theirs.display.url, sessions["staff"])
        assert status == 200 and body == default_storage.open(theirs.display.name).read()
        # The internal location answers no browser, whoever asks.
        assert _fetch(proxy.https_port, f"/protected-media/{mine.display.name}", sessions["staff"])[0] == 404
    finally:
        proxy.close()
