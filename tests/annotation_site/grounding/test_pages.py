"""The rater pages of the two tasks and the links to them on the home page."""

from __future__ import annotations

import json

import pytest

from annotation_site.grounding.services import description_setup_save, grounding_setup_save

pytestmark = pytest.mark.django_db


def test_the_home_page_links_a_task_only_when_the_project_turned_it_on(client, project, rater):
    client.force_login(rater)
    page = client.get("/").content.decode()
    assert "/projects/realqa-test/regions/" not in page and "/projects/realqa-test/describe/" not in page
    grounding_setup_save(project=project, enabled=True)
    description_setup_save(project=project, enabled=False)
    page = client.get("/").content.decode()
    assert "/projects/realqa-test/regions/" in page and "/projects/realqa-test/describe/" not in page


def test_a_task_page_is_404_while_the_task_is_off(client, project, rater):
    client.force_login(rater)
    assert client.get("/projects/realqa-test/regions/").status_code == 404
    assert client.get("/projects/realqa-test/describe/").status_code == 404
    assert client.get("/projects/no-such/regions/").status_code == 404


def test_the_region_page_carries_the_projects_tags_and_questions(client, project, rater):
    questions = [{"key": "sharp", "text": "Is it sharp?", "kind": "yes_no"}]
    grounding_setup_save(project=project, enabled=True, tags=["blur", "glare"], region_questions=questions)
    client.force_login(rater)
    response = client.get("/projects/realqa-test/regions/")
    assert response.status_code == 200
    page = response.content.decode()
    config = json.loads(page.split('<script id="task-config" type="application/json">')[1].split("</script>")[0])
    assert config["setup"]["tags"] == ["blur", "glare"] and config["setup"]["region_questions"] == questions
    assert 'data-next-url="/api/v1/projects/realqa-test/regions/next"' in page


def test_the_description_page_needs_a_login(client, project):
    description_setup_save(project=project, enabled=True)
    response = client.get("/projects/realqa-test/describe/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_closed_project_hides_its_task_pages_from_outsiders(client, project, rater):
    grounding_setup_save(project=project, enabled=True)
    project.open_to_all_raters = False
    project.save()
    client.force_login(rater)
    assert client.get("/projects/realqa-test/regions/").status_code == 404


def test_staff_setting_up_a_task_in_the_admin_get_each_bad_entry_named(client, project, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/grounding/groundingsetup/add/",
        {"project": project.pk, "enabled": "on", "tags": '["blur", "blur"]', "region_questions": "[]", "raters_per_image": 3},
    )
    assert response.status_code == 200 and "&#x27;blur&#x27; is listed twice" in response.content.decode()
    response = client.post(
        "/admin/grounding/groundingsetup/add/",
        {"project": project.pk, "enabled": "on", "tags": '["blur", "glare"]', "region_questions": "[]", "raters_per_image": 3},
    )
    assert response.status_code == 302
    assert project.grounding_setup.tags == ["blur", "glare"] and project.grounding_setup.enabled
