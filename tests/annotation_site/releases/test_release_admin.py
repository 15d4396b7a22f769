from __future__ import annotations

import pytest

from annotation_site.releases.models import Release
from annotation_site.releases.services import release_build
from tests.annotation_site.releases.helpers import small_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled(project, admin_user):  # type: ignore[no-untyped-def]
    small_project(project, admin_user)
    return project


def _form(project, **changes: object) -> dict:  # type: ignore[no-untyped-def]
    data = {
        "project": project.pk,
        "seed": 3,
        "ratios": "train=0.8,validation=0.1,test=0.1",
        "resamples": 50,
        "images": "reference",
        "score_field": "",
    }
    data.update(changes)
    return data


def test_staff_create_a_release_in_the_admin_and_a_worker_is_asked_to_build_it(
    labeled, admin_client, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.RELEASES_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post("/admin/releases/release/add/", _form(labeled))
    assert response.status_code == 302
    release = Release.objects.get()
    assert (release.status, release.version, release.options["seed"], release.options["images"]) == ("queued", 1, 3, "reference")
    assert release.output_dir == str(tmp_path / "realqa-test-v1")
    assert len(callbacks) == 1  # the build task, sent once the release row is committed

    listing = admin_client.get("/admin/releases/release/").content.decode()
    assert "realqa-test-v1" in listing and 'data-status="queued"' in listing and "<progress" in listing
    progress = admin_client.get(f"/admin/releases/release/progress/?ids={release.pk}").json()
    assert progress["releases"][0]["status"] == "queued"

    release_build(release_id=release.pk)
    progress = admin_client.get(f"/admin/releases/release/progress/?ids={release.pk}").json()["releases"][0]
    assert (progress["status"], progress["progress"], progress["stage"]) == ("done", 1.0, "done")
    assert 'value="100"' in admin_client.get("/admin/releases/release/").content.decode()


def test_bad_options_in_the_admin_form_are_named_and_create_nothing(labeled, admin_client):
    for changes, message in [
        ({"ratios": "train=0.5,test=0.1"}, "must sum to 1"),
        ({"ratios": "train"}, "is not name=share"),
        ({"score_field": "clarity"}, "not a score field"),
        ({"resamples": 0}, "greater than or equal to 1"),
    ]:
        response = admin_client.post("/admin/releases/release/add/", _form(labeled, **changes))
        assert response.status_code == 200 and message in response.content.decode(), changes
    assert not Release.objects.exists()


def test_a_release_cannot_be_edited_or_deleted_in_the_admin(labeled, admin_client, tmp_path, settings):
    settings.RELEASES_ROOT = tmp_path
    admin_client.post("/admin/releases/release/add/", _form(labeled))
    release = Release.objects.get()
    page = admin_client.get(f"/admin/releases/release/{release.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "realqa-test-v1" in page
    assert admin_client.post(f"/admin/releases/release/{release.pk}/delete/").status_code == 403
