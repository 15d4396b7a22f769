"""Many raters at once, each on their own database connection: the engine must never give an image
more raters than it wants, never give a rater an image twice, and never lose an acknowledged label."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images


def _label_until_done(user_id: int, limit: int) -> tuple[list[int], list[int]]:
    """One rater's loop through the API; returns (acknowledged annotation ids, unexpected statuses)."""
    from django.contrib.auth import get_user_model

    try:
        client = api_client_for(get_user_model().objects.get(pk=user_id))
        acknowledged, unexpected = [], []
        response = client.post("/api/v1/projects/realqa-test/next", {}, format="json")
        assignment = response.json() if response.status_code == 200 else None
        while assignment is not None and len(acknowledged) < limit:
            submitted = client.post(
                f"/api/v1/assignments/{assignment['id']}/submit",
                {"labels": REALQA_LABELS, "idempotency_key": f"{user_id}-{assignment['id']}"},
                format="json",
            )
            if submitted.status_code != 201:
                unexpected.append(submitted.status_code)
                break
            acknowledged.append(submitted.json()["annotation"]["id"])
            assignment = submitted.json()["next"]
        return acknowledged, unexpected
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_overfill_an_image_nor_see_one_twice_nor_lose_a_label(project):
    postgres = connection.vendor == "postgresql"
    threads, image_count, overlap = (16, 40, 5) if postgres else (4, 12, 3)
    project.overlap = project.max_overlap = overlap
    project.gold_rate = 0
    project.save()
    images = make_images(project, image_count)
    raters = [rater_create(username=f"c{i}", password="pw-123456") for i in range(threads)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda user: _label_until_done(user.pk, limit=image_count), raters))

    acknowledged = [annotation_id for ids, _ in results for annotation_id in ids]
    assert [status for _, statuses in results for status in statuses] == []
    assert len(acknowledged) == image_count * overlap  # every slot filled once
    assert set(Annotation.objects.values_list("id", flat=True)) == set(acknowledged)
    per_image = Counter(Annotation.objects.values_list("image_id", flat=True))
    assert set(per_image.values()) == {overlap}
    pairs = list(Assignment.objects.values_list("image_id", "rater_id"))
    assert len(pairs) == len(set(pairs))
    for image in images:
        image.refresh_from_db()
        assert (image.assigned_count, image.label_count) == (overlap, overlap)
