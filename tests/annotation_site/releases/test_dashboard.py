"""The staff dashboard: progress, agreement with intervals, distributions and raters, from the release's own code;
computed in the request for a small project, by a worker's job for a large one (the page shows the last figures,
their age, the labels since and the job's progress). tests/workers/test_dashboard_task.py runs the real worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation_site.jobs.models import Job
from annotation_site.jobs.services import job_progress, job_start
from annotation_site.projects.services import project_create
from annotation_site.quality.services import membership_exclude
from annotation_site.releases import dashboard
from annotation_site.releases.dashboard import DASHBOARD_TASK, dashboard_stats_compute, dashboard_stats_refresh
from annotation_site.releases.services import release_build, release_create
from tests.annotation_site.releases.helpers import label, read_csv, read_json, small_project
from tests.conftest import make_images
from tests.security.world import grant_permissions

pytestmark = pytest.mark.django_db

URL = "/staff/projects/{}/dashboard/"
RECOMPUTE = "/staff/projects/{}/dashboard/recompute"
JOB = "/staff/projects/{}/dashboard/job"


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)
    grant_permissions(user)  # a project manager's: the dashboard asks for projects.view_project
    return user


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


# ------------------------------------------------------------------------------------------------ large projects


@pytest.fixture
def large(settings):  # type: ignore[no-untyped-def]
    """Every project counts as large: the statistics are a worker's job, never computed in the request."""
    settings.DASHBOARD_INLINE_MAX_LABELS = 0


@pytest.fixture
def no_compute_in_request(monkeypatch):  # type: ignore[no-untyped-def]
    """Fails the test if a request computes the statistics; `run_job` (the worker's part) still may."""
    compute = dashboard.dashboard_stats_compute
    allowed = []

    def guarded(**kwargs):  # type: ignore[no-untyped-def]
        assert allowed, "the request computed the statistics of a large project"
        return compute(**kwargs)

    monkeypatch.setattr(dashboard, "dashboard_stats_compute", guarded)

    def run_job(job: Job) -> dict:
        allowed.append(1)
        try:
            return dashboard_stats_refresh(project_id=job.project_id, job_id=job.pk)  # what the task does
        finally:
            allowed.clear()

    return run_job


def _queued(project) -> list[Job]:  # type: ignore[no-untyped-def]
    return list(Job.objects.filter(project=project, kind=DASHBOARD_TASK, status=Job.Status.QUEUED))


def test_a_large_project_without_figures_says_they_are_being_computed_and_a_worker_then_shows_them(
    staff_client, project, staff, large, no_compute_in_request, django_capture_on_commit_callbacks
):
    small_project(project, staff)
    with django_capture_on_commit_callbacks() as sent:
        html = staff_client.get(URL.format(project.slug)).content.decode()
    assert "The figures are being computed" in html and "waiting for a worker" in html and "<progress" in html
    assert 'data-figure="labels">9<' in html  # the progress counts are there at once
    assert 'data-field="quality"' not in html
    [job] = _queued(project)
    assert len(sent) == 1  # the task, handed to the broker once the request's transaction commits
    # Reloading while the job waits queues nothing more.
    staff_client.get(URL.format(project.slug))
    assert _queued(project) == [job]

    assert no_compute_in_request(job)["status"] == "done"
    html = staff_client.get(URL.format(project.slug)).content.decode()
    assert "being computed" not in html and 'data-field="quality"' in html
    assert "Figures computed" in html and "from 9 labels" in html and "No label arrived since" in html
    assert 'class="recompute"' in html and "computed by a background worker" in html


def test_a_large_project_shows_its_last_figures_with_the_labels_that_arrived_since(
    staff_client, project, staff, large, no_compute_in_request
):
    data = small_project(project, staff)
    staff_client.get(URL.format(project.slug))
    no_compute_in_request(_queued(project)[0])
    _, b, c, _, _ = data["images"]
    label(c, data["raters"][1], quality=8.0, clarity="good")
    label(b, data["raters"][2], quality=5.0, clarity="good")

    html = staff_client.get(URL.format(project.slug)).content.decode()
    assert "over 9 labels" in html and 'data-figure="labels">11<' in html
    assert "2 labels arrived since" in html and 'data-labels-since="2"' in html
    assert _queued(project) == []  # kept figures are shown as they are until staff ask for new ones

    membership_exclude(project=project, rater_id=data["raters"][2].pk, by=staff, reason="test")
    html = staff_client.get(URL.format(project.slug)).content.decode()
    # r3's new label no longer counts, and neither do the three the figures had from r3
    assert "1 label arrived since" in html and "Other labels were left out or counted again since" in html


def test_recompute_queues_one_job_whose_progress_the_page_follows(
    staff_client, project, staff, large, no_compute_in_request, django_capture_on_commit_callbacks
):
    small_project(project, staff)
    staff_client.get(URL.format(project.slug))
    no_compute_in_request(_queued(project)[0])

    with django_capture_on_commit_callbacks() as sent:
        response = staff_client.post(RECOMPUTE.format(project.slug))
        staff_client.post(RECOMPUTE.format(project.slug))  # a double click
    assert response.status_code == 302 and response["Location"] == URL.format(project.slug)
    [job] = _queued(project)
    assert len(sent) == 1
    job_start(job_id=job.pk, total=14, message="reading the labels")
    job_progress(job_id=job.pk, done=7, message="field quality")

    html = staff_client.get(URL.format(project.slug)).content.decode()
    assert "being recomputed by a worker" in html  # the message after the POST
    assert "New figures are being computed; these are the last ones" in html and 'data-field="quality"' in html
    assert '<progress max="100" value="50">' in html and "field quality" in html
    assert staff_client.get(JOB.format(project.slug)).json() == {"status": "running", "percent": 50, "message": "field quality"}

    no_compute_in_request(job)
    assert staff_client.get(JOB.format(project.slug)).json() == {"status": "idle"}
    assert "New figures are being computed" not in staff_client.get(URL.format(project.slug)).content.decode()


def test_a_failed_computation_is_shown_with_a_recompute_button_and_not_retried_on_every_view(
    staff_client, project, staff, large, no_compute_in_request, monkeypatch
):
    small_project(project, staff)
    staff_client.get(URL.format(project.slug))
    [job] = _queued(project)
    monkeypatch.setattr(dashboard, "project_labels", lambda **kw: (_ for _ in ()).throw(MemoryError("out of memory")))
    with pytest.raises(MemoryError):
        no_compute_in_request(job)

    html = staff_client.get(URL.format(project.slug)).content.decode()
    assert "The last computation failed" in html and "MemoryError: out of memory" in html
    assert 'class="recompute"' in html and _queued(project) == []


def test_the_task_is_idempotent_a_finished_job_is_not_computed_again(project, staff, large, no_compute_in_request):
    small_project(project, staff)
    job = Job.objects.create(kind=DASHBOARD_TASK, project=project)
    first = no_compute_in_request(job)
    finished = Job.objects.get(pk=job.pk)
    assert first == {"job": job.pk, "status": "done", "labels": 9} and finished.percent == 100
    assert no_compute_in_request(job) == {"job": job.pk, "status": "done"}
    assert Job.objects.get(pk=job.pk).finished_at == finished.finished_at


def test_a_small_project_recomputes_in_the_request_and_keeps_only_a_few_jobs(staff_client, project, staff):
    small_project(project, staff)
    for _ in range(dashboard.KEEP_JOBS + 2):
        response = staff_client.post(RECOMPUTE.format(project.slug), follow=True)
    html = response.content.decode()
    assert "The figures were recomputed" in html and "No label arrived since" in html and "background worker" not in html
    jobs = Job.objects.filter(project=project, kind=DASHBOARD_TASK)
    assert jobs.count() == dashboard.KEEP_JOBS and not jobs.exclude(status=Job.Status.DONE).exists()


def test_recompute_is_a_staff_post_with_the_csrf_token(client, project, staff, rater):
    client.force_login(rater)
    assert client.post(RECOMPUTE.format(project.slug)).status_code == 302  # to the admin login
    assert not Job.objects.filter(kind=DASHBOARD_TASK).exists()

    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert browser.get(RECOMPUTE.format(project.slug)).status_code == 405
    assert browser.post(RECOMPUTE.format(project.slug)).status_code == 403
    page = browser.get(URL.format(project.slug)).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert browser.post(RECOMPUTE.format(project.slug), {"csrfmiddlewaretoken": token}).status_code == 302
