"""The comparison page in a real Chromium: a rater opens it from the home page, answers pairs with the keyboard
alone (a number key, the arrows, Enter), the next pair appears already loaded, and the database holds exactly
those answers, each with the photos on the sides the rater saw them."""

from __future__ import annotations

from annotation_site.comparisons.models import Comparison, PairAssignment
from annotation_site.comparisons.services import comparison_setup_save
from tests.conftest import make_images


def _wait_for_pair(page, previous: str) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        """previous => {
            const app = document.getElementById('app');
            const images = [document.getElementById('left'), document.getElementById('right')];
            return app.dataset.assignment && app.dataset.assignment !== previous
                && images.every((i) => i.complete && i.naturalWidth > 0);
        }""",
        arg=previous,
    )
    return page.get_attribute("#app", "data-assignment")


def _shown(page) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return page.get_attribute("#left", "src"), page.get_attribute("#right", "src")


def test_a_rater_compares_pairs_by_keyboard_and_each_answer_is_stored_as_seen(page_for, project, rater):
    images = make_images(project, 6)
    urls = {image.display.url: image.pk for image in images}
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=2)
    page = page_for(rater)

    page.goto("/")
    page.click("a.task-link[href='/projects/realqa-test/compare/']")
    first = _wait_for_pair(page, "")
    assert page.inner_text("#question") == "Compared with the left photo, how is the quality of the right photo?"
    left, right = _shown(page)

    page.keyboard.press("Enter")  # nothing chosen yet: refused on the page, nothing sent
    page.wait_for_selector("#errors:not([hidden])")
    assert "Choose an answer" in page.inner_text("#errors")
    page.keyboard.press("4")  # right better
    page.keyboard.press("Enter")
    second = _wait_for_pair(page, first)
    left2, right2 = _shown(page)

    page.keyboard.press("ArrowLeft")  # from nothing: left better
    page.keyboard.press("ArrowLeft")  # left much better
    assert page.get_attribute(".levels .option.selected", "data-level") == "inferior"
    page.keyboard.press("Enter")
    _wait_for_pair(page, second)

    stored = list(Comparison.objects.filter(rater=rater).order_by("id"))
    assert [(c.first_image_id, c.second_image_id, c.level) for c in stored] == [
        (urls[left], urls[right], "better"),
        (urls[left2], urls[right2], "inferior"),
    ]
    # The time is recorded, in milliseconds; a fast keyboard answer may honestly take almost none.
    assert all(c.seconds_spent is not None and c.seconds_spent >= 0 for c in stored)
    assert PairAssignment.objects.filter(rater=rater, status="submitted").count() == 2
