"""Pairwise comparisons through the rater API and the services: pairs by each strategy, leases, answers stored
once in the pair's order, clear errors, and the inferred scale."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from scipy.stats import spearmanr

from annotation_site.comparisons.models import Comparison, ComparisonSetup, Pair, PairAssignment
from annotation_site.comparisons.selectors import comparison_scale, comparison_scale_fit
from annotation_site.comparisons.services import SetupError, comparison_setup_save, pairs_generate
from annotation_site.labeling.services import annotation_create
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db

LEVELS = ["inferior", "worse", "similar", "better", "superior"]


@pytest.fixture
def setup(project):  # type: ignore[no-untyped-def]
    make_images(project, 8)
    return comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=3)


def _next(client, slug: str = "realqa-test", **body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/projects/{slug}/compare/next", body, format="json")


def _submit(api, assignment_id: int, **body):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/pair-assignments/{assignment_id}/submit", body, format="json")


def test_next_gives_two_different_photos_side_by_side_with_the_question(setup, rater):
    response = _next(api_client_for(rater))
    assert response.status_code == 200
    body = response.json()
    assert body["left"]["id"] != body["right"]["id"]
    assert body["left"]["url"].startswith("/media/images/") and body["right"]["width"] == 96
    assert body["question"] == "Compared with the left photo, how is the quality of the right photo?"
    assert body["levels"] == LEVELS


def test_an_answer_is_stored_once_in_the_pairs_order_whichever_side_each_photo_was_on(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()

    response = _submit(client, shown["id"], level="better", idempotency_key="k-1", seconds_spent=3.5)

    assert response.status_code == 201
    comparison = Comparison.objects.get(pk=response.json()["comparison"]["id"])
    assert (comparison.first_image_id, comparison.second_image_id) == (shown["left"]["id"], shown["right"]["id"])
    assert comparison.level == "better" and comparison.seconds_spent == 3.5
    right_is_high = shown["right"]["id"] > shown["left"]["id"]
    assert comparison.preference_high == (0.75 if right_is_high else 0.25)
    pair = comparison.pair
    assert pair.image_low_id < pair.image_high_id and pair.answer_count == 1
    assert PairAssignment.objects.get(pk=shown["id"]).status == "submitted"
    assert response.json()["next"]["id"] != shown["id"]


def test_a_retried_submit_with_the_same_key_stores_nothing_twice(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    first = _submit(client, shown["id"], level="similar", idempotency_key="again").json()

    retry = _submit(client, shown["id"], level="similar", idempotency_key="again")

    assert retry.status_code == 200
    assert retry.json()["comparison"] == {"id": first["comparison"]["id"], "replayed": True}
    assert retry.json()["next"]["id"] == first["next"]["id"]
    assert Comparison.objects.count() == 1


def test_a_second_answer_on_the_same_assignment_is_a_conflict(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    _submit(client, shown["id"], level="worse")
    again = _submit(client, shown["id"], level="better")
    assert again.status_code == 409 and "already submitted" in again.json()["detail"]
    assert Comparison.objects.count() == 1


def test_an_idempotency_key_used_on_another_pair_is_a_conflict_and_nothing_is_stored(setup, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    stored = _submit(client, first["id"], level="worse", idempotency_key="same").json()
    response = _submit(client, stored["next"]["id"], level="better", idempotency_key="same")
    assert response.status_code == 409 and f"pair assignment #{first['id']}" in response.json()["detail"]
    assert Comparison.objects.count() == 1
    assert PairAssignment.objects.get(pk=stored["next"]["id"]).status == "leased"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"level": "much better"}, "level"),
        ({}, "level"),
        ({"level": "better", "seconds_spent": -2}, "seconds_spent"),
        ({"level": "better", "levle": "typo"}, "levle"),
        ({"level": "better", "client": "not an object"}, "client"),
    ],
)
def test_a_malformed_answer_is_refused_naming_the_field_and_nothing_is_stored(setup, rater, body, field):
    client = api_client_for(rater)
    shown = _next(client).json()
    response = _submit(client, shown["id"], **body)
    assert response.status_code == 400 and field in response.json()
    assert Comparison.objects.count() == 0
    assert PairAssignment.objects.get(pk=shown["id"]).status == "leased"


def test_a_non_object_body_and_another_raters_assignment_get_clear_errors(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    raw = client.post(f"/api/v1/pair-assignments/{shown['id']}/submit", "[1, 2]", content_type="application/json")
    assert raw.status_code == 400 and "expected a JSON object" in str(raw.json())
    other = api_client_for(rater_create(username="other", password="pw-123456"))
    stolen = _submit(other, shown["id"], level="better")
    assert stolen.status_code == 404 and f"no pair assignment #{shown['id']} of yours" in stolen.json()["detail"]
    assert _submit(client, 10**12, level="better").status_code == 404


def test_the_page_holds_two_leases_and_asking_again_returns_the_same_pair(setup, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    assert _next(client).json()["id"] == first["id"]
    prefetched = _next(client, exclude=[first["id"]]).json()
    assert prefetched["id"] != first["id"]
    third = _next(client, exclude=[first["id"], prefetched["id"]])
    assert third.status_code == 204 and third["X-RealQA-Reason"] == "lease_limit"


def test_random_pairs_give_each_photo_its_comparisons_and_never_pair_two_photos_twice(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    answers = 0
    while shown is not None:
        body = _submit(client, shown["id"], level=LEVELS[answers % 5]).json()
        answers += 1
        shown = body["next"]
        assert answers < 40
    assert body["next_reason"] == "done"
    pairs = list(Pair.objects.values_list("image_low_id", "image_high_id"))
    assert len(pairs) == len(set(pairs)) == answers
    per_image = Counter(image for pair in pairs for image in pair)
    assert set(per_image.values()) <= {2, 3} and sum(per_image.values()) >= 8 * 3 - 2


def test_a_rater_never_gets_a_pair_twice_and_each_pair_one_answer(project):
    make_images(project, 6)
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=2)
    raters = [rater_create(username=f"r{i}", password="pw-123456") for i in range(3)]
    clients = [api_client_for(r) for r in raters]
    for _ in range(6):
        for client in clients:
            shown = _next(client)
            if shown.status_code == 200:
                assert _submit(client, shown.json()["id"], level="similar").status_code == 201
    assert Comparison.objects.values("pair_id").distinct().count() == Comparison.objects.count()
    leases = Counter(PairAssignment.objects.values_list("pair_id", "rater_id"))
    assert set(leases.values()) == {1}
    # Six photos, two comparisons each: six pairs, or five when the random pairing leaves the last two photos
    # wanting a comparison with each other after they were already paired.
    assert Comparison.objects.count() == Pair.objects.count() in (5, 6)


def test_a_skipped_pair_goes_to_another_rater_but_never_back_to_the_skipper(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    response = client.post(f"/api/v1/pair-assignments/{shown['id']}/skip", {"reason": "cannot_judge"}, format="json")
    assert response.status_code == 200 and response.json()["id"] != shown["id"]
    skipped = PairAssignment.objects.get(pk=shown["id"])
    assert skipped.status == "skipped" and skipped.pair.assigned_count == 0
    other = api_client_for(rater_create(username="other", password="pw-123456"))
    assert _next(other).json()["id"] != shown["id"]
    bad = client.post(f"/api/v1/pair-assignments/{shown['id']}/skip", {"reason": "bored"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()


def test_an_abandoned_lease_returns_its_pair_and_a_late_answer_is_still_taken_while_there_is_room(setup, rater):
    client = api_client_for(rater)
    shown = _next(client).json()
    PairAssignment.objects.filter(pk=shown["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    other = api_client_for(rater_create(username="other", password="pw-123456"))
    # the other rater first takes the open pairs; the expired one returns once none is left
    seen = set()
    for _ in range(30):
        response = _next(other, exclude=list(seen))
        if response.status_code != 200:
            break
        seen.add(response.json()["id"])
        if PairAssignment.objects.get(pk=response.json()["id"]).pair_id == PairAssignment.objects.get(pk=shown["id"]).pair_id:
            break
        _submit(other, response.json()["id"], level="similar")
        seen.clear()
    assert PairAssignment.objects.get(pk=shown["id"]).status == "expired"
    late = _submit(client, shown["id"], level="better")
    assert late.status_code == 409 and "ran out" in late.json()["detail"]


def test_comparisons_are_closed_when_the_setup_is_off_and_refused_to_an_excluded_rater(project, rater):
    make_images(project, 4)
    client = api_client_for(rater)
    assert _next(client).status_code == 403
    comparison_setup_save(project=project, enabled=True)
    assert _next(client).status_code == 200
    membership_exclude(project=project, rater_id=rater.pk, by=None, reason="test")
    response = _next(client)
    assert response.status_code == 403 and "closed to you" in response.json()["detail"]
    assert _next(client, slug="no-such-project").status_code == 404


def test_the_setup_refuses_bad_values_naming_each_field(project):
    with pytest.raises(SetupError) as error:
        comparison_setup_save(project=project, criterion="sharpness", strategy="clever", comparisons_per_image=0)
    assert set(error.value.errors) == {"criterion", "strategy", "comparisons_per_image"}
    assert not ComparisonSetup.objects.exists()


def _rate(project, image, rater, quality: float) -> None:  # type: ignore[no-untyped-def]
    annotation_create(image=image, rater=rater, labels={**REALQA_LABELS, "quality": quality})


def test_anchor_mode_compares_every_photo_with_the_least_variable_photo_of_each_score_interval(project):
    images = make_images(project, 12)
    raters = [rater_create(username=f"a{i}", password="pw-123456") for i in range(2)]
    for k, image in enumerate(images):
        spread = 0.1 if k % 2 == 0 else 1.5  # even photos are the least variable in their interval
        for r, rater in enumerate(raters):
            _rate(project, image, rater, round(2 + (k // 2) * 1.4 + (spread if r else -spread) / 2, 1))
    setup = comparison_setup_save(project=project, enabled=True, strategy="anchors", comparisons_per_image=5)

    made = pairs_generate(project=project, seed=1)

    setup.refresh_from_db()
    assert setup.anchors_from == "ratings" and len(setup.anchors) == 5
    assert all(images.index(next(i for i in images if i.pk == a)) % 2 == 0 for a in setup.anchors)
    assert made == 10 + (12 - 5) * 5
    anchors = set(setup.anchors)
    for low, high in Pair.objects.values_list("image_low_id", "image_high_id"):
        assert low in anchors or high in anchors
    assert pairs_generate(project=project, seed=1) == 0  # all there: done


def test_anchor_mode_without_ratings_takes_five_photos_at_random(project):
    make_images(project, 7)
    setup = comparison_setup_save(project=project, enabled=True, strategy="anchors")
    assert pairs_generate(project=project, seed=3) == 10 + 2 * 5
    setup.refresh_from_db()
    assert setup.anchors_from == "random" and len(set(setup.anchors)) == 5
    assert set(Pair.objects.values_list("wanted", flat=True)) == {2}  # 10 comparisons over 5 anchors


def _answer_from_truth(client, truth: dict[int, float], limit: int) -> int:  # type: ignore[no-untyped-def]
    shown = _next(client)
    count = 0
    shown = shown.json() if shown.status_code == 200 else None
    while shown is not None and count < limit:
        difference = truth[shown["right"]["id"]] - truth[shown["left"]["id"]]
        level = LEVELS[int(np.digitize(difference, [-1.5, -0.5, 0.5, 1.5]))]
        body = _submit(client, shown["id"], level=level).json()
        shown = body["next"]
        count += 1
    return count


def test_active_selection_and_the_scale_recover_the_order_of_the_photos(project):
    images = make_images(project, 16)
    truth = {image.pk: float(k) * 0.6 for k, image in enumerate(images)}
    comparison_setup_save(project=project, enabled=True, strategy="active", comparisons_per_image=6)
    raters = [rater_create(username=f"s{i}", password="pw-123456") for i in range(2)]

    answered = sum(_answer_from_truth(api_client_for(r), truth, 60) for r in raters)

    assert answered >= 40
    assert set(Pair.objects.values_list("strategy", flat=True)) == {"active"}
    assert Pair.objects.values("batch").distinct().count() >= 2
    rows = comparison_scale(project=project)
    assert {row.image_id for row in rows} == set(truth)
    scores = {row.image_id: row.score for row in rows}
    assert spearmanr([scores[i] for i in truth], list(truth.values()))[0] >= 0.95
    assert all(row.ci_low < row.score < row.ci_high and row.n_comparisons > 0 for row in rows)
    assert rows == sorted(rows, key=lambda row: -row.score)


def test_the_scale_combines_absolute_scores_when_the_photos_have_them_and_leaves_out_excluded_raters(project):
    images = make_images(project, 8)
    truth = {image.pk: 2.0 + 0.8 * k for k, image in enumerate(images)}
    raters = [rater_create(username=f"m{i}", password="pw-123456") for i in range(2)]
    for image in images:
        for r, rater in enumerate(raters):
            _rate(project, image, rater, round(truth[image.pk] + (0.2 if r else -0.2), 1))
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=4)
    comparer = rater_create(username="comparer", password="pw-123456")
    _answer_from_truth(api_client_for(comparer), {k: v / 0.8 for k, v in truth.items()}, 40)

    fit = comparison_scale_fit(project=project)

    assert fit.unit == "mos" and fit.images_with_mos == 8 and fit.note == ""
    for row in fit.rows:
        assert abs(row.score - truth[row.image_id]) < 1.0  # in the ratings' units
    membership_exclude(project=project, rater_id=comparer.pk, by=None, reason="test")
    assert comparison_scale(project=project) == []


def test_the_staff_page_shows_the_scale_and_raters_cannot_open_it(setup, rater, admin_user):
    client = api_client_for(rater)
    shown = _next(client).json()
    _submit(client, shown["id"], level="superior")
    staff = Client()
    staff.force_login(admin_user)
    page = staff.get("/staff/projects/realqa-test/comparisons/")
    assert page.status_code == 200
    assert f'data-image="{shown["right"]["id"]}"' in page.content.decode()
    api = staff.get("/api/v1/projects/realqa-test/compare/scale")
    assert api.status_code == 200 and api.json()["unit"] == "latent" and len(api.json()["rows"]) == 2
    assert client.get("/api/v1/projects/realqa-test/compare/scale").status_code == 403
    rater_client = Client()
    rater_client.force_login(rater)
    assert rater_client.get("/staff/projects/realqa-test/comparisons/").status_code == 302


def test_the_home_page_links_the_comparison_page_only_when_it_is_on(project, rater):
    make_images(project, 3)
    browser = Client()
    browser.force_login(rater)
    assert "/projects/realqa-test/compare/" not in browser.get("/").content.decode()
    assert browser.get("/projects/realqa-test/compare/").status_code == 404
    comparison_setup_save(project=project, enabled=True)
    assert "/projects/realqa-test/compare/" in browser.get("/").content.decode()
    page = browser.get("/projects/realqa-test/compare/")
    assert page.status_code == 200 and b"compare-config" in page.content
