"""Every bulk write leaves the planner statistics of the tables it filled up to date, so the queries that
follow at once (the next rater's pick, the staff pages) are planned on what the tables really hold."""

from __future__ import annotations

import csv

import pytest
from django.db import connection

from annotation_site.core import dbstats
from annotation_site.images.models import Image
from annotation_site.labeling.benchmark import benchmark_seed
from annotation_site.labeling.importing import ratings_import
from annotation_site.labeling.models import Annotation
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import make_images

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _planner_rows(model) -> float:  # type: ignore[no-untyped-def]
    """The row count PostgreSQL's planner has for the table: -1 until the first ANALYZE."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [model._meta.db_table])
        return cursor.fetchone()[0]


@pytest.fixture
def small_bulk(monkeypatch):  # type: ignore[no-untyped-def]
    """A bulk write of three rows counts as one, so the tests stay small."""
    monkeypatch.setattr(dbstats, "BULK_ROWS", 3)


def test_an_import_of_many_photos_leaves_the_planner_knowing_how_many_there_are(project, small_bulk):
    make_images(project, 4)

    assert _planner_rows(Image) == Image.objects.count() == 4


def test_an_import_of_a_few_photos_leaves_the_statistics_to_autovacuum(project, small_bulk):
    before = _planner_rows(Image)
    make_images(project, 2)

    assert _planner_rows(Image) == before


def test_a_seeded_benchmark_project_is_analysed_before_its_first_label():
    benchmark_seed(slug="bench-stats", images=25, raters=2, overlap=3)

    assert _planner_rows(Image) == 25


def test_imported_ratings_leave_the_planner_knowing_the_labels(project, small_bulk, tmp_path):
    images = make_images(project, 2)
    path = tmp_path / "ratings.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "rater", "field", "value", "reason"])
        for image in images:
            for rater in ("alice", "bob"):
                for key, value in REALQA_LABELS.items():
                    reason = value["reason"] if isinstance(value, dict) else ""
                    writer.writerow([image.original_name, rater, key, value["value"] if isinstance(value, dict) else value, reason])

    ratings_import(project=project, source=path, format="csv")

    assert _planner_rows(Annotation) == Annotation.objects.count() == 4
