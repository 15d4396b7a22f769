"""The pick of the next image keeps its fast plan when the planner knows nothing about the table.

A project bulk-loaded a moment ago has never been analysed: on those statistics PostgreSQL once read every
image of the project, joined each to the rater's assignments and sorted them (170 ms a label at 10,000
images). The plan PostgreSQL really runs inside the pick is read with auto_explain, which reports the
plans of nested statements to the client as notices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from django.db import connection

from annotation_site.images.models import Image
from annotation_site.labeling.assignments import assignment_next, assignment_submit
from annotation_site.labeling.models import Assignment
from annotation_site.projects.services import project_create
from annotation_site.raters.services import rater_create
from tests.annotation_site.labels import REALQA_LABELS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _bulk_load(project, count: int) -> None:  # type: ignore[no-untyped-def]
    rows = [
        Image(
            project=project, sha256=hashlib.sha256(f"plan-{project.slug}-{i}".encode()).hexdigest(), phash="0" * 16,
            original="x.jpg", display="x.jpg", thumbnail="x.jpg", original_name=f"plan-{i}.jpg", format="JPEG",
            source_mode="RGB", width=64, height=48, byte_size=0,
        )
        for i in range(count)
    ]
    Image.objects.bulk_create(rows, batch_size=5000)


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plans_of_nested_statements(run) -> list[dict]:  # type: ignore[no-untyped-def]
    """The JSON plans of every statement `run` makes PostgreSQL execute, as auto_explain reports them."""
    notices: list[str] = []
    connection.ensure_connection()
    raw = connection.connection
    handler = lambda diagnostic: notices.append(diagnostic.message_primary or "")  # noqa: E731
    raw.add_notice_handler(handler)
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for setting, value in [
            ("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_analyze", "on"),
            ("log_format", "json"), ("log_level", "notice"),
        ]:
            cursor.execute(f"SET auto_explain.{setting} = {value}")
    try:
        run()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET auto_explain.log_min_duration = -1")
        raw.remove_notice_handler(handler)
    return [json.loads(notice.split("plan:", 1)[1]) for notice in notices if "plan:" in notice]


# The old statement sorted the whole project at 10,000 never-analysed images and happened to walk the index
# at 20,000: which plan the statistics lead to is luck, so the pick is checked at both sizes.
@pytest.mark.parametrize(
    ("statistics", "images"),
    [("never gathered", 10_000), ("never gathered", 20_000), ("gathered before the project existed", 20_000)],
)
def test_the_pick_walks_the_order_index_of_a_bulk_loaded_project_without_sorting_or_reading_it_all(
    project, rater, realqa_schema, statistics, images
):
    project.gold_rate = 0
    project.save()
    if statistics != "never gathered":
        # Statistics of an older, small project: the new one is not among the values they know.
        older = project_create(slug="older", name="Older", schema_definition=realqa_schema)
        _bulk_load(older, 50)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE images_image")
            cursor.execute("ANALYZE labeling_assignment")
    _bulk_load(project, images)
    # Twenty raters label one photo each (each submit leases the next), as on the benchmark when the old
    # plan took 170 ms a label. Nothing is committed, so autovacuum has not seen these rows either.
    raters = [rater] + [rater_create(username=f"other-{k}", password="other-pass-123") for k in range(19)]
    held = {}
    for each in raters:
        lease = assignment_next(project=project, rater=each)
        held[each.pk] = assignment_submit(assignment_id=lease.pk, rater=each, labels=REALQA_LABELS).next.pk

    # The rater's page asks for the photo to prefetch: a new pick.
    result: list[object] = []
    plans = _plans_of_nested_statements(
        lambda: result.append(assignment_next(project=project, rater=rater, exclude=[held[rater.pk]]))
    )

    assert isinstance(result[0], Assignment) and result[0].pk not in held.values()
    # The pick is the part of the statement in the engine's order that locks the image it chose.
    picks = [
        node for plan in plans if "ORDER BY i.priority DESC" in plan["Query Text"]
        for node in _nodes(plan["Plan"]) if node["Node Type"] == "LockRows"
    ]
    assert len(picks) == 1, [plan["Query Text"] for plan in plans]
    nodes = list(_nodes(picks[0]))
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds and "Incremental Sort" not in kinds, kinds
    scans = [node for node in nodes if node.get("Relation Name") == "images_image"]
    assert [(node["Node Type"], node.get("Index Name")) for node in scans] == [("Index Scan", "image_assignment_order_idx")]
    read = scans[0]["Actual Rows"] + scans[0].get("Rows Removed by Filter", 0)
    assert read == 1, f"the pick read {read} of the project's {images} images"
