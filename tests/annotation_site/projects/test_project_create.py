"""Creating a project: raters per image and the adaptive-overlap ceiling."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from annotation_site.projects.models import Project
from annotation_site.projects.services import ProjectError, project_create

pytestmark = pytest.mark.django_db


def test_an_overlap_above_the_default_ceiling_gives_that_many_raters_with_adaptive_overlap_off(realqa_schema) -> None:
    project = project_create(slug="ten-raters", schema_definition=realqa_schema, overlap=10)
    project.refresh_from_db()
    assert (project.overlap, project.max_overlap) == (10, 10)


def test_a_small_overlap_keeps_the_default_adaptive_ceiling(realqa_schema) -> None:
    project = project_create(slug="three-raters", schema_definition=realqa_schema, overlap=3)
    assert (project.overlap, project.max_overlap) == (3, 5)


def test_an_explicit_ceiling_is_kept(realqa_schema) -> None:
    project = project_create(slug="adaptive", schema_definition=realqa_schema, overlap=10, max_overlap=15)
    assert Project.objects.values_list("overlap", "max_overlap").get(pk=project.pk) == (10, 15)


@pytest.mark.parametrize(
    "overlap, max_overlap, reason",
    [
        (10, 8, "max_overlap 8 is below overlap 10"),
        (0, None, "overlap 0: at least one rater"),
        (40000, None, "overlap 40000: at most 32767"),
        (5, 40000, "max_overlap 40000: at most 32767"),
        ("5", None, "overlap '5': must be a whole number"),
        (5, 6.5, "max_overlap 6.5: must be a whole number"),
    ],
)
def test_a_bad_overlap_or_ceiling_is_refused_by_name_and_nothing_is_created(
    realqa_schema, overlap, max_overlap, reason
) -> None:
    with pytest.raises(ProjectError, match=reason):
        project_create(slug="bad", schema_definition=realqa_schema, overlap=overlap, max_overlap=max_overlap)
    assert not Project.objects.filter(slug="bad").exists()


def test_the_create_project_command_accepts_ten_raters_per_image(tmp_path) -> None:
    call_command("create_project", "ten", "--schema", "fixtures/realqa_schema.json", "--overlap", "10")
    assert Project.objects.values_list("overlap", "max_overlap").get(slug="ten") == (10, 10)
    with pytest.raises(CommandError, match="overlap 0"):
        call_command("create_project", "zero", "--schema", "fixtures/realqa_schema.json", "--overlap", "0")
