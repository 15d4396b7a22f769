"""The region and description pages in a real Chromium: a box drawn with the mouse, moved, resized, tagged
with a number key and noted, another drawn and deleted, the region questions answered, all submitted with
Enter, and the stored box is where it was drawn; a description given with the keyboard alone."""

from __future__ import annotations

import pytest

from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from tests.conftest import make_images

TOLERANCE = 0.01  # of the photo's side: a few screen pixels


def _wait_for_photo(page) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => { const p = document.getElementById('photo'); return p.getAttribute('src') && p.complete && p.naturalWidth > 0; }")
    return page.get_attribute("#photo", "src")


def _drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def test_a_rater_draws_moves_resizes_tags_and_notes_a_box_and_it_is_stored_where_it_was_drawn(page_for, project, rater):
    make_images(project, 2)
    questions = [
        {"key": "subject_sharp", "text": "Is the main subject sharp?", "kind": "yes_no"},
        {"key": "worst", "text": "Which region is the worst?", "kind": "region"},
    ]
    grounding_setup_save(project=project, enabled=True, raters_per_image=1, region_questions=questions)
    page = page_for(rater)
    page.goto("/projects/realqa-test/regions/")
    first_src = _wait_for_photo(page)
    page.wait_for_function("() => document.getElementById('frame').clientWidth > 200")
    area = page.locator("#overlay").bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return area["x"] + fx * area["width"], area["y"] + fy * area["height"]

    _drag(page, at(0.2, 0.2), at(0.5, 0.6))  # draw
    assert page.locator(".box:not(.preview)").count() == 1
    _drag(page, at(0.35, 0.4), at(0.45, 0.45))  # move by (+0.1, +0.05): now 0.3, 0.25 - 0.6, 0.65
    handle = page.locator(".box.selected .handle.se").bounding_box()
    _drag(page, (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2), at(0.7, 0.8))  # resize
    page.keyboard.press("2")  # the second tag: noise
    assert "noise" in page.inner_text("#box-list")

    _drag(page, at(0.05, 0.85), at(0.15, 0.95))  # a second box, then deleted
    assert page.locator(".box:not(.preview)").count() == 2
    page.keyboard.press("Delete")
    assert page.locator(".box:not(.preview)").count() == 1

    page.click('.question[data-key="subject_sharp"] .option[data-value="no"]')
    page.select_option('.question[data-key="worst"] select', "0")
    page.keyboard.press("Escape")  # leave the list
    page.keyboard.press("Tab")  # select the remaining box
    page.keyboard.press("n")
    page.keyboard.type("grainy sky")
    page.keyboard.press("Enter")
    page.wait_for_function("previous => document.getElementById('photo').getAttribute('src') !== previous", arg=first_src)

    stored = RegionAnnotation.objects.get()
    [entry] = stored.boxes
    assert entry["tag"] == "noise" and entry["note"] == "grainy sky"
    assert entry["box"] == pytest.approx([0.3, 0.25, 0.7, 0.8], abs=TOLERANCE)
    assert stored.answers == {"subject_sharp": "no", "worst": 0}
    assert stored.rater == rater and stored.seconds_spent is not None


def test_a_rater_describes_a_photo_with_the_keyboard_alone(page_for, project, rater):
    make_images(project, 2)
    description_setup_save(project=project, enabled=True, raters_per_image=1)
    page = page_for(rater)
    page.goto("/projects/realqa-test/describe/")
    first_src = _wait_for_photo(page)

    keyboard = page.keyboard
    keyboard.press("ArrowDown")  # noise
    keyboard.press("3")  # obvious
    for _ in range(3):
        keyboard.press("ArrowDown")  # compression, brighten, darken
    keyboard.press("1")  # slight
    keyboard.press("ArrowUp")  # brighten: ticked without a severity, then unticked
    keyboard.press(" ")
    keyboard.press(" ")
    keyboard.press("t")
    keyboard.type("A dim street at night; the sky is grainy and the shadows are crushed.")
    keyboard.press("Enter")
    page.wait_for_function("previous => document.getElementById('photo').getAttribute('src') !== previous", arg=first_src)

    stored = DescriptionAnnotation.objects.get()
    assert stored.brief == [{"distortion": "noise", "severity": "obvious"}, {"distortion": "darken", "severity": "slight"}]
    assert stored.detail == "A dim street at night; the sky is grainy and the shadows are crushed."
    # The next photo starts with nothing ticked.
    assert page.locator(".distortion.ticked").count() == 0
