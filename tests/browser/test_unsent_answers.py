"""An answer a rater gave is never lost, in a real Chromium: while the server cannot be reached (or its answer
is lost on the way back) the page says it is still saving and keeps trying; a reload sends it again; and
however often it goes out, the database holds it once. A refusal with a reason is shown, not retried."""

from __future__ import annotations

from collections.abc import Callable

from annotation_site.comparisons.models import Comparison
from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.models import DescriptionAnnotation
from annotation_site.grounding.services import description_setup_save
from annotation_site.labeling.assignments import assignment_skip
from annotation_site.labeling.models import Annotation, Assignment
from tests.browser.test_labeling import _label_by_keyboard, _wait_for_new_photo
from tests.conftest import make_images

OFFLINE = "Saving… (offline, retrying)"
UNSENT = "() => Object.keys(localStorage).filter((key) => key.startsWith('realqa.unsent.'))"


class FlakySubmits:
    """Stands between the page and a submit URL: `lose` decides, per attempt (1, 2, ...), what goes wrong:
    "stored" lets the request reach the server and then drops the server's answer, "abort" drops the
    connection, "503" answers as a proxy whose upstream is down, None lets it through."""

    def __init__(self, page, pattern: str, lose: Callable[[int], str | None]) -> None:  # type: ignore[no-untyped-def]
        self.keys: list[str] = []
        self._lose = lose
        page.route(pattern, self._handle)

    def _handle(self, route) -> None:  # type: ignore[no-untyped-def]
        self.keys.append(route.request.post_data_json["idempotency_key"])
        what = self._lose(len(self.keys))
        if what == "stored":
            route.fetch()
            route.abort("connectionreset")
        elif what == "abort":
            route.abort("connectionrefused")
        elif what == "503":
            route.fulfill(status=503, content_type="text/html", body="<h1>503 Service Unavailable</h1>")
        else:
            route.continue_()

    def wait_for_attempts(self, page, count: int) -> None:  # type: ignore[no-untyped-def]
        while len(self.keys) < count:
            page.wait_for_timeout(50)  # routes are handled while Playwright waits


def _labeling_project(project) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Image ids by the URL the page shows them under."""
    project.gold_rate = 0
    project.qualification_size = 0
    project.save()
    return {image.display.url: image.pk for image in make_images(project, 3)}


def test_a_label_given_while_the_server_is_away_is_stored_once_when_it_is_back(page_for, project, rater):
    _labeling_project(project)
    page = page_for(rater)
    outage = {"on": True}
    submits = FlakySubmits(
        page, "**/api/v1/assignments/*/submit", lambda n: "stored" if n == 1 else "abort" if outage["on"] else None
    )
    page.goto("/projects/realqa-test/label/")
    src = _wait_for_new_photo(page, "")

    _label_by_keyboard(page, "6.8")
    page.wait_for_selector(f"#save-status:has-text('{OFFLINE}')")
    submits.wait_for_attempts(page, 3)
    assert page.get_attribute("#photo", "src") == src  # the rater stays on the photo while it is saving
    assert page.is_hidden("#errors")
    assert len(page.evaluate(UNSENT)) == 1
    assert Annotation.objects.count() == 1  # the first attempt was stored; only the acknowledgement was lost
    outage["on"] = False

    _wait_for_new_photo(page, src)
    assert page.is_hidden("#save-status")
    assert page.evaluate(UNSENT) == []
    [label] = Annotation.objects.filter(rater=rater)
    assert label.values["quality"] == 6.8
    assert set(submits.keys) == {label.idempotency_key}  # one key, however many attempts


def test_a_label_still_saving_when_the_page_is_reloaded_is_sent_again_and_stored_once(page_for, project, rater):
    images = _labeling_project(project)
    page = page_for(rater)
    submits = FlakySubmits(page, "**/api/v1/assignments/*/submit", lambda n: "abort")
    page.goto("/projects/realqa-test/label/")
    src = _wait_for_new_photo(page, "")
    labeled = Assignment.objects.get(rater=rater, image_id=images[src])

    _label_by_keyboard(page, "5.5")
    page.wait_for_selector(f"#save-status:has-text('{OFFLINE}')")
    assert Annotation.objects.count() == 0
    page.unroute("**/api/v1/assignments/*/submit")
    page.reload()

    _wait_for_new_photo(page, src)
    [label] = Annotation.objects.filter(rater=rater)
    assert label.assignment_id == labeled.pk and label.values["quality"] == 5.5
    assert label.idempotency_key == submits.keys[0]
    assert page.evaluate(UNSENT) == []


def test_a_rater_signed_out_meanwhile_keeps_the_label_until_signed_in_again(page_for, project, rater):
    _labeling_project(project)
    page = page_for(rater)
    page.goto("/projects/realqa-test/label/")
    src = _wait_for_new_photo(page, "")
    cookies = page.context.cookies()
    page.context.clear_cookies()

    _label_by_keyboard(page, "7")
    page.wait_for_selector("#save-status:has-text('signed out')")
    assert Annotation.objects.count() == 0
    page.context.add_cookies(cookies)

    _wait_for_new_photo(page, src)
    assert Annotation.objects.get(rater=rater).values["quality"] == 7.0


def test_a_refused_label_is_shown_and_not_sent_again(page_for, project, rater):
    images = _labeling_project(project)
    page = page_for(rater)
    submits = FlakySubmits(page, "**/api/v1/assignments/*/submit", lambda n: None)
    page.goto("/projects/realqa-test/label/")
    src = _wait_for_new_photo(page, "")
    shown = Assignment.objects.get(rater=rater, image_id=images[src])
    assignment_skip(assignment_id=shown.pk, rater=rater, reason="cannot_judge")  # say, in another tab

    _label_by_keyboard(page, "6")
    page.wait_for_selector("#errors:not([hidden])")
    assert f"assignment #{shown.pk} was already skipped" in page.inner_text("#errors")
    assert len(submits.keys) == 1
    assert page.evaluate(UNSENT) == []
    assert Annotation.objects.count() == 0


def _wait_for_pair(page, previous: str) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "previous => { const id = document.getElementById('app').dataset.assignment; return id && id !== previous; }",
        arg=previous,
    )
    return page.get_attribute("#app", "data-assignment")


def test_a_comparison_stored_but_unacknowledged_before_a_reload_is_stored_once(page_for, project, rater):
    make_images(project, 6)
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=2)
    page = page_for(rater)
    submits = FlakySubmits(page, "**/api/v1/pair-assignments/*/submit", lambda n: "stored" if n == 1 else "503")
    page.goto("/projects/realqa-test/compare/")
    first = _wait_for_pair(page, "")

    page.keyboard.press("4")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#save-status:has-text('{OFFLINE}')")
    submits.wait_for_attempts(page, 2)
    page.unroute("**/api/v1/pair-assignments/*/submit")
    page.reload()

    _wait_for_pair(page, first)
    [comparison] = Comparison.objects.filter(rater=rater)
    assert comparison.assignment_id == int(first) and comparison.level == "better"
    assert page.evaluate(UNSENT) == []


def test_a_description_given_during_an_outage_is_stored_once_when_it_is_back(page_for, project, rater):
    make_images(project, 2)
    description_setup_save(project=project, enabled=True, raters_per_image=1)
    page = page_for(rater)
    outage = {"on": True}
    submits = FlakySubmits(page, "**/api/v1/description-leases/*/submit", lambda n: "503" if outage["on"] else None)
    page.goto("/projects/realqa-test/describe/")
    page.wait_for_function("() => { const p = document.getElementById('photo'); return p.getAttribute('src') && p.complete; }")
    src = page.get_attribute("#photo", "src")

    page.keyboard.press("t")
    page.keyboard.type("Sharp and clean, the colours natural, nothing to complain about.")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#save-status:has-text('{OFFLINE}')")
    submits.wait_for_attempts(page, 3)
    assert DescriptionAnnotation.objects.count() == 0
    outage["on"] = False

    page.wait_for_function("previous => document.getElementById('photo').getAttribute('src') !== previous", arg=src)
    [description] = DescriptionAnnotation.objects.filter(rater=rater)
    assert description.detail == "Sharp and clean, the colours natural, nothing to complain about." and description.brief == []
    assert set(submits.keys) == {description.idempotency_key}
    assert page.is_hidden("#save-status")
