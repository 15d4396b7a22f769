"""The admin's release list in Chromium: its progress script, a static file under the site's content security
policy (script-src 'self'), follows a running release until it is done."""

from __future__ import annotations

from annotation_site.releases.models import Release


def test_the_release_list_follows_a_running_release_with_its_script_file(admin_page, project):
    release = Release.objects.create(
        project=project, version=1, schema_version=project.current_schema, status=Release.Status.RUNNING,
        output_dir="unused", progress=0.25, stage="tables",
    )
    polled: list[str] = []
    admin_page.on("request", lambda request: polled.append(request.url) if "/progress/" in request.url else None)

    response = admin_page.goto("/admin/releases/release/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    Release.objects.filter(pk=release.pk).update(progress=0.5, stage="statistics")

    admin_page.wait_for_function("() => document.querySelector('.release-progress progress').value === 50")
    assert admin_page.inner_text(f'.release-progress[data-release="{release.pk}"] .release-stage') == "statistics"
    assert polled and f"ids={release.pk}" in polled[0]
