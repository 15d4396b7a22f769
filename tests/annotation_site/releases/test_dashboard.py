"""The staff dashboard: progress, agreement with intervals, distributions and raters, from the release's own code."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache

from annotation_site.projects.services import project_create
from annotation_site.releases import dashboard
from annotation_site.releases.dashboard import dashboard_stats_compute
from annotation_site.releases.services import release_build, release_create
from tests.annotation_site.releases.helpers import label, read_csv, read_json, small_project
from tests.conftest import make_images

pytestmark = pytest.mark.django_db

URL = "/staff/projects/{}/dashboard/"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)


@pytest.fixture
def staff_client(client, staff):  # type: ignore[no-untyped-def]
    client.force_login(staff)
    return client


def _row(html: str, attribute: str) -> str:
    start = html.index(attribute)
    return html[start : html.index("</tr>", start)]


def test_staff_see_progress_and_alpha_with_its_interval_for_a_labelled_project(staff_client, project, staff):
    small_project(project, staff)
    response = staff_client.get(URL.format(project.slug))
    assert response.status_code == 200
    html = response.content.decode()
    # four regular images (the gold one is not counted), nine labels of the three raters who count
    assert 'data-figure="images">4<' in html and 'data-figure="labels">9<' in html
    assert 'data-figure="labels_today">9 ' in html
    assert 'data-figure="active_raters">3<' in html
    stats = response.context["stats"]
    quality = next(f for f in stats.fields if f.key == "quality")
    assert quality.status == "defined" and quality.low <= quality.alpha <= quality.high
    row = _row(html, 'data-field="quality"')
    assert f"{quality.alpha:.3f}" in row and f"[{quality.low:.3f}, {quality.high:.3f}]" in row, (row, quality)
    assert "200 resamples" in html
    # a histogram per score field, bars per choice field, as inline SVG
    assert 'data-distribution="quality"' in html and 'data-distribution="clarity"' in html
    assert html.count("<svg") == len(stats.distributions)
    # the rater table: the three raters who count and the excluded one, who has no release figures
    for name in ("r1", "r2", "r3", "r4"):
        assert f'data-rater="{name}"' in html
    assert 'class="num loo-r">–' in _row(html, 'data-rater="r4"')


def test_a_field_without_expected_disagreement_shows_undefined_alpha(staff_client, project, staff):
    small_project(project, staff)  # every rater answered saturation "natural"
    html = staff_client.get(URL.format(project.slug)).content.decode()
    row = _row(html, 'data-field="saturation"')
    assert "<em>undefined</em>" in row and "no expected disagreement" in row
    assert "not computed" in _row(html, 'data-field="subject_background"')  # free text without a measurement level


def test_a_rater_is_refused_the_dashboard(client, project, rater):
    client.force_login(rater)
    response = client.get(URL.format(project.slug))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(URL.format(project.slug), follow=True).context.get("stats") is None


def test_a_project_without_labels_renders_saying_so(staff_client, project):
    make_images(project, 3)
    response = staff_client.get(URL.format(project.slug))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No labels yet" in html and 'data-figure="images">3<' in html and 'data-figure="labels">0<' in html
    assert 'data-figure="share_done">0%' in html


def test_an_unknown_project_is_not_found(staff_client):
    assert staff_client.get(URL.format("no-such-project")).status_code == 404


def test_dashboard_alpha_and_interval_equal_the_releases_agreement_json(project, staff, tmp_path):
    small_project(project, staff)
    release = release_create(project=project, options={"resamples": 200, "seed": 7}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk)
    agreement = {f["key"]: f for f in read_json(Path(release.output_dir) / "agreement.json")["fields"]}

    stats = dashboard_stats_compute(project=project, resamples=200, seed=7)
    assert [f.key for f in stats.fields] == list(agreement)
    for f in stats.fields:
        released = agreement[f.key]
        assert f.status == released["alpha_status"], f.key
        assert f.alpha == released["alpha"], f.key
        assert (None if f.low is None else [f.low, f.high]) == released["alpha_ci95"], f.key
        assert (f.units, f.raters, f.labels, f.images) == (released["units"], released["raters"], released["labels"], released["images"]), f.key
    # the rater figures are raters.csv's
    raters = {r["labels"]: r for r in read_csv(Path(release.output_dir) / "raters.csv")}
    for figures in stats.rater_release.values():
        row = raters[str(figures.labels)]
        assert row["quality_loo_r"] == ("" if figures.loo_r is None else f"{figures.loo_r:.4f}")
        assert row["quality_bias"] == ("" if figures.bias is None else f"{figures.bias:.4f}")


def test_a_reload_reuses_the_figures_until_a_label_arrives(staff_client, project, staff, monkeypatch):
    data = small_project(project, staff)
    calls = []
    compute = dashboard.dashboard_stats_compute
    monkeypatch.setattr(dashboard, "dashboard_stats_compute", lambda **kw: calls.append(1) or compute(**kw))
    staff_client.get(URL.format(project.slug))
    staff_client.get(URL.format(project.slug))
    assert len(calls) == 1
    _, b, c, _, _ = data["images"]
    label(c, data["raters"][1], quality=8.0, clarity="good")
    html = staff_client.get(URL.format(project.slug)).content.decode()
    assert len(calls) == 2 and "over 10 labels" in html


def test_a_project_with_another_schema_and_no_score_fields_renders(staff_client, one_of_each_schema):
    project = project_create(slug="other", name="Other", schema_definition=one_of_each_schema)
    response = staff_client.get(URL.format(project.slug))
    assert response.status_code == 200 and "No labels yet" in response.content.decode()
