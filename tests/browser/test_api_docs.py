"""The API docs in Chromium: Swagger UI from this site's static files runs under the site's content security
policy (script-src 'self'), and lists the API; no request leaves the site."""

from __future__ import annotations

from urllib.parse import urlsplit


def test_the_api_docs_render_from_this_sites_own_files_under_the_content_security_policy(admin_page, live_server):
    requested: list[str] = []
    admin_page.on("request", lambda request: requested.append(request.url))

    response = admin_page.goto("/api/v1/docs/")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    admin_page.wait_for_selector(".swagger-ui .info .title")
    assert "RealQA annotation platform API" in admin_page.inner_text(".swagger-ui .info .title")
    admin_page.wait_for_selector(".opblock-summary-path")  # the operations, read from /api/v1/schema/
    assert "/api/v1/" in admin_page.inner_text(".swagger-ui")
    own = urlsplit(live_server.url).netloc
    assert [url for url in requested if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own] == []
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in url for url in requested)
