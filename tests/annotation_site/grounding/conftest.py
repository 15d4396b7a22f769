from __future__ import annotations

import pytest

from annotation_site.grounding.services import description_setup_save, grounding_setup_save
from tests.conftest import make_images

QUESTIONS = [
    {"key": "subject_sharp", "text": "Is the main subject sharp?", "kind": "yes_no"},
    {"key": "worst", "text": "Which region is the worst?", "kind": "region"},
]


@pytest.fixture
def task_project(project):  # type: ignore[no-untyped-def]
    """The test project with three photos and both tasks on, two raters per photo."""
    make_images(project, 3)
    grounding_setup_save(project=project, enabled=True, region_questions=QUESTIONS, raters_per_image=2)
    description_setup_save(project=project, enabled=True, raters_per_image=2)
    return project


def next_lease(client, kind: str = "regions", slug: str = "realqa-test", **body):  # type: ignore[no-untyped-def]
    path = "regions" if kind == "regions" else "descriptions"
    return client.post(f"/api/v1/projects/{slug}/{path}/next", body, format="json")


def submit_regions(client, lease_id: int, boxes: list, **body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/region-leases/{lease_id}/submit", {"boxes": boxes, **body}, format="json")


def submit_description(client, lease_id: int, brief: list, detail: str = "A sharp photo of a cat, a little noisy.", **body):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/description-leases/{lease_id}/submit", {"brief": brief, "detail": detail, **body}, format="json")
