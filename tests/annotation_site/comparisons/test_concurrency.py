"""Many raters comparing at once, each on their own database connection: no pair gets more answers than it
wants, no rater answers a pair twice, no two photos are paired twice, and no acknowledged answer is lost."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from annotation_site.comparisons.models import Comparison, Pair
from annotation_site.comparisons.services import comparison_setup_save
from annotation_site.raters.services import rater_create
from tests.conftest import api_client_for, make_images


def _compare_until_done(user_id: int, limit: int) -> tuple[list[int], list[int]]:
    from django.contrib.auth import get_user_model

    try:
        client = api_client_for(get_user_model().objects.get(pk=user_id))
        acknowledged, unexpected = [], []
        response = client.post("/api/v1/projects/realqa-test/compare/next", {}, format="json")
        shown = response.json() if response.status_code == 200 else None
        while shown is not None and len(acknowledged) < limit:
            submitted = client.post(
                f"/api/v1/pair-assignments/{shown['id']}/submit",
                {"level": "better", "idempotency_key": f"{user_id}-{shown['id']}"},
                format="json",
            )
            if submitted.status_code != 201:
                unexpected.append(submitted.status_code)
                break
            acknowledged.append(submitted.json()["comparison"]["id"])
            shown = submitted.json()["next"]
        return acknowledged, unexpected
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", ["random", "active", "anchors"])
def test_concurrent_raters_never_overfill_a_pair_nor_answer_one_twice_nor_lose_an_answer(project, strategy):
    postgres = connection.vendor == "postgresql"
    threads, image_count = (8, 16) if postgres else (3, 8)
    make_images(project, image_count)
    comparison_setup_save(project=project, enabled=True, strategy=strategy, comparisons_per_image=4)
    raters = [rater_create(username=f"c{i}", password="pw-123456") for i in range(threads)]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda user: _compare_until_done(user.pk, limit=200), raters))

    acknowledged = [comparison_id for ids, _ in results for comparison_id in ids]
    assert [status for _, statuses in results for status in statuses] == []
    assert set(Comparison.objects.values_list("id", flat=True)) == set(acknowledged)
    answers = Counter(Comparison.objects.values_list("pair_id", flat=True))
    for pair in Pair.objects.all():
        assert answers[pair.pk] == pair.wanted == pair.answer_count  # every pair filled exactly
    assert set(Counter(Comparison.objects.values_list("pair_id", "rater_id")).values()) == {1}
    photos = Pair.objects.values_list("image_low_id", "image_high_id")
    assert len(set(photos)) == len(photos)
