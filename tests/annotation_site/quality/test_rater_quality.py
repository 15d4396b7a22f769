from __future__ import annotations

import random

import pytest

from annotation_site.images.models import GoldAnswer
from annotation_site.labeling.models import Annotation
from annotation_site.quality.selectors import annotations_for_statistics, project_rater_quality
from annotation_site.raters.models import Membership
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db


def _label_all(project, raters: dict, truth: dict[int, float], seconds: dict) -> None:  # type: ignore[no-untyped-def]
    """Each simulated rater labels every image through the API with their own way of scoring."""
    for name, score in raters.items():
        user = rater_create(username=name, password="pw-123456")
        client = api_client_for(user)
        response = client.post("/api/v1/projects/realqa-test/next", {}, format="json")
        assignment = response.json() if response.status_code == 200 else None
        while assignment is not None:
            value = round(min(10.0, max(1.0, score(truth[assignment["image"]["id"]]))), 1)
            body = {"labels": {**REALQA_LABELS, "quality": value, "aesthetics": value}, "seconds_spent": seconds.get(name, 30.0)}
            assignment = client.post(f"/api/v1/assignments/{assignment['id']}/submit", body, format="json").json()["next"]


@pytest.fixture
def rated_project(project):  # type: ignore[no-untyped-def]
    project.overlap = project.max_overlap = 7
    project.gold_rate = 0
    project.save()
    images = make_images(project, 16)
    rng = random.Random(3)
    truth = {image.pk: rng.uniform(2, 9) for image in images}
    noisy = lambda t: t + rng.gauss(0, 0.4)  # noqa: E731
    raters = {
        "careful1": noisy,
        "careful2": noisy,
        "careful3": noisy,
        "random": lambda t: rng.uniform(1, 10),
        "straight": lambda t: 5.0,
        "hasty": noisy,
        "generous": lambda t: t + 1.5,
    }
    _label_all(project, raters, truth, seconds={"hasty": 1.5})
    return project


def test_quality_control_flags_the_random_the_straight_lining_and_the_hasty_rater(rated_project):
    rows = {row.username: row for row in project_rater_quality(project=rated_project)}

    assert rows["careful1"].flags == [] and rows["careful1"].agreement > 0.8 and rows["careful1"].labels == 16
    assert "low agreement with consensus" in rows["random"].flags
    assert "straight-lining" in rows["straight"].flags
    assert any("under 4 s" in flag for flag in rows["hasty"].flags)
    assert rows["generous"].bias > rows["careful2"].bias + 1.0  # scores a point and a half above the others


def test_gold_accuracy_is_reported_and_flagged(project, rater):
    project.gold_rate = 1.0
    project.save()
    golds = make_images(project, 3, start_seed=7000)
    for image in golds:
        image.is_gold = True
        image.save()
        GoldAnswer.objects.create(image=image, values={"clarity": "bad"})
    client = api_client_for(rater)
    assignment = client.post("/api/v1/projects/realqa-test/next", {}, format="json").json()
    for _ in range(3):
        assignment = client.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": REALQA_LABELS}, format="json").json()["next"]
    [row] = [r for r in project_rater_quality(project=project) if r.username == "rater1"]
    assert row.gold_answers == 3 and row.gold_accuracy == 0.0  # "good" is two steps from "bad"
    assert "gold accuracy below 70%" in row.flags


def test_an_excluded_raters_labels_leave_every_statistic_but_nothing_is_deleted(rated_project, admin_client):
    random_rater = Membership.objects.get(project=rated_project, rater__username="random")
    before = Annotation.objects.count()

    response = admin_client.post(
        f"/staff/projects/realqa-test/raters/{random_rater.rater_id}/exclusion", {"action": "exclude", "reason": "random clicks"}
    )

    assert response.status_code == 302
    random_rater.refresh_from_db()
    assert random_rater.status == "excluded" and random_rater.excluded_reason == "random clicks"
    assert Annotation.objects.count() == before
    assert not annotations_for_statistics(project=rated_project).filter(rater__username="random").exists()
    rows = {row.username: row for row in project_rater_quality(project=rated_project)}
    assert rows["random"].status == "excluded" and rows["careful1"].agreement > 0.9
    assert api_client_for(random_rater.rater).post("/api/v1/projects/realqa-test/next", {}, format="json").status_code == 403

    admin_client.post(f"/staff/projects/realqa-test/raters/{random_rater.rater_id}/exclusion", {"action": "reinstate"})
    assert annotations_for_statistics(project=rated_project).filter(rater__username="random").count() == 16


def test_the_staff_page_lists_raters_with_their_flags(rated_project, admin_client):
    page = admin_client.get("/staff/projects/realqa-test/raters/").content.decode()
    straight_row = page[page.index('data-rater="straight"') :]
    assert "straight-lining" in straight_row[: straight_row.index("</tr>")]
    assert 'data-rater="careful1"' in page


def test_raters_cannot_open_the_staff_page(rated_project, client, rater):
    client.force_login(rater)
    response = client.get("/staff/projects/realqa-test/raters/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.post(f"/staff/projects/realqa-test/raters/{rater.pk}/exclusion", {"action": "exclude"}).status_code == 302
