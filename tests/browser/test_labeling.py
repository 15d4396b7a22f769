"""A rater in a real Chromium: qualification with feedback, three photos labeled with the keyboard
alone, one skipped, and the database holds exactly those labels."""

from __future__ import annotations

from annotation_site.images.models import GoldAnswer
from annotation_site.labeling.models import Annotation, Assignment
from tests.conftest import make_images

EXPECTED = {
    "clarity": "good",
    "exposure": "well",
    "saturation": "natural",
    "subject_background": "Subject: a cat; background: a sofa",
    "subject_integrity": "complete",
    "subject_clutter": "uncluttered",
    "background_clutter": "cluttered",
    "level_shot": "level",
    "eye_catching": 7,
    "composition": 10,
    "quality": 6.8,
    "aesthetics": 6.1,
}


def _label_by_keyboard(page, quality: str) -> None:  # type: ignore[no-untyped-def]
    keyboard = page.keyboard
    for key in "432":  # clarity good, exposure well exposed, saturation natural
        keyboard.press(key)
    keyboard.type("Subject: a cat; background: a sofa")
    keyboard.press("Tab")
    for key in "3121":  # integrity complete, subject uncluttered, background cluttered, level
        keyboard.press(key)
    keyboard.press("7")
    keyboard.type("The eyes meet the camera.")
    keyboard.press("Tab")
    keyboard.press("0")  # composition 10
    keyboard.type("Centred, a little tight.")
    keyboard.press("Tab")
    keyboard.type(quality)
    keyboard.press("Tab")
    keyboard.type("6.1")
    keyboard.press("Enter")


def _wait_for_new_photo(page, previous: str) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "previous => { const p = document.getElementById('photo'); const src = p.getAttribute('src'); return src && src !== previous && p.complete; }",
        arg=previous,
    )
    return page.get_attribute("#photo", "src")


def test_a_rater_qualifies_labels_three_photos_by_keyboard_alone_and_skips_one(page_for, project, rater):
    project.overlap = project.max_overlap = 1
    project.gold_rate = 0
    project.qualification_size = 1
    project.save()
    [gold] = make_images(project, 1, start_seed=9000)
    gold.is_gold = True
    gold.save()
    GoldAnswer.objects.create(image=gold, values={"clarity": "good", "quality": 7.0}, for_qualification=True, feedback="Well seen.")
    make_images(project, 5)
    page = page_for(rater)

    page.goto("/projects/realqa-test/label/")
    src = _wait_for_new_photo(page, "")
    assert page.is_visible("#phase") and page.inner_text("#phase") == "Qualification"
    _label_by_keyboard(page, "6.8")
    page.wait_for_selector("#feedback:not([hidden])")
    assert "2 of 2 right" in page.inner_text("#feedback-title")
    page.keyboard.press("Enter")

    for quality in ("6.8", "5.5", "7"):
        src = _wait_for_new_photo(page, src)
        assert not page.is_visible("#phase")
        _label_by_keyboard(page, quality)
    src = _wait_for_new_photo(page, src)
    page.keyboard.press("x")
    page.wait_for_selector("#skip-dialog:not([hidden])")
    page.keyboard.press("1")
    _wait_for_new_photo(page, src)

    regular = Annotation.objects.filter(assignment__kind="regular").order_by("id")
    assert [a.values["quality"] for a in regular] == [6.8, 5.5, 7.0]
    for annotation in regular:
        assert {k: v for k, v in annotation.values.items() if k != "quality"} == {k: v for k, v in EXPECTED.items() if k != "quality"}
        assert annotation.reasons == {"eye_catching": "The eyes meet the camera.", "composition": "Centred, a little tight."}
        assert annotation.seconds_spent is not None and annotation.seconds_spent > 0
    qualification = Annotation.objects.get(assignment__kind="qualification")
    assert qualification.gold_score == 1.0 and qualification.image_id == gold.pk
    skipped = Assignment.objects.get(status="skipped")
    assert skipped.skip_reason == "cannot_judge" and skipped.rater == rater
    assert Annotation.objects.count() == 4


# Holds back every prefetch (a /next with `exclude`) until the test opens the gate, and records the order in
# which the page sends its requests.
_GATED_PREFETCH = """
window.__sent = [];
let openGate;
window.__gate = new Promise((resolve) => { openGate = resolve; });
window.__openGate = () => openGate();
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  const isPrefetch = String((init && init.body) || "").includes("exclude");
  if (isPrefetch) await window.__gate;
  window.__sent.push((isPrefetch ? "prefetch " : "") + url);
  return realFetch(url, init);
};
"""


def test_a_skip_pressed_while_the_next_photo_is_still_being_fetched_waits_for_it_and_does_not_end_early(page_for, project, rater):
    # The server, asked by the skip before the prefetch's lease was stored, could answer "nothing left"
    # while the last photo was already leased to this rater: the page then said it was done.
    project.overlap = project.max_overlap = 1
    project.gold_rate = 0
    project.save()
    make_images(project, 2)
    page = page_for(rater)
    page.add_init_script(_GATED_PREFETCH)

    page.goto("/projects/realqa-test/label/")
    first = _wait_for_new_photo(page, "")
    page.keyboard.press("x")
    page.wait_for_selector("#skip-dialog:not([hidden])")
    page.keyboard.press("1")
    page.wait_for_timeout(300)
    assert not any("/skip" in url for url in page.evaluate("window.__sent")), "the skip went out before the prefetch"

    page.evaluate("window.__openGate()")
    second = _wait_for_new_photo(page, first)
    assert second != first and not page.is_visible("#done")
    sent = page.evaluate("window.__sent")
    skip_at = next(i for i, url in enumerate(sent) if "/skip" in url)
    assert any(url.startswith("prefetch ") for url in sent[:skip_at])
    assert Assignment.objects.get(status="skipped").rater == rater
    assert Assignment.objects.filter(rater=rater, status="leased").count() == 1
