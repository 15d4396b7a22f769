from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from annotation_site.images.models import Image
from annotation_site.labeling.models import Annotation
from annotation_site.projects.models import Project
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_seed_benchmark_prepares_a_project_and_rater_tokens_that_work_through_the_api(tmp_path):
    tokens_file = tmp_path / "tokens.txt"
    call_command("seed_benchmark", "--images", "20", "--raters", "3", "--overlap", "2", "--tokens-file", str(tokens_file), stdout=io.StringIO())

    tokens = tokens_file.read_text().split()
    project = Project.objects.get(slug="benchmark")
    assert len(tokens) == 3 and project.overlap == 2 and Image.objects.filter(project=project).count() == 20
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[0]}")
    assignment = client.post("/api/v1/projects/benchmark/next", {}, format="json").json()
    assert client.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": REALQA_LABELS}, format="json").status_code == 201


def test_seeding_again_replaces_the_benchmark_project_and_its_labels(tmp_path):
    call_command("seed_benchmark", "--images", "5", "--raters", "1", "--tokens-file", str(tmp_path / "t"), stdout=io.StringIO())
    first = Project.objects.get(slug="benchmark")
    from django.contrib.auth import get_user_model

    client = api_client_for(get_user_model().objects.get(username="bench-rater-0"))
    assignment = client.post("/api/v1/projects/benchmark/next", {}, format="json").json()
    client.post(f"/api/v1/assignments/{assignment['id']}/submit", {"labels": REALQA_LABELS}, format="json")

    call_command("seed_benchmark", "--images", "7", "--raters", "1", "--tokens-file", str(tmp_path / "t"), stdout=io.StringIO())

    project = Project.objects.get(slug="benchmark")
    assert project.pk != first.pk and project.images.count() == 7
    assert Annotation.objects.count() == 0
