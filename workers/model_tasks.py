"""Model tasks: ids in, one call into workers.modeling, idempotent, named explicitly.

They are routed by name ("model.*") so that a deployment can give them their own queue and machines.
acks_late with reject-on-worker-lost (settings) is safe here: a prediction and a feature vector are
stored once per image and version by the database, so a redelivered task changes nothing twice.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import modeling

# Transient: the database restarted or a connection dropped. Anything else is a bug or bad data and
# retrying would fail the same way.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True, "max_retries": 8}


@shared_task(name="model.prescore_images", acks_late=True, soft_time_limit=600, time_limit=660, **RETRY)
def prescore_images(image_ids: list[int]) -> dict[str, int]:
    ids = [int(i) for i in image_ids]
    result = modeling.prescore_images(image_ids=ids)
    if modeling.mllm_wanted():
        prescore_images_mllm.apply_async(args=[ids])  # routed to the GPU machines' queue
    return result


@shared_task(name="gpu.prescore_images", acks_late=True, soft_time_limit=3000, time_limit=3300, **RETRY)
def prescore_images_mllm(image_ids: list[int]) -> int:
    return modeling.mllm_prescore_images(image_ids=[int(i) for i in image_ids])


@shared_task(name="model.retrain_project", acks_late=True, soft_time_limit=3300, time_limit=3600, **RETRY)
def retrain_project(project_id: int, force: bool = False) -> dict:
    return modeling.retrain_project(project_id=int(project_id), force=bool(force))


@shared_task(name="model.recompute_priorities", acks_late=True, soft_time_limit=600, time_limit=660, **RETRY)
def recompute_priorities(project_id: int) -> int:
    return modeling.recompute_priorities(project_id=int(project_id))


@shared_task(name="model.sweep", acks_late=True, soft_time_limit=120, time_limit=180, **RETRY)
def sweep() -> dict[str, int]:
    def send(name: str, args: list) -> None:
        sweep.app.send_task(name, args=args)

    return modeling.sweep(enqueue=send)
