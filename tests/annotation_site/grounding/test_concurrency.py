"""Many raters at once on their own database connections: no photo gets more raters than the setup asks for,
no rater gets a photo twice, and every acknowledged answer is stored."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from annotation_site.grounding.models import GroundingLease, RegionAnnotation
from annotation_site.grounding.services import grounding_setup_save
from annotation_site.raters.services import rater_create
from tests.conftest import api_client_for, make_images

BOX = {"box": [0.1, 0.1, 0.6, 0.7], "tag": "noise", "note": ""}


def _draw_until_done(user_id: int, limit: int) -> tuple[list[int], list[int]]:
    from django.contrib.auth import get_user_model

    try:
        client = api_client_for(get_user_model().objects.get(pk=user_id))
        acknowledged, unexpected = [], []
        response = client.post("/api/v1/projects/realqa-test/regions/next", {}, format="json")
        lease = response.json() if response.status_code == 200 else None
        while lease is not None and len(acknowledged) < limit:
            submitted = client.post(
                f"/api/v1/region-leases/{lease['id']}/submit",
                {"boxes": [BOX], "idempotency_key": f"{user_id}-{lease['id']}"},
                format="json",
            )
            if submitted.status_code != 201:
                unexpected.append(submitted.status_code)
                break
            acknowledged.append(submitted.json()["answer"]["id"])
            lease = submitted.json()["next"]
        return acknowledged, unexpected
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_overfill_a_photo_nor_see_one_twice_nor_lose_an_answer(project):
    postgres = connection.vendor == "postgresql"
    threads, image_count, wanted = (12, 20, 3) if postgres else (4, 8, 2)
    images = make_images(project, image_count)
    grounding_setup_save(project=project, enabled=True, raters_per_image=wanted)
    raters = [rater_create(username=f"c{i}", password="pw-123456") for i in range(threads)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda user: _draw_until_done(user.pk, limit=image_count), raters))

    acknowledged = [answer_id for ids, _ in results for answer_id in ids]
    assert [status for _, statuses in results for status in statuses] == []
    assert len(acknowledged) == image_count * wanted
    assert set(RegionAnnotation.objects.values_list("id", flat=True)) == set(acknowledged)
    assert set(Counter(RegionAnnotation.objects.values_list("image_id", flat=True)).values()) == {wanted}
    pairs = list(GroundingLease.objects.values_list("image_id", "rater_id"))
    assert len(pairs) == len(set(pairs)) and {image.pk for image in images} == {image_id for image_id, _ in pairs}
