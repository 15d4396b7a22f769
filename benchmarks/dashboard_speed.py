"""Time the staff dashboard's statistics on the release benchmark's simulated project.

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
from annotation_site.projects.models import Project
from annotation_site.releases import dashboard
project = Project.objects.select_related("current_schema").get(slug=rs.SLUG)
from annotation_site.schemas.selectors import schema_spec
spec = schema_spec(schema_version=project.current_schema)
t = time.perf_counter(); labels = dashboard.project_labels(project=project, spec=spec); read = time.perf_counter() - t
t = time.perf_counter(); stats = dashboard.project_field_stats(labels=labels); fs = time.perf_counter() - t
from annotation_site.quality.selectors import project_rater_quality
t = time.perf_counter(); project_rater_quality(project=project); rq = time.perf_counter() - t
t = time.perf_counter(); dashboard.dashboard_stats(project=project); full = time.perf_counter() - t
t = time.perf_counter(); dashboard.dashboard_stats(project=project); hit = time.perf_counter() - t
t = time.perf_counter(); dashboard.project_progress(project=project); prog = time.perf_counter() - t
print(f"labels {labels.image.size} read {read:.2f}s field_stats {fs:.2f}s rater_quality {rq:.2f}s full-miss {full:.2f}s cached {hit*1000:.1f}ms progress {prog*1000:.1f}ms rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f}MB")
q = next(f for f in dashboard.dashboard_stats(project=project).fields if f.key == "quality"); print(q)
