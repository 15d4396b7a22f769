"""What a Celery worker contributes to observability, wired through Celery's signals:

- logging: the project's LOGGING (JSON lines in production) instead of Celery's own format, with the
  task id and name on every line written while a task runs;
- metrics: task run time by task and outcome, and failures by task (annotation_site/core/metrics.py);
  with CELERY_METRICS_PORT set the worker serves them at http://<machine>:<port>/metrics (with
  PROMETHEUS_MULTIPROC_DIR set as well, the counts of every pool process are added up).

Imported by workers/celery.py, so any process that loads the Celery app gets it."""

from __future__ import annotations

import logging
import logging.config
import os
import time

from celery.signals import setup_logging, task_failure, task_postrun, task_prerun, worker_init

logger = logging.getLogger(__name__)

# task id -> (start time, context tokens); a pool process runs one task at a time, a thread pool several.
_running: dict[str, tuple[float, tuple]] = {}


@setup_logging.connect
def _use_project_logging(**kwargs: object) -> None:
    """Connecting this signal stops Celery from installing its own handlers; the project's LOGGING applies."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@task_prerun.connect
def _task_started(task_id: str | None = None, task: object = None, **kwargs: object) -> None:
    from annotation_site.core.logs import task_id_var, task_name_var

    if task_id is None:
        return
    tokens = (task_id_var.set(task_id), task_name_var.set(getattr(task, "name", None)))
    _running[task_id] = (time.perf_counter(), tokens)


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: object = None, state: str | None = None, **kwargs: object) -> None:
    from annotation_site.core.logs import task_id_var, task_name_var
    from annotation_site.core.metrics import TASK_SECONDS

    started = _running.pop(task_id or "", None)
    if started is None:
        return
    seconds = time.perf_counter() - started[0]
    TASK_SECONDS.labels(task=getattr(task, "name", "unknown"), state=state or "UNKNOWN").observe(seconds)
    id_token, name_token = started[1]
    try:
        task_name_var.reset(name_token)
        task_id_var.reset(id_token)
    except ValueError:  # set in another context (a thread pool may finish elsewhere); just clear
        task_id_var.set(None)
        task_name_var.set(None)


@task_failure.connect
def _task_failed(sender: object = None, task_id: str | None = None, exception: BaseException | None = None, **kwargs: object) -> None:
    from annotation_site.core.metrics import TASK_FAILURES

    TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


@worker_init.connect
def _serve_metrics(**kwargs: object) -> None:
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    from annotation_site.core.metrics import process_registry

    start_http_server(int(port), registry=process_registry())
    logger.info("serving Celery worker metrics on port %s", port)
