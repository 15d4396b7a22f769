from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation_site.images.models import GoldAnswer, Image
from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.predictions.services import prediction_store
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.models import Membership
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeling_project(project):  # type: ignore[no-untyped-def]
    project.overlap = project.max_overlap = 2
    project.gold_rate = 0
    project.save()
    make_images(project, 3)
    return project


def _raters(count: int) -> list:
    return [rater_create(username=f"r{i}", password="pw-123456") for i in range(count)]


def _next(client, slug: str = "realqa-test", **body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/projects/{slug}/next", body, format="json")


def _submit(api, assignment_id: int, labels: dict | None = None, **body):  # type: ignore[no-untyped-def]
    return api.post(
        f"/api/v1/assignments/{assignment_id}/submit", {"labels": labels or REALQA_LABELS, **body}, format="json"
    )


def test_next_gives_an_assignment_with_the_photo_and_its_size(labeling_project, rater):
    response = _next(api_client_for(rater))
    assert response.status_code == 200
    body = response.json()
    assert body["phase"] == "labeling" and body["schema_version"] == 1
    assert body["image"]["url"].startswith("/media/images/") and body["image"]["width"] == 96
    assert "gold" not in str(body) and "prediction" not in body


def test_submit_stores_the_labels_and_answers_201_with_the_next_assignment(labeling_project, rater):
    client = api_client_for(rater)
    first = _next(client).json()

    response = _submit(client, first["id"], idempotency_key="a-1", seconds_spent=12.5, client={"screen": "1920x1080"})

    assert response.status_code == 201
    body = response.json()
    assert body["next"]["id"] != first["id"] and body["next"]["image"]["id"] != first["image"]["id"]
    annotation = Annotation.objects.get(pk=body["annotation"]["id"])
    assert annotation.values["clarity"] == "good" and annotation.seconds_spent == 12.5
    assert annotation.client_info == {"screen": "1920x1080"}
    assert Assignment.objects.get(pk=first["id"]).status == "submitted"
    assert Image.objects.get(pk=first["image"]["id"]).label_count == 1


def test_a_retried_submit_with_the_same_key_stores_nothing_twice(labeling_project, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    stored = _submit(client, first["id"], idempotency_key="retry-me").json()

    again = _submit(client, first["id"], idempotency_key="retry-me")

    assert again.status_code == 200
    assert again.json()["annotation"] == {"id": stored["annotation"]["id"], "replayed": True}
    assert again.json()["next"]["id"] == stored["next"]["id"]
    assert Annotation.objects.count() == 1


def test_invalid_labels_get_400_with_a_message_per_field_and_nothing_is_stored(labeling_project, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    labels = {**REALQA_LABELS, "clarity": "crisp", "quality": float(11)}
    labels.pop("exposure")

    response = _submit(client, first["id"], labels)

    assert response.status_code == 400
    errors = response.json()["labels"]
    assert set(errors) == {"clarity", "quality", "exposure"}
    assert "this field is required" in errors["exposure"]
    assert Annotation.objects.count() == 0
    assert Assignment.objects.get(pk=first["id"]).status == "leased"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"labels": REALQA_LABELS, "idempotency": "typo"}, "idempotency"),
        ({"labels": "not an object"}, "labels"),
        ({"labels": REALQA_LABELS, "seconds_spent": "slow"}, "seconds_spent"),
        ({"labels": REALQA_LABELS, "seconds_spent": -1}, "seconds_spent"),
        ({}, "labels"),
    ],
)
def test_a_malformed_body_is_refused_naming_the_field(labeling_project, rater, body, field):
    client = api_client_for(rater)
    first = _next(client).json()
    response = client.post(f"/api/v1/assignments/{first['id']}/submit", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_non_finite_numbers_in_json_are_refused(labeling_project, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    raw = '{"labels": {"quality": NaN}}'
    response = client.post(f"/api/v1/assignments/{first['id']}/submit", raw, content_type="application/json")
    assert response.status_code == 400


def test_a_rater_cannot_submit_or_skip_another_raters_assignment(labeling_project):
    alice, bob = _raters(2)
    mine = _next(api_client_for(alice)).json()
    thief = api_client_for(bob)
    assert _submit(thief, mine["id"]).status_code == 404
    assert thief.post(f"/api/v1/assignments/{mine['id']}/skip", {"reason": "cannot_judge"}, format="json").status_code == 404
    assert Annotation.objects.count() == 0


def test_no_image_gets_more_raters_than_the_overlap_and_no_rater_sees_an_image_twice(labeling_project):
    raters = _raters(3)
    seen: dict[int, list[int]] = {}
    for rater in raters:
        client = api_client_for(rater)
        response = _next(client)
        while response.status_code == 200:
            assignment = response.json()
            seen.setdefault(rater.pk, []).append(assignment["image"]["id"])
            response = _submit(client, assignment["id"])
            response = _next(client) if response.json()["next"] is None else _wrap(response.json()["next"])
        assert response.status_code == 204 and response["X-RealQA-Reason"] == "done"
    per_image: dict[int, int] = {}
    for images in seen.values():
        assert len(images) == len(set(images))
        for image_id in images:
            per_image[image_id] = per_image.get(image_id, 0) + 1
    assert sorted(per_image.values()) == [2, 2, 2]
    assert raters[2].pk not in seen  # the first two raters filled every image


class _wrap:
    """A submit's `next` seen as if it came from the next endpoint."""

    status_code = 200

    def __init__(self, payload: dict) -> None:
        self._payload = payload

    def json(self) -> dict:
        return self._payload


def test_the_page_prefetches_a_second_assignment_and_submit_hands_it_over(labeling_project, rater):
    client = api_client_for(rater)
    current = _next(client).json()
    assert _next(client).json()["id"] == current["id"]  # asking again resumes the lease on screen
    prefetched = _next(client, exclude=[current["id"]]).json()
    assert prefetched["id"] != current["id"]
    assert _next(client, exclude=[current["id"], prefetched["id"]]).status_code == 204

    handed_over = _submit(client, current["id"]).json()["next"]

    assert handed_over["id"] == prefetched["id"]


def test_an_abandoned_lease_returns_the_image_to_the_pool(labeling_project):
    labeling_project.overlap = labeling_project.max_overlap = 1
    labeling_project.save()
    alice, bob = _raters(2)
    for _ in range(3):
        _next(api_client_for(alice), exclude=[a.id for a in Assignment.objects.filter(rater=alice)])
    assert Assignment.objects.filter(rater=alice).count() == 2  # two leases at most
    bob_client = api_client_for(bob)
    bob_first = _next(bob_client).json()
    assert _next(bob_client, exclude=[bob_first["id"]]).status_code == 204  # the third image is bob's; the rest are alice's

    Assignment.objects.filter(rater=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = _next(bob_client, exclude=[bob_first["id"]])

    assert again.status_code == 200
    assert again.json()["image"]["id"] in set(Assignment.objects.filter(rater=alice).values_list("image_id", flat=True))
    assert set(Assignment.objects.filter(rater=alice).values_list("status", flat=True)) == {"expired"}


def test_a_late_answer_is_kept_while_the_image_has_room_and_refused_once_it_is_full(labeling_project):
    labeling_project.overlap = labeling_project.max_overlap = 1
    labeling_project.save()
    Image.objects.order_by("-id").first().delete()  # two images: the late one and the slow one
    alice, bob = _raters(2)
    alice_client = api_client_for(alice)
    late = _next(alice_client).json()
    Assignment.objects.filter(pk=late["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _submit(alice_client, late["id"]).status_code == 201  # nobody took the image meanwhile

    slow = _next(alice_client).json()
    Assignment.objects.filter(pk=slow["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    bob_client = api_client_for(bob)
    taken = _next(bob_client).json()
    assert taken["image"]["id"] == slow["image"]["id"]
    assert _submit(bob_client, taken["id"]).status_code == 201

    response = _submit(alice_client, slow["id"])
    assert response.status_code == 409 and "ran out" in response.json()["detail"]
    assert Image.objects.get(pk=slow["image"]["id"]).label_count == 1


def test_a_skip_keeps_the_reason_and_returns_the_image_to_the_pool(labeling_project):
    alice, bob, carol = _raters(3)
    skipped = _next(api_client_for(alice)).json()
    response = api_client_for(alice).post(f"/api/v1/assignments/{skipped['id']}/skip", {"reason": "broken_image"}, format="json")
    assert response.status_code == 200 and response.json()["image"]["id"] != skipped["image"]["id"]
    assignment = Assignment.objects.get(pk=skipped["id"])
    assert (assignment.status, assignment.skip_reason) == ("skipped", "broken_image")
    assert Image.objects.get(pk=skipped["image"]["id"]).assigned_count == 0

    bad = api_client_for(bob).post(f"/api/v1/assignments/{skipped['id']}/skip", {"reason": "boring"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()


def test_gold_images_are_mixed_in_looking_like_any_other_and_are_scored(labeling_project, rater):
    [gold_image] = make_images(labeling_project, 1, start_seed=5000)
    gold_image.is_gold = True
    gold_image.save()
    GoldAnswer.objects.create(image=gold_image, values={"clarity": "excellent", "quality": 8.0}, tolerances={"quality": 1})
    labeling_project.gold_rate = 1.0
    labeling_project.save()
    client = api_client_for(rater)

    assignment = _next(client).json()

    assert assignment["image"]["id"] == gold_image.pk and assignment["phase"] == "labeling"
    response = _submit(client, assignment["id"], {**REALQA_LABELS, "clarity": "good", "quality": 7.5})
    assert response.status_code == 201 and "feedback" not in response.json()
    annotation = Annotation.objects.get(pk=response.json()["annotation"]["id"])
    assert annotation.gold_score == 1.0  # one step off on clarity and half a point on quality are within tolerance
    assert Image.objects.get(pk=gold_image.pk).label_count == 0


def test_a_new_rater_passes_a_qualification_round_with_feedback_before_real_images(labeling_project, rater):
    labeling_project.qualification_size = 2
    labeling_project.save()
    golds = make_images(labeling_project, 2, start_seed=6000)
    for image, clarity in zip(golds, ["bad", "excellent"]):
        image.is_gold = True
        image.save()
        GoldAnswer.objects.create(image=image, values={"clarity": clarity}, for_qualification=True, feedback="Look at the edges at 100%.")
    client = api_client_for(rater)

    first = _next(client).json()
    assert first["phase"] == "qualification" and first["image"]["id"] == golds[0].pk
    wrong = _submit(client, first["id"], {**REALQA_LABELS, "clarity": "good"}).json()
    assert wrong["feedback"]["correct"] == {"clarity": False}
    assert wrong["feedback"]["expected"] == {"clarity": "bad"} and wrong["feedback"]["message"].startswith("Look")
    assert wrong["next"]["phase"] == "qualification"
    right = _submit(client, wrong["next"]["id"], {**REALQA_LABELS, "clarity": "excellent"}).json()

    assert right["feedback"]["status"] == "failed"  # 1 of 2 is below the 0.7 pass share
    assert right["next"] is None and right["next_reason"] == "failed_qualification"
    closed = _next(client)
    assert closed.status_code == 403 and "qualification" in closed.json()["detail"]


def test_a_rater_who_passes_qualification_moves_on_to_real_images(labeling_project, rater):
    labeling_project.qualification_size = 1
    labeling_project.save()
    [gold] = make_images(labeling_project, 1, start_seed=6100)
    gold.is_gold = True
    gold.save()
    GoldAnswer.objects.create(image=gold, values={"clarity": "good"}, for_qualification=True)
    client = api_client_for(rater)
    first = _next(client).json()
    body = _submit(client, first["id"]).json()
    assert body["feedback"]["status"] == "active"
    assert body["next"]["phase"] == "labeling" and not Image.objects.get(pk=body["next"]["image"]["id"]).is_gold
    assert Membership.objects.get(rater=rater).status == "active"


def test_adaptive_overlap_asks_for_more_raters_while_the_overall_scores_disagree(labeling_project):
    labeling_project.overlap, labeling_project.max_overlap, labeling_project.target_ci_half_width = 2, 4, 0.5
    labeling_project.save()
    Image.objects.filter(project=labeling_project).exclude(pk=Image.objects.order_by("id").first().pk).delete()
    raters = _raters(5)
    scores = [(2.0, 2.0), (9.0, 9.0), (5.0, 5.0), (5.0, 5.0)]
    for rater, (quality, aesthetics) in zip(raters, scores):
        client = api_client_for(rater)
        assignment = _next(client).json()
        assert _submit(client, assignment["id"], {**REALQA_LABELS, "quality": quality, "aesthetics": aesthetics}).status_code == 201
    image = Image.objects.get()
    assert image.label_count == 4  # the first two disagreed, so a third and a fourth rater were asked
    assert _next(api_client_for(raters[4])).status_code == 204  # the cap of 4 is reached


def test_adaptive_overlap_stops_at_the_base_overlap_when_raters_agree(labeling_project):
    labeling_project.overlap, labeling_project.max_overlap = 2, 4
    labeling_project.save()
    Image.objects.filter(project=labeling_project).exclude(pk=Image.objects.order_by("id").first().pk).delete()
    raters = _raters(3)
    for rater in raters[:2]:
        client = api_client_for(rater)
        assignment = _next(client).json()
        _submit(client, assignment["id"], {**REALQA_LABELS, "quality": 6.0, "aesthetics": 6.2})
    assert _next(api_client_for(raters[2])).status_code == 204


def test_the_daily_cap_stops_a_rater_for_the_day(labeling_project, rater):
    labeling_project.daily_cap = 1
    labeling_project.save()
    client = api_client_for(rater)
    first = _next(client).json()
    assert _submit(client, first["id"]).json()["next_reason"] == "daily_cap"
    assert _next(client)["X-RealQA-Reason"] == "daily_cap"


def test_the_models_guess_is_shown_only_when_the_project_turns_pre_annotation_on(labeling_project, rater):
    for image in Image.objects.all():
        prediction_store(image=image, model_version="m@1", values={"quality": {"value": 6.5, "uncertainty": 0.3}})
    client = api_client_for(rater)
    assert "prediction" not in _next(client).json()
    labeling_project.pre_annotation = True
    labeling_project.save()
    assert _next(client).json()["prediction"]["values"]["quality"]["value"] == 6.5


def test_with_pre_annotation_raters_see_the_projects_current_model_not_a_newer_row_of_another(labeling_project, rater):
    from annotation_site.predictions.models import ModelRun

    ModelRun.objects.create(project=labeling_project, model_version="m@1", checkpoint="x", images_used=1, labels_used=1)
    for image in Image.objects.all():
        prediction_store(image=image, model_version="m@1", values={"quality": {"value": 6.5, "uncertainty": 0.3}})
        prediction_store(image=image, model_version="qwen2-vl:abc", values={"quality": {"value": 2.0, "uncertainty": 0.1}})
    labeling_project.pre_annotation = True
    labeling_project.save()

    shown = _next(api_client_for(rater)).json()["prediction"]

    assert shown["model_version"] == "m@1" and shown["values"]["quality"]["value"] == 6.5


def test_an_excluded_rater_gets_no_more_images(labeling_project, rater):
    client = api_client_for(rater)
    _next(client)
    membership_exclude(project=labeling_project, rater_id=rater.pk, by=rater, reason="test")
    assert _next(client).status_code == 403


def test_a_closed_project_is_not_acknowledged_to_outsiders(labeling_project, rater):
    labeling_project.open_to_all_raters = False
    labeling_project.save()
    assert _next(api_client_for(rater)).status_code == 404
    assert _next(api_client_for(rater), slug="no-such-project").status_code == 404


def test_anonymous_callers_are_refused(labeling_project, client):
    assert client.post("/api/v1/projects/realqa-test/next").status_code in (401, 403)


def test_the_openapi_schema_describes_the_rater_endpoints(admin_client):
    response = admin_client.get("/api/v1/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/api/v1/projects/{slug}/next", "/api/v1/assignments/{assignment_id}/submit", "/api/v1/assignments/{assignment_id}/skip"):
        assert path in text


def test_an_idempotency_key_reused_for_another_assignment_is_refused_and_stores_nothing(labeling_project, rater):
    client = api_client_for(rater)
    first = _next(client).json()
    second = _submit(client, first["id"], idempotency_key="same-key").json()["next"]

    response = _submit(client, second["id"], idempotency_key="same-key")

    assert response.status_code == 409 and f"assignment #{first['id']}" in response.json()["detail"]
    assert Annotation.objects.count() == 1
    assert Assignment.objects.get(pk=second["id"]).status == "leased"  # still the rater's to submit
    assert _submit(client, second["id"], idempotency_key="fresh-key").status_code == 201
