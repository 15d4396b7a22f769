"""Staff pages ask for the model permissions the admin asks for: staff without them change nothing and download
nothing, and are told which permission they lack; the group "Project manager" holds exactly those permissions;
the home page links only the staff pages a user may open. What every role gets on every page is pinned by the
authorization matrix (test_authorization_matrix.py)."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import Group

from annotation_site.core.staffpages import PROJECT_MANAGER_GROUP, PROJECT_MANAGER_PERMISSIONS
from annotation_site.raters.models import Membership

from .world import World, build_world, grant_permissions

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(realqa_schema) -> World:  # type: ignore[no-untyped-def]
    return build_world(realqa_schema)


def _refusal(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 403
    return response.content.decode()


def test_staff_without_permissions_cannot_switch_pre_annotation_on_nor_change_strategy_and_retraining(world):
    staff = world.client("staff")
    model_page = f"/staff/projects/{world.open_project.slug}/model/"

    page = _refusal(staff.post(model_page, {"priority_strategy": "uncertainty", "retrain_min_new_labels": 1, "pre_annotation": "on"}))

    assert "projects.change_project" in page and "Project manager" in page
    world.open_project.refresh_from_db()
    assert world.open_project.pre_annotation is False and world.open_project.retrain_min_new_labels != 1
    assert "projects.change_project" in _refusal(staff.post(f"/staff/projects/{world.open_project.slug}/model/retrain"))


def test_staff_without_permissions_cannot_exclude_a_rater(world):
    response = world.client("staff").post(
        f"/staff/projects/{world.open_project.slug}/raters/{world.other.pk}/exclusion", {"action": "exclude"}
    )
    assert "raters.change_membership" in _refusal(response)
    assert Membership.objects.get(project=world.open_project, rater=world.other).status == Membership.Status.ACTIVE


def test_staff_without_permissions_cannot_download_a_release(world):
    response = world.client("staff").get(f"/staff/releases/{world.release.pk}/download")
    assert "releases.view_release" in _refusal(response)
    assert world.client("manager").get(f"/staff/releases/{world.release.pk}/download").status_code == 200


def test_a_project_manager_switches_pre_annotation_on_and_excludes_a_rater(world):
    manager = world.client("manager")
    saved = manager.post(
        f"/staff/projects/{world.open_project.slug}/model/",
        {"priority_strategy": "uncertainty", "retrain_min_new_labels": 7, "pre_annotation": "on"},
    )
    assert saved.status_code == 302
    world.open_project.refresh_from_db()
    assert world.open_project.pre_annotation is True and world.open_project.retrain_min_new_labels == 7

    excluded = manager.post(f"/staff/projects/{world.open_project.slug}/raters/{world.other.pk}/exclusion", {"action": "exclude"})
    assert excluded.status_code == 302
    assert Membership.objects.get(project=world.open_project, rater=world.other).status == Membership.Status.EXCLUDED


def test_staff_who_may_only_look_see_the_model_settings_without_a_save_or_retrain_button(world):
    grant_permissions(world.users["staff"], "projects.view_project", "raters.view_membership")
    staff = world.client("staff")

    model = staff.get(f"/staff/projects/{world.open_project.slug}/model/").content.decode()
    raters = staff.get(f"/staff/projects/{world.open_project.slug}/raters/").content.decode()

    assert "Retrain now" not in model and ">Save<" not in model and "may look at these settings" in model
    assert 'name="pre_annotation"' in model and "disabled" in model
    assert 'data-rater="rater-bob-x7"' in raters and "Exclude</button>" not in raters
    manager_raters = world.client("manager").get(f"/staff/projects/{world.open_project.slug}/raters/").content.decode()
    assert "Exclude</button>" in manager_raters


def test_the_home_page_links_only_the_staff_pages_the_user_may_open(world):
    def links(role: str) -> set[str]:
        page = world.client(role).get("/").content.decode()
        slug = world.open_project.slug
        pages = {"Dashboard": f"/staff/projects/{slug}/dashboard/", "Raters": f"/staff/projects/{slug}/raters/",
                 "Model": f"/staff/projects/{slug}/model/"}
        return {name for name, url in pages.items() if f'href="{url}"' in page}

    assert links("staff") == set()
    assert links("manager") == links("admin") == {"Dashboard", "Raters", "Model"}
    grant_permissions(world.users["staff"], "raters.view_membership")
    assert links("staff") == {"Raters"}


def test_the_project_manager_group_holds_exactly_the_permissions_the_staff_pages_ask_for():
    group = Group.objects.get(name=PROJECT_MANAGER_GROUP)
    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert held == set(PROJECT_MANAGER_PERMISSIONS)
    migration = importlib.import_module("annotation_site.raters.migrations.0002_create_the_project_manager_group")
    assert {f"{app}.{codename}" for app, codename in migration.PERMISSIONS} == set(PROJECT_MANAGER_PERMISSIONS)
