"""The Celery app. Its broker is Redis in production (REDIS_URL or CELERY_BROKER_URL) and a folder
of message files otherwise, so the demo runs a real worker with no server at all."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings.dev")

app = Celery("realqa")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One module per concern; each is imported by the worker at start.
app.conf.imports = ("workers.tasks", "workers.model_tasks", "workers.release_tasks")
from . import observability  # noqa: E402,F401  (logging with task ids, task metrics: Celery signals)
