"""Photos in a real Chromium through the access check, as in production: Django's test server serves MEDIA_ROOT
itself, past the URLconf, so this module's server leaves media to the app's own view. Each rater page (labeling,
comparisons, regions) shows its photos decoded, and the same browser gets 404 for another project's photo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread
from pytest_django.live_server_helper import LiveServer

from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.services import grounding_setup_save
from annotation_site.projects.services import project_create
from tests.conftest import make_images

DECODED = "ids => ids.every((id) => { const p = document.getElementById(id); return p.getAttribute('src') && p.complete && p.naturalWidth > 0; })"


class _StaticOnly(StaticFilesHandler):
    """Static files as usual; the test server's media handler, which wraps the app, is unwrapped."""

    def __init__(self, application: object) -> None:
        super().__init__(getattr(application, "application", application))


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    server = LiveServer("localhost", start=False)
    plain = server.thread
    server.thread = LiveServerThread(plain.host, _StaticOnly, connections_override=plain.connections_override, port=plain.port)
    server.thread.daemon = True
    server.start()
    yield server
    server.stop()


@pytest.fixture
def setup(project, realqa_schema):  # type: ignore[no-untyped-def]
    project.gold_rate = 0
    project.qualification_size = 0
    project.save()
    images = make_images(project, 4, start_seed=9500)
    other = project_create(slug="other-project", name="Other", schema_definition=realqa_schema)
    [foreign] = make_images(other, 1, start_seed=9600)
    return {"project": project, "images": images, "foreign": foreign}


def _fetch_statuses(page, urls: list[str]) -> list[int]:  # type: ignore[no-untyped-def]
    return page.evaluate("urls => Promise.all(urls.map((url) => fetch(url).then((response) => response.status)))", urls)


def test_the_labeling_page_shows_the_photo_and_another_projects_photo_is_refused(page_for, setup, rater):
    page = page_for(rater)
    page.goto(f"/projects/{setup['project'].slug}/label/")
    page.wait_for_function(DECODED, arg=["photo"])
    shown = page.get_attribute("#photo", "src")
    image = next(image for image in setup["images"] if image.display.url == shown)
    assert page.evaluate("() => document.getElementById('photo').naturalWidth") == image.width

    foreign = setup["foreign"]
    assert _fetch_statuses(page, [image.thumbnail.url, foreign.display.url, foreign.thumbnail.url]) == [200, 404, 404]


def test_the_comparison_page_shows_both_photos(page_for, setup, rater):
    comparison_setup_save(project=setup["project"], enabled=True, strategy="random", comparisons_per_image=2)
    page = page_for(rater)
    page.goto(f"/projects/{setup['project'].slug}/compare/")
    page.wait_for_function(DECODED, arg=["left", "right"])


def test_the_regions_page_shows_the_photo(page_for, setup, rater):
    grounding_setup_save(project=setup["project"], enabled=True, raters_per_image=1, region_questions=[])
    page = page_for(rater)
    page.goto(f"/projects/{setup['project'].slug}/regions/")
    page.wait_for_function(DECODED, arg=["photo"])
