"""Loaded by the fault tests' Celery workers (`--include tests.faults.celery_hooks`): a hold before a
task's body (see hooks.py), a record of every task run in REALQA_FAULT_DIR, and two probe tasks that
say which worker and queue ran them."""

from __future__ import annotations

import os
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from tests.faults.hooks import claim, hold


def _record(line: str) -> None:
    folder = os.environ.get("REALQA_FAULT_DIR")
    if folder:
        with open(Path(folder) / "task-runs.log", "a") as log:
            log.write(line + "\n")


@task_prerun.connect
def _before(task_id: str, task, **_: object) -> None:  # type: ignore[no-untyped-def]
    _record(f"start {task.name} {task_id} {os.getpid()} {task.request.hostname}")
    if claim("task"):
        hold("task")


@task_postrun.connect
def _after(task_id: str, task, state: str | None = None, **_: object) -> None:  # type: ignore[no-untyped-def]
    _record(f"end {task.name} {task_id} {state}")


def _probe(task) -> dict:  # type: ignore[no-untyped-def]
    info = {"worker": task.request.hostname, "queue": (task.request.delivery_info or {}).get("routing_key")}
    _record(f"probe {task.name} {info['worker']} {info['queue']}")
    return info


@shared_task(bind=True, name="model.fault_probe")
def model_probe(self) -> dict:  # type: ignore[no-untyped-def]
    return _probe(self)


@shared_task(bind=True, name="faults.probe")
def cpu_probe(self) -> dict:  # type: ignore[no-untyped-def]
    return _probe(self)


