"""The region and description tasks through the rater API: which photo comes next, what is stored, and every
bad answer refused with its place named (never a 500, nothing half-written)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation_site.grounding.models import DescriptionAnnotation, GroundingLease, RegionAnnotation
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from annotation_site.grounding.taxonomy import SetupError
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.services import rater_create
from tests.annotation_site.grounding.conftest import next_lease, submit_description, submit_regions
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db

BOX = {"box": [0.1, 0.2, 0.5, 0.6], "tag": "blur", "note": "the face is soft"}


def _raters(count: int) -> list:
    return [rater_create(username=f"g{i}", password="pw-123456") for i in range(count)]


# ------------------------------------------------------------------------------------------ setups
def test_a_new_setup_has_the_default_tags_and_depictqas_twelve_distortions_at_five_severities(project):
    regions = grounding_setup_save(project=project, enabled=True)
    description = description_setup_save(project=project)
    assert regions.tags == ["blur", "noise", "over-exposure", "under-exposure", "artifact", "clutter"]
    assert description.distortions == [
        "blur", "noise", "compression", "brighten", "darken", "contrast_strengthen", "contrast_weaken",
        "saturate_strengthen", "saturate_weaken", "oversharpen", "pixelate", "quantization",
    ]
    assert description.severities == ["slight", "moderate", "obvious", "serious", "catastrophic"]
    assert not description.enabled


@pytest.mark.parametrize(
    ("kwargs", "place", "message"),
    [
        ({"tags": []}, "tags", "must have 1 to 10 entries"),
        ({"tags": ["blur", "blur"]}, "tags[1]", "listed twice"),
        ({"tags": ["blur", "a [b]"]}, "tags[1]", "may not contain"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "must have 1 to 10 entries"),
        ({"region_questions": [{"key": "Bad Key", "text": "?"}]}, "region_questions[0].key", "lower-case letters"),
        ({"region_questions": [{"key": "q", "text": "Why?", "kind": "essay"}]}, "region_questions[0].kind", "not one of yes_no, region"),
        ({"raters_per_image": 0}, "raters_per_image", "from 1 to 50"),
    ],
)
def test_a_bad_region_setup_is_refused_naming_the_entry(project, kwargs, place, message):
    with pytest.raises(SetupError) as caught:
        grounding_setup_save(project=project, **kwargs)
    assert message in caught.value.errors[place]


def test_a_bad_description_setup_is_refused_naming_the_entry(project):
    with pytest.raises(SetupError) as caught:
        description_setup_save(project=project, distortions=["blur", "Blur!"], severities=["only"])
    assert "lower-case letters" in caught.value.errors["distortions[1]"]


# ------------------------------------------------------------------------------------------ leases
def test_photos_go_out_least_answered_first_and_never_twice_to_one_rater(task_project):
    first, second, third = (api_client_for(r) for r in _raters(3))
    a = next_lease(first).json()
    b = next_lease(second).json()
    assert a["image"]["id"] != b["image"]["id"]  # a photo nobody holds comes before one somebody holds
    assert a["kind"] == "regions" and a["image"]["width"] == 96 and a["image"]["url"].startswith("/media/")
    submitted = submit_regions(first, a["id"], [BOX])
    assert submitted.status_code == 201
    seen = {a["image"]["id"], submitted.json()["next"]["image"]["id"]}
    assert len(seen) == 2
    # Asking again without excluding the lease on screen gives the same lease back.
    assert next_lease(third).json()["id"] == next_lease(third).json()["id"]


def test_a_photo_gets_no_more_raters_than_the_setup_asks_for(task_project):
    clients = [api_client_for(r) for r in _raters(7)]
    leased = [next_lease(c) for c in clients]
    assert [r.status_code for r in leased] == [200] * 6 + [204]  # 3 photos x 2 raters
    assert leased[-1]["X-RealQA-Reason"] == "done"


def test_an_expired_lease_returns_its_photo_to_the_pool(task_project):
    clients = [api_client_for(r) for r in _raters(7)]
    for client in clients[:6]:
        next_lease(client)
    GroundingLease.objects.filter(pk=GroundingLease.objects.order_by("id").first().pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert next_lease(clients[6]).status_code == 200


def test_the_region_and_description_tasks_lease_independently(task_project, rater):
    client = api_client_for(rater)
    regions = next_lease(client, "regions").json()
    description = next_lease(client, "description").json()
    assert description["kind"] == "description" and description["image"]["id"] == regions["image"]["id"]


def test_a_task_that_is_off_answers_404_and_an_excluded_rater_403(task_project, rater, admin_user):
    grounding_setup_save(project=task_project, enabled=False)
    client = api_client_for(rater)
    assert next_lease(client, "regions").status_code == 404
    membership_exclude(project=task_project, rater_id=rater.pk, by=admin_user)
    response = next_lease(client, "description")
    assert response.status_code == 403 and "closed to you" in response.json()["detail"]


def test_skipping_gives_the_photo_back_and_the_rater_never_gets_it_again(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    response = client.post(f"/api/v1/region-leases/{lease['id']}/skip", {"reason": "cannot_judge"}, format="json")
    assert response.status_code == 200 and response.json()["image"]["id"] != lease["image"]["id"]
    assert GroundingLease.objects.get(pk=lease["id"]).skip_reason == "cannot_judge"
    bad = client.post(f"/api/v1/region-leases/{lease['id']}/skip", {"reason": "bored"}, format="json")
    assert bad.status_code == 400


# ------------------------------------------------------------------------------------------ regions
def test_boxes_and_answers_are_stored_normalised_with_tag_and_note(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    boxes = [BOX, {"box": [0.0, 0.0, 1.0, 0.25], "tag": "over-exposure"}]
    response = submit_regions(client, lease["id"], boxes, answers={"subject_sharp": "no", "worst": 1}, seconds_spent=9.5, idempotency_key="k1")
    assert response.status_code == 201
    stored = RegionAnnotation.objects.get()
    assert stored.boxes == [
        {"box": [0.1, 0.2, 0.5, 0.6], "tag": "blur", "note": "the face is soft"},
        {"box": [0.0, 0.0, 1.0, 0.25], "tag": "over-exposure", "note": ""},
    ]
    assert stored.answers == {"subject_sharp": "no", "worst": 1}
    assert (stored.image_id, stored.rater_id, stored.seconds_spent) == (lease["image"]["id"], rater.pk, 9.5)
    assert GroundingLease.objects.get(pk=lease["id"]).status == "submitted"


def test_a_photo_without_problems_is_answered_with_no_boxes(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    assert submit_regions(client, lease["id"], []).status_code == 201
    assert RegionAnnotation.objects.get().boxes == []


@pytest.mark.parametrize(
    ("boxes", "answers", "place", "message"),
    [
        ([{"box": [0.5, 0.2, 0.1, 0.6], "tag": "blur"}], {}, "boxes[0].box", "x0 = 0.5 must be left of x1 = 0.1"),
        ([{"box": [0.1, 0.2, 1.5, 0.6], "tag": "blur"}], {}, "boxes[0].box", "outside the image"),
        ([{"box": [0.1, 0.2, 0.5], "tag": "blur"}], {}, "boxes[0].box", "four numbers"),
        ([BOX, {"box": [0.1, 0.2, 0.5, 0.6], "tag": "glare"}], {}, "boxes[1].tag", "'glare' is not one of this project's tags"),
        ([{**BOX, "note": "x" * 301}], {}, "boxes[0].note", "at most 300 characters"),
        ([{**BOX, "colour": "red"}], {}, "boxes[0]", "unknown field(s) colour"),
        (["box"], {}, "boxes[0]", "must be an object"),
        ([BOX], {"subject_sharp": "maybe"}, "answers.subject_sharp", 'must be "yes" or "no"'),
        ([BOX], {"worst": 3}, "answers.worst", "index of one of your 1 boxes"),
        ([BOX], {"colour": "red"}, "answers.colour", "no such question"),
        ([{**BOX, "tag": ["blur"]}], {}, "boxes[0].tag", "['blur'] is not one of"),
        ([{**BOX, "note": {"text": "x"}}], {}, "boxes[0].note", "must be text"),
        ([BOX], {"worst": True}, "answers.worst", "index of one of your 1 boxes"),
        ([BOX], ["yes"], "answers", "must be an object"),
        ("everything", {}, "boxes", "must be a list of boxes"),
        ([BOX] * 51, {}, "boxes", "at most 50 boxes"),
    ],
)
def test_a_bad_region_answer_gets_400_naming_the_place_and_stores_nothing(task_project, rater, boxes, answers, place, message):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    response = submit_regions(client, lease["id"], boxes, answers=answers)
    assert response.status_code == 400
    assert message in response.json()["errors"][place]
    assert RegionAnnotation.objects.count() == 0
    assert GroundingLease.objects.get(pk=lease["id"]).status == "leased"


@pytest.mark.parametrize(
    "body",
    [{"boxes": [BOX], "extra": 1}, {"boxes": [BOX], "seconds_spent": -1}, {"boxes": [BOX], "idempotency_key": "x" * 65}, {}],
)
def test_a_malformed_submit_body_gets_400(task_project, rater, body):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    response = client.post(f"/api/v1/region-leases/{lease['id']}/submit", body, format="json")
    assert response.status_code == 400 and RegionAnnotation.objects.count() == 0


def test_an_infinite_coordinate_gets_400(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    body = '{"boxes": [{"box": [0.1, 0.2, 0.5, 1e400], "tag": "blur"}]}'
    response = client.post(f"/api/v1/region-leases/{lease['id']}/submit", body, content_type="application/json")
    assert response.status_code == 400 and RegionAnnotation.objects.count() == 0


def test_a_body_that_is_not_json_gets_400(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    response = client.post(f"/api/v1/region-leases/{lease['id']}/submit", "[1, 2", content_type="application/json")
    assert response.status_code == 400


def test_a_retried_submit_with_the_same_key_stores_nothing_twice(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    first = submit_regions(client, lease["id"], [BOX], idempotency_key="same")
    again = submit_regions(client, lease["id"], [BOX], idempotency_key="same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["answer"] == {"id": first.json()["answer"]["id"], "replayed": True}
    assert again.json()["next"]["id"] == first.json()["next"]["id"]
    assert RegionAnnotation.objects.count() == 1


def test_a_second_submit_of_a_lease_and_a_reused_key_are_conflicts(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client).json()
    first = submit_regions(client, lease["id"], [BOX], idempotency_key="one")
    again = submit_regions(client, lease["id"], [BOX], idempotency_key="two")
    assert again.status_code == 409 and "already submitted" in again.json()["detail"]
    reused = submit_regions(client, first.json()["next"]["id"], [BOX], idempotency_key="one")
    assert reused.status_code == 409 and "idempotency key already used" in reused.json()["detail"]
    assert RegionAnnotation.objects.count() == 1


def test_another_raters_lease_looks_missing(task_project, rater):
    lease = next_lease(api_client_for(rater)).json()
    [other] = _raters(1)
    response = submit_regions(api_client_for(other), lease["id"], [BOX])
    assert response.status_code == 404
    # And a region lease is not a description lease.
    assert submit_description(api_client_for(rater), lease["id"], []).status_code == 404


def test_the_database_holds_one_answer_per_rater_and_photo(task_project, rater):
    from django.db import IntegrityError, transaction

    image = task_project.images.first()
    RegionAnnotation.objects.create(project=task_project, image=image, rater=rater, boxes=[])
    with pytest.raises(IntegrityError), transaction.atomic():
        RegionAnnotation.objects.create(project=task_project, image=image, rater=rater, boxes=[])


# ------------------------------------------------------------------------------------------ descriptions
def test_a_description_is_stored_with_its_distortions_severities_and_text(task_project, rater):
    client = api_client_for(rater)
    lease = next_lease(client, "description").json()
    brief = [{"distortion": "noise", "severity": "obvious"}, {"distortion": "darken", "severity": "slight"}]
    response = submit_description(client, lease["id"], brief, detail="  A dim street at night; the sky is grainy.  ")
    assert response.status_code == 201
    stored = DescriptionAnnotation.objects.get()
    assert stored.brief == brief and stored.detail == "A dim street at night; the sky is grainy."


@pytest.mark.parametrize(
    ("brief", "detail", "place", "message"),
    [
        ([{"distortion": "fog", "severity": "slight"}], "x" * 30, "brief[0].distortion", "'fog' is not one of blur, noise"),
        ([{"distortion": "blur", "severity": "extreme"}], "x" * 30, "brief[0].severity", "'extreme' is not one of slight"),
        ([{"distortion": "blur", "severity": "slight"}, {"distortion": "blur", "severity": "serious"}], "x" * 30, "brief[1].distortion", "given twice"),
        ([{"distortion": "blur"}], "x" * 30, "brief[0]", "must be an object"),
        ([{"distortion": ["blur"], "severity": {"a": 1}}], "x" * 30, "brief[0].distortion", "['blur'] is not one of"),
        ([{"distortion": "blur", "severity": ["slight"]}], "x" * 30, "brief[0].severity", "['slight'] is not one of"),
        ("blur", "x" * 30, "brief", "must be a list"),
        ([], "", "detail", "is required"),
        ([], "too short", "detail", "at least 20 characters"),
        ([], "x" * 4001, "detail", "at most 4000 characters"),
        ([], 42, "detail", "must be text"),
    ],
)
def test_a_bad_description_gets_400_naming_the_place(task_project, rater, brief, detail, place, message):
    client = api_client_for(rater)
    lease = next_lease(client, "description").json()
    response = submit_description(client, lease["id"], brief, detail=detail)
    assert response.status_code == 400
    assert message in response.json()["errors"][place]
    assert DescriptionAnnotation.objects.count() == 0


def test_the_setup_is_readable_through_the_api(task_project, rater):
    response = api_client_for(rater).get("/api/v1/projects/realqa-test/grounding")
    body = response.json()
    assert body["regions"]["tags"][0] == "blur" and body["regions"]["region_questions"][1]["kind"] == "region"
    assert body["description"]["distortions"][3] == {"key": "brighten", "label": "Brighten (too bright)"}


def test_gold_images_are_not_handed_out(project, rater):
    [gold, regular] = make_images(project, 2)
    gold.is_gold = True
    gold.save()
    grounding_setup_save(project=project, enabled=True)
    client = api_client_for(rater)
    lease = next_lease(client).json()
    assert lease["image"]["id"] == regular.pk
    assert submit_regions(client, lease["id"], []).json()["next"] is None
