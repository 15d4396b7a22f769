from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

import pytest
from django.db.models import F

from annotation_site.images.models import GoldAnswer
from annotation_site.labeling.importing import ratings_import
from annotation_site.labeling.models import Annotation, Assignment
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
        # Simulated raters answer at once: date their leases as if each photo had been on screen that long.
        Assignment.objects.filter(rater=user, finished_at__isnull=False).update(
            created_at=F("finished_at") - timedelta(seconds=seconds.get(name, 30.0))
        )


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


def _label_at_once(project, name: str, count: int, **body: object):  # type: ignore[no-untyped-def]
    """A rater (a script) sending `count` labels as fast as the server answers, with whatever else `body` says."""
    user = rater_create(username=name, password="pw-123456")
    client = api_client_for(user)
    assignment = client.post(f"/api/v1/projects/{project.slug}/next", {}, format="json").json()
    for _ in range(count):
        response = client.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": REALQA_LABELS, **body}, format="json")
        assert response.status_code == 201
        assignment = response.json()["next"]
    return user


@pytest.fixture
def twelve_images(project):  # type: ignore[no-untyped-def]
    project.gold_rate = 0
    project.save()
    return make_images(project, 12)


def test_a_rater_claiming_45_seconds_for_labels_the_server_saw_take_milliseconds_is_flagged_as_fast(project, twelve_images):
    _label_at_once(project, "claims-45s", 12, seconds_spent=45.0)
    [row] = [r for r in project_rater_quality(project=project) if r.username == "claims-45s"]
    assert row.fast_share == 1.0
    assert "100% of labels under 4 s" in row.flags


def test_a_rater_sending_no_time_at_all_is_flagged_as_fast_by_the_servers_time(project, twelve_images):
    _label_at_once(project, "sends-no-time", 12)
    [row] = [r for r in project_rater_quality(project=project) if r.username == "sends-no-time"]
    assert row.fast_share == 1.0 and "100% of labels under 4 s" in row.flags


def test_the_raters_page_shows_the_fast_share_the_server_measured(project, twelve_images, admin_client):
    _label_at_once(project, "claims-45s", 12, seconds_spent=45.0)
    page = admin_client.get(f"/staff/projects/{project.slug}/raters/").content.decode()
    row = page[page.index('data-rater="claims-45s"') :]
    assert "100% of labels under 4 s" in row[: row.index("</tr>")]


def test_imported_labels_are_judged_by_the_time_they_came_with_not_by_when_they_were_imported(project, twelve_images):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["image", "rater", "field", "value", "reason"])
    for image in twelve_images:
        for key, value in REALQA_LABELS.items():
            value, reason = (value["value"], value["reason"]) if isinstance(value, dict) else (value, "")
            writer.writerow([image.original_name, "ext7", key, value, reason])
    ratings_import(project=project, source=io.StringIO(text.getvalue()), format="csv")
    [row] = [r for r in project_rater_quality(project=project) if r.username.endswith("ext7")]
    assert row.labels == 12 and row.fast_share == 0.0
    assert not [flag for flag in row.flags if "under 4 s" in flag]  # (the same label twelve times is straight-lining)


def test_a_large_projects_raters_page_shows_the_workers_figures_with_the_status_of_now(
    rated_project, admin_client, settings, monkeypatch
):
    """Above the dashboard's inline limit the page never reads every label itself (21 s at 10x RealQA)."""
    from annotation_site.quality import views
    from annotation_site.releases.dashboard import dashboard_stats_refresh

    settings.DASHBOARD_INLINE_MAX_LABELS = 0
    dashboard_stats_refresh(project_id=rated_project.pk)  # what the worker's job does
    Membership.objects.filter(project=rated_project, rater__username="random").update(status="excluded")
    monkeypatch.setattr(views, "project_rater_quality", lambda **kwargs: pytest.fail("the page computed the figures"))

    page = admin_client.get("/staff/projects/realqa-test/raters/").content.decode()

    assert "computed by a worker" in page and "from 112 labels" in page
    straight_row = page[page.index('data-rater="straight"') :]
    assert "straight-lining" in straight_row[: straight_row.index("</tr>")]
    random_row = page[page.index('data-rater="random"') :]
    assert 'class="status-excluded"' in random_row[:60] and "Reinstate" in random_row[: random_row.index("</tr>")]
