"""A lease handed out while the rater could still work in the project is refused on submit (403, saying why) once
they were excluded, their membership deleted or the project deactivated, in every task; nothing is stored, so
nothing of it reaches a statistic or a release."""

from __future__ import annotations

import pytest

from annotation_site.comparisons.models import Comparison
from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from annotation_site.labeling.models import Annotation
from annotation_site.quality.selectors import annotations_for_statistics
from annotation_site.quality.services import membership_exclude
from annotation_site.raters.models import Membership
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

pytestmark = pytest.mark.django_db

# Per task: where a lease comes from, what a valid answer is, where it is stored.
TASKS = {
    "labels": ("/api/v1/projects/{slug}/next", "/api/v1/assignments/{id}/submit", {"labels": REALQA_LABELS}, Annotation),
    "comparisons": ("/api/v1/projects/{slug}/compare/next", "/api/v1/pair-assignments/{id}/submit", {"level": "better"}, Comparison),
    "regions": ("/api/v1/projects/{slug}/regions/next", "/api/v1/region-leases/{id}/submit", {"boxes": []}, RegionAnnotation),
    "descriptions": (
        "/api/v1/projects/{slug}/descriptions/next",
        "/api/v1/description-leases/{id}/submit",
        {"brief": [{"distortion": "noise", "severity": "obvious"}], "detail": "A sharp photo of a cat, a little noisy."},
        DescriptionAnnotation,
    ),
}


def _exclude(project, rater) -> None:  # type: ignore[no-untyped-def]
    membership_exclude(project=project, rater_id=rater.pk, by=None, reason="random clicks")


def _delete_membership(project, rater) -> None:  # type: ignore[no-untyped-def]
    Membership.objects.filter(project=project, rater=rater).delete()  # as the admin's delete does


def _deactivate(project, rater) -> None:  # type: ignore[no-untyped-def]
    project.is_active = False
    project.save(update_fields=["is_active"])


CAUSES = {
    "excluded": (_exclude, "you were excluded from project realqa-test"),
    "membership deleted": (_delete_membership, "you are no longer a member of project realqa-test"),
    "project deactivated": (_deactivate, "project realqa-test is closed"),
}


@pytest.fixture
def every_task(project):  # type: ignore[no-untyped-def]
    project.gold_rate = 0
    project.save()
    make_images(project, 6)
    comparison_setup_save(project=project, enabled=True, strategy="random", comparisons_per_image=3)
    grounding_setup_save(project=project, enabled=True, raters_per_image=2)
    description_setup_save(project=project, enabled=True, raters_per_image=2)
    return project


@pytest.mark.parametrize("cause", CAUSES)
@pytest.mark.parametrize("task", TASKS)
def test_a_lease_held_from_before_is_refused_on_submit_once_the_rater_may_no_longer_work_there(every_task, rater, task, cause):
    next_url, submit_url, answer, model = TASKS[task]
    change, reason = CAUSES[cause]
    client = api_client_for(rater)
    lease = client.post(next_url.format(slug=every_task.slug), {}, format="json")
    assert lease.status_code == 200
    # The rater is seen at work (the per-process cache of active raters is warm) when the change comes.
    assert client.post(next_url.format(slug=every_task.slug), {"exclude": [lease.json()["id"]]}, format="json").status_code == 200

    change(every_task, rater)
    response = client.post(submit_url.format(id=lease.json()["id"]), answer, format="json")

    assert response.status_code == 403
    assert reason in response.json()["detail"] and "not stored" in response.json()["detail"]
    assert not model.objects.filter(rater=rater).exists()
    assert not annotations_for_statistics(project=every_task).exists()


def test_the_same_submit_is_accepted_while_the_rater_is_still_active(every_task, rater):
    """The other side: every task's lease and answer above are good ones."""
    client = api_client_for(rater)
    for next_url, submit_url, answer, model in TASKS.values():
        lease = client.post(next_url.format(slug=every_task.slug), {}, format="json").json()
        assert client.post(submit_url.format(id=lease["id"]), answer, format="json").status_code == 201
        assert model.objects.filter(rater=rater).count() == 1


def test_a_retried_submit_stored_before_the_exclusion_is_answered_as_before(every_task, rater):
    client = api_client_for(rater)
    lease = client.post(f"/api/v1/projects/{every_task.slug}/next", {}, format="json").json()
    body = {"labels": REALQA_LABELS, "idempotency_key": "before-exclusion"}
    first = client.post(f"/api/v1/assignments/{lease['id']}/submit", body, format="json")
    assert first.status_code == 201

    _exclude(every_task, rater)
    retried = client.post(f"/api/v1/assignments/{lease['id']}/submit", body, format="json")

    assert retried.status_code == 200 and retried.json()["annotation"] == {**first.json()["annotation"], "replayed": True}
    assert retried.json()["next"] is None and retried.json()["next_reason"] == "closed"
    assert Annotation.objects.filter(rater=rater).count() == 1
