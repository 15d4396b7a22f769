"""The Celery app. Its broker is Redis in production (REDIS_URL or CELERY_BROKER_URL) and a folder
of message files otherwise, so the demo runs a real worker with no server at all."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings.dev")

app = Celery("realqa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
