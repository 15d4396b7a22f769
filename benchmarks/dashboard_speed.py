"""Time the staff dashboard on the release benchmark's simulated project: what a worker pays to compute the
figures, what a page view pays once they are kept, and the statistics inline (which small projects do).

`DATABASE_URL=postgres://.../realqa_bench_dashboard OPENBLAS_NUM_THREADS=1 python -m benchmarks.dashboard_speed 14715`
(seeds the project as benchmarks/release_speed.py does, 60 raters, 10 labels an image, unless already seeded).
"""
import argparse
import resource
import sys
import time

from benchmarks import release_speed as rs

args = argparse.Namespace(images=int(sys.argv[1]), raters=60, per_image=10, seed=0, reuse=True)
rs._ensure_database(); rs._setup_django()
from django.core.management import call_command
call_command("migrate", verbosity=0)
if not rs._seeded_as_asked(args):
    t = time.perf_counter(); rs.seed_project(args, rs.simulate(args.images, 60, 10, 0)); print("seeded", time.perf_counter() - t)
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from annotation_site.jobs.models import Job
from annotation_site.projects.models import Project
from annotation_site.releases import dashboard
from annotation_site.schemas.selectors import schema_spec

project = Project.objects.select_related("current_schema").get(slug=rs.SLUG)
spec = schema_spec(schema_version=project.current_schema)
t = time.perf_counter(); labels = dashboard.project_labels(project=project, spec=spec); read = time.perf_counter() - t
t = time.perf_counter(); dashboard.project_field_stats(labels=labels); fs = time.perf_counter() - t
# The worker's whole task: fingerprint, statistics, rater table, kept as the job's result.
t = time.perf_counter(); outcome = dashboard.dashboard_stats_refresh(project_id=project.pk); refresh = time.perf_counter() - t
result_bytes = len(str(Job.objects.get(pk=outcome["job"]).result))
# A page view with the figures kept (nothing changed, larger than the inline limit): what the web pays now.
settings.DASHBOARD_INLINE_MAX_LABELS = 0
settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
staff, _ = get_user_model().objects.get_or_create(username="bench-dashboard-staff", defaults={"is_staff": True})
client = Client(); client.force_login(staff)
url = f"/staff/projects/{project.slug}/dashboard/"
client.get(url)  # warm: templates, the URLconf
pages = []
for _ in range(5):
    t = time.perf_counter(); response = client.get(url); pages.append(time.perf_counter() - t)
assert response.status_code == 200 and b"No label arrived since" in response.content, response.content[:2000]
t = time.perf_counter(); progress = dashboard.project_progress(project=project); prog = time.perf_counter() - t
t = time.perf_counter(); figures = dashboard.dashboard_figures(project=project, usable=progress.labels); kept = time.perf_counter() - t
pages.sort()
print(
    f"labels {labels.image.size} read {read:.2f}s field_stats {fs:.2f}s worker-task {refresh:.2f}s "
    f"(result {result_bytes / 1024:.0f} KiB) page median {pages[2] * 1000:.0f}ms (min {pages[0] * 1000:.0f}) "
    f"of which progress {prog * 1000:.0f}ms, kept figures {kept * 1000:.0f}ms; "
    f"rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}MB"
)
print(next(f for f in figures.stats.fields if f.key == "quality"))
