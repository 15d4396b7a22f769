"""Scripts: every page's scripts are files of this site, so the content security policy says script-src 'self'.
The API docs (Swagger UI) come from drf-spectacular-sidecar's static files, pinned in requirements.txt, not
from a CDN's "latest"; their start-up script is a file too. tests/browser/test_api_docs.py renders them in
Chromium under that policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
# A <script> element that the browser runs: no src, and not a data block (json_script).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def test_the_policy_allows_scripts_from_this_site_only(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy.split("; ")
    assert settings.CONTENT_SECURITY_POLICY == policy


def test_no_template_has_inline_script_or_event_handler_attributes():
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in sorted((REPO / "annotation_site").rglob("templates/**/*.html"))
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER)
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []


def test_the_api_docs_load_swagger_ui_from_this_sites_static_files(admin_client):
    response = admin_client.get("/api/v1/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn.jsdelivr.net" not in page and "@latest" not in page
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
    names = {source.rsplit("/", 1)[-1] for source in sources}
    assert {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"} <= names
    for source in sources:
        assert source.startswith(("/static/", "/api/v1/docs/")), source
        if source.startswith(settings.STATIC_URL):
            assert finders.find(source.removeprefix(settings.STATIC_URL)), source
    assert not INLINE_SCRIPT.search(page)
    # The start-up script that would be inline is a file of its own, naming the schema's URL.
    [startup] = [source for source in sources if source.startswith("/api/v1/docs/")]
    script = admin_client.get(startup.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()


def test_the_swagger_ui_files_are_the_pinned_sidecar_release():
    from importlib.metadata import version

    pinned = re.search(r"^drf-spectacular-sidecar==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and version("drf-spectacular-sidecar") == pinned[1]
    assert "drf_spectacular_sidecar" in settings.INSTALLED_APPS
    assert settings.SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"] == "SIDECAR"
