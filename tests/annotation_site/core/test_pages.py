from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from annotation_site.images.services import images_import
from annotation_site.images.sources import BytesSource
from annotation_site.labeling.services import annotation_create
from tests.annotation_site.images import corpus
from tests.annotation_site.labels import REALQA_LABELS

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_rater_logs_in_and_sees_each_project_with_their_own_progress(client, project, rater):
    report = images_import(
        project=project, sources=[BytesSource(f"{i}.jpg", corpus.photo_jpeg(seed=40 + i, width=200, height=150)) for i in range(3)]
    )
    other = get_user_model().objects.create_user("someone-else", password="x-pass-123")
    first = project.images.get(pk=report.lines[0].image_id)
    annotation_create(image=first, rater=rater, labels=REALQA_LABELS)
    annotation_create(image=first, rater=other, labels=REALQA_LABELS)

    response = client.post(reverse("login"), {"username": "rater1", "password": "rater-pass-123"}, follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "RealQA test" in page
    row = page[page.index('data-project="realqa-test"') :]
    assert '<td class="num">3</td>' in row
    assert '<td class="num my-labels">1</td>' in row


def test_a_wrong_password_is_refused_with_a_message(client, rater):
    response = client.post(reverse("login"), {"username": "rater1", "password": "wrong"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_health_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_staff_upload_photos_in_the_admin_and_see_why_a_file_was_refused(admin_client, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [
        SimpleUploadedFile("good.jpg", corpus.photo_jpeg(seed=50), content_type="image/jpeg"),
        SimpleUploadedFile("text.jpg", corpus.text_file_as_jpg(), content_type="image/jpeg"),
    ]
    url = reverse("admin:projects_project_upload", args=[project.pk])

    response = admin_client.post(url, {"files": files})

    page = response.content.decode()
    assert response.status_code == 200
    assert "1 imported" in page and "1 rejected" in page
    assert 'class="import-rejected"><td>text.jpg</td>' in page
    assert project.images.get().original_name == "good.jpg"


def test_a_rater_cannot_reach_the_admin_upload(client, project, rater):
    client.login(username="rater1", password="rater-pass-123")
    response = client.get(reverse("admin:projects_project_upload", args=[project.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_create_a_project_in_the_admin_on_the_realqa_schema_by_default(admin_client):
    from annotation_site.projects.models import Project

    response = admin_client.post(
        reverse("admin:projects_project_add"),
        {
            "slug": "from-admin",
            "name": "From the admin",
            "description": "",
            "overlap": 5,
            "is_active": "on",
            "schema_versions-TOTAL_FORMS": "0",
            "schema_versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    project = Project.objects.get(slug="from-admin")
    assert len(project.schema_versions.get().definition["fields"]) == 12


def test_the_upload_page_answers_one_file_at_a_time_in_json_for_its_progress_bar(admin_client, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("admin:projects_project_upload", args=[project.pk])
    response = admin_client.post(
        url, {"files": [SimpleUploadedFile("zero.jpg", b"")]}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "files" in response.json()["errors"]

    response = admin_client.post(
        url, {"files": [SimpleUploadedFile("one.jpg", corpus.photo_jpeg(seed=51))]}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    [line] = response.json()["lines"]
    assert line["name"] == "one.jpg" and line["outcome"] == "imported" and line["image_id"] == project.images.get().pk
