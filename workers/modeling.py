"""The work behind the model tasks: where the platform's rows meet `realqa_model`.

Everything here is idempotent, because a task may run twice (acks_late, a worker killed mid-task):
features and predictions are stored once per image and version by database constraints, and a
training is recorded once per model version (a digest of its weights).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Max
from django.utils import timezone

from annotation_site.core.idlists import id_batches
from annotation_site.images.models import Image
from annotation_site.jobs.models import Job
from annotation_site.jobs.services import job_create, job_fail, job_finish, job_progress, job_start
from annotation_site.predictions.models import ModelRun, Prediction
from annotation_site.predictions.selectors import (
    consensus_labels,
    features_matrix,
    images_with_features,
    images_without_features,
    images_without_prediction,
    model_run_current,
    project_spec,
)
from annotation_site.predictions.services import features_store, model_run_record, predictions_store_many, priorities_recompute
from annotation_site.projects.models import Project

logger = logging.getLogger(__name__)

SCORER = "cpu-multihead"
HOLDOUT_SHARE = 0.2
MIN_IMAGES_TO_TRAIN = 12
SCORE_CHUNK = 2000


def features_version() -> str:
    from realqa_model import features

    return features.FEATURES_VERSION


# --- features -------------------------------------------------------------------------------------


def _image_bytes(image: Image) -> bytes:
    # The display file is upright sRGB (the original itself when that already is): what raters judge.
    with image.display.open("rb") as handle:
        return handle.read()


def features_ensure(*, image_ids: list[int]) -> int:
    """Compute and keep the features of the images that have none yet; returns how many were new."""
    from realqa_model import features

    version = features.FEATURES_VERSION
    made = 0
    for batch in id_batches(image_ids):
        have = images_with_features(image_ids=batch, version=version)  # the ids only, not the vectors
        for image in Image.objects.filter(pk__in=[i for i in batch if i not in have]).order_by("pk"):
            try:
                vector = features.extract(_image_bytes(image))
            except FileNotFoundError:
                logger.warning("image #%s has no file in storage; not pre-scored", image.pk)
                continue
            made += features_store(image_id=image.pk, version=version, vector=vector)
    return made


# --- scorers ----------------------------------------------------------------------------------------

# One model per worker process, loaded the first time a task needs it (prefetch 1: a worker holds one
# message at a time, so a process never needs two versions of a project's model at once for long).
_loaded: dict[str, object] = {}


def _checkpoint_folder(project: Project, model_version: str) -> str:
    return f"models/{project.slug}/{model_version.replace(':', '-')}"


def _local_copy(run: ModelRun) -> Path:
    """The run's checkpoint on this machine: the default storage is shared, the cache is local."""
    local = Path(settings.MODEL_CACHE_DIR) / run.checkpoint
    if (local / "config.json").is_file():
        return local
    Path(settings.MODEL_CACHE_DIR).mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=settings.MODEL_CACHE_DIR))
    _, files = default_storage.listdir(run.checkpoint)
    for name in files:
        with default_storage.open(f"{run.checkpoint}/{name}", "rb") as source, open(partial / name, "wb") as target:
            shutil.copyfileobj(source, target)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(local)  # atomic: a concurrent process sees all files or none
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # another process got there first
    return local


def scorer_for(run: ModelRun) -> object:
    scorer = _loaded.get(run.model_version)
    if scorer is None:
        from realqa_model import registry

        _loaded.clear()
        scorer = _loaded[run.model_version] = registry.load(_local_copy(run))
    return scorer


def _store_predictions(run: ModelRun, image_ids: list[int], *, trained_ids: set[int] | None = None) -> int:
    """Score images that have features with the run's model, straight from the stored features.

    ``trained_ids``: the images the run learnt from, known right after training. Without it, only an image
    with no label yet is known not to be among them."""
    found = features_matrix(image_ids=image_ids, version=features_version())
    ids = [i for i in image_ids if i in found]
    if not ids:
        return 0
    if trained_ids is None:
        unlabelled = {
            pk for batch in id_batches(ids) for pk in Image.objects.filter(pk__in=batch, label_count=0).values_list("pk", flat=True)
        }
        trained_on = {i: (False if i in unlabelled else None) for i in ids}
    else:
        trained_on = {i: i in trained_ids for i in ids}
    predictions = scorer_for(run).score_features(np.stack([found[i] for i in ids]))
    return predictions_store_many(
        model_version=run.model_version,
        rows=((i, p.values_json(), p.uncertainty, trained_on[i]) for i, p in zip(ids, predictions)),
    )


# --- the multimodal LLM, where weights (and a GPU) exist ----------------------------------------------

_mllm: dict[tuple[str, str], object] = {}


def mllm_scorer_for(project: Project) -> object:
    """The configured Qwen2-VL checkpoint asking the project's own schema questions; one per process."""
    from realqa_model import registry

    spec = project_spec(project=project)
    key = (settings.MLLM_CHECKPOINT, spec.digest())
    scorer = _mllm.get(key)
    if scorer is None:
        _mllm.clear()  # one model in memory at a time: a 7B checkpoint fills a GPU
        scorer = _mllm[key] = registry.create("qwen2-vl", path=settings.MLLM_CHECKPOINT, schema=spec.to_dict(), **settings.MLLM_SETTINGS)
    return scorer


def mllm_prescore_images(*, image_ids: list[int]) -> int:
    """Predictions of the multimodal LLM for images that have none from it yet. Stored like any model's,
    one row per image and model version, so the staff page can set it against the raters."""
    if not settings.MLLM_CHECKPOINT:
        return 0
    stored = 0
    by_project: dict[int, list[Image]] = {}
    for image in Image.objects.filter(pk__in=image_ids).select_related("project__current_schema").order_by("pk"):
        by_project.setdefault(image.project_id, []).append(image)
    for images in by_project.values():
        scorer = mllm_scorer_for(images[0].project)
        version = scorer.version  # type: ignore[attr-defined]
        have = set(Prediction.objects.filter(image__in=images, model_version=version).values_list("image_id", flat=True))
        todo = [image for image in images if image.pk not in have]
        if not todo:
            continue
        predictions = scorer.score([_image_bytes(image) for image in todo])  # type: ignore[attr-defined]
        # trained_on False: it was never trained here, so it has seen no label of the project.
        stored += predictions_store_many(
            model_version=version, rows=((image.pk, p.values_json(), p.uncertainty, False) for image, p in zip(todo, predictions))
        )
    return stored


# --- the three jobs ---------------------------------------------------------------------------------


def prescore_images(*, image_ids: list[int]) -> dict[str, int]:
    """Features for every image, and a prediction from its project's current model when there is one."""
    made = features_ensure(image_ids=image_ids)
    scored = 0
    by_project: dict[int, list[int]] = {}
    for image_id, project_id in Image.objects.filter(pk__in=image_ids).values_list("pk", "project_id"):
        by_project.setdefault(project_id, []).append(image_id)
    for project_id, ids in by_project.items():
        run = model_run_current(project=Project(pk=project_id))
        if run is None:
            continue
        have = set(
            Prediction.objects.filter(image_id__in=ids, model_version=run.model_version).values_list("image_id", flat=True)
        )
        scored += _store_predictions(run, [i for i in ids if i not in have])
    return {"features": made, "predictions": scored}


def mllm_wanted() -> bool:
    return bool(settings.MLLM_CHECKPOINT)


@dataclass(frozen=True)
class TrainingSet:
    image_ids: list[int]
    features: np.ndarray
    labels: list[dict]
    labels_used: int


def training_set(*, project: Project) -> TrainingSet:
    consensus = consensus_labels(project=project)
    ids = sorted(consensus.labels)
    features_ensure(image_ids=ids)
    found = features_matrix(image_ids=ids, version=features_version())
    ids = [i for i in ids if i in found]
    matrix = np.stack([found[i] for i in ids]) if ids else np.zeros((0, 0), dtype=np.float32)
    return TrainingSet(ids, matrix, [consensus.labels[i] for i in ids], sum(consensus.label_counts[i] for i in ids))


def _is_holdout(image_id: int) -> bool:
    # A fixed share of images by a hash of their id: the same images stay held out across retrains, so
    # the learning curve compares like with like.
    return zlib.crc32(str(image_id).encode()) % 1000 < HOLDOUT_SHARE * 1000


def retrain_due(*, project: Project) -> bool:
    last = model_run_current(project=project)
    labelled = len(consensus_labels(project=project).labels)
    if labelled < MIN_IMAGES_TO_TRAIN:
        return False
    return labelled - (last.images_used if last else 0) >= project.retrain_min_new_labels


def retrain_project(*, project_id: int, force: bool = False, job_id: int | None = None) -> dict:
    """Train the project's model on its consensus labels, measure it on held-out images, then train on
    everything, keep the checkpoint, score every image and reorder the queue."""
    from realqa_model import cpu_scorer, evaluation

    project = Project.objects.get(pk=project_id)
    if not force and not retrain_due(project=project):
        return {"skipped": "not enough new consensus labels"}
    job = Job.objects.get(pk=job_id) if job_id else job_create(kind="model.retrain_project", project=project)
    try:
        job_start(job_id=job.pk, message="collecting consensus labels and features")
        data = training_set(project=project)
        if len(data.image_ids) < MIN_IMAGES_TO_TRAIN:
            raise ValueError(f"{len(data.image_ids)} labelled images; training needs at least {MIN_IMAGES_TO_TRAIN}")
        schema = project_spec(project=project).to_dict()
        config = cpu_scorer.CpuScorerConfig.from_dict(settings.MODEL_TRAINING)
        held = np.array([_is_holdout(i) for i in data.image_ids])
        metrics: dict = {}
        steps = 2 if held.any() and (~held).sum() >= MIN_IMAGES_TO_TRAIN else 1
        job_progress(job_id=job.pk, done=0, total=steps + 1, message="training")
        if steps == 2:
            train_idx, test_idx = np.flatnonzero(~held), np.flatnonzero(held)
            trial = cpu_scorer.train(schema, data.features[train_idx], [data.labels[i] for i in train_idx], config)
            metrics = evaluation.evaluate(trial, data.features[test_idx], [data.labels[i] for i in test_idx])
            job_progress(job_id=job.pk, done=1, message="training on every labelled image")
        scorer = cpu_scorer.train(schema, data.features, data.labels, config)
        run = _keep(project, scorer, data, metrics)
        job_progress(job_id=job.pk, done=steps, message="scoring the project")
        scored = 0
        ids = list(images_without_prediction(project=project, model_version=run.model_version).values_list("pk", flat=True))
        trained_ids = set(data.image_ids)
        for start in range(0, len(ids), SCORE_CHUNK):
            scored += _store_predictions(run, ids[start : start + SCORE_CHUNK], trained_ids=trained_ids)
        ordered = priorities_recompute(project=project, features_version=features_version())
        result = {"model_version": run.model_version, "images_used": run.images_used, "scored": scored, "ordered": ordered, "metrics": metrics}
        job_finish(job_id=job.pk, result=result, message=f"{run.model_version}: {run.images_used} images")
        return result
    except Exception as exc:
        job_fail(job_id=job.pk, message=f"{type(exc).__name__}: {exc}")
        raise


def _keep(project: Project, scorer: object, data: TrainingSet, metrics: dict) -> ModelRun:
    version = scorer.version  # type: ignore[attr-defined]
    existing = ModelRun.objects.filter(project=project, model_version=version).first()
    if existing:
        return existing
    folder = _checkpoint_folder(project, version)
    with tempfile.TemporaryDirectory() as tmp:
        scorer.save(tmp)  # type: ignore[attr-defined]
        for path in sorted(Path(tmp).iterdir()):
            name = f"{folder}/{path.name}"
            if default_storage.exists(name):
                default_storage.delete(name)  # a half-written copy of a crashed earlier attempt
            default_storage.save(name, ContentFile(path.read_bytes()))
    return model_run_record(
        project=project,
        model_version=version,
        scorer=SCORER,
        checkpoint=folder,
        images_used=len(data.image_ids),
        labels_used=data.labels_used,
        metrics=metrics,
    )


def recompute_priorities(*, project_id: int) -> int:
    project = Project.objects.get(pk=project_id)
    job = job_create(kind="model.recompute_priorities", project=project)
    job_start(job_id=job.pk)
    ordered = priorities_recompute(project=project, features_version=features_version())
    job_finish(job_id=job.pk, result={"ordered": ordered}, message=f"{ordered} images ordered")
    return ordered


def sweep(*, enqueue: Callable[[str, list], None], batch: int = 32, most: int = 2000) -> dict[str, int]:
    """What no message asked for: images without features or without a prediction of their project's
    current model (a broker outage lost the message), retrains that are due, priorities that are stale."""
    queued = retrains = reorders = 0
    for project in Project.objects.filter(is_active=True).exclude(current_schema=None):
        run = model_run_current(project=project)
        pending = images_without_features(project=project, version=features_version())
        if run is not None:
            pending = pending | images_without_prediction(project=project, model_version=run.model_version)
        ids = _not_queued_lately(list(pending.values_list("pk", flat=True).distinct()[:most]))
        for start in range(0, len(ids), batch):
            enqueue("model.prescore_images", [ids[start : start + batch]])
        queued += len(ids)
        if retrain_due(project=project):
            enqueue("model.retrain_project", [project.pk])
            retrains += 1
        elif not ids and _priorities_stale(project):
            enqueue("model.recompute_priorities", [project.pk])
            reorders += 1
    return {"queued": queued, "retrains": retrains, "reorders": reorders}


QUEUED_MEMORY_SECONDS = 600


def _not_queued_lately(ids: list[int]) -> list[int]:
    """Leave out images a sweep queued in the last minutes: their message is most likely still waiting
    behind a long import, and queueing it again would only double the work."""
    keys = {f"model-sweep-queued:{i}": i for i in ids}
    recent = cache.get_many(list(keys))
    fresh = [i for key, i in keys.items() if key not in recent]
    cache.set_many({f"model-sweep-queued:{i}": 1 for i in fresh}, timeout=QUEUED_MEMORY_SECONDS)
    return fresh


def _priorities_stale(project: Project) -> bool:
    last = (
        Job.objects.filter(project=project, kind="model.recompute_priorities", status=Job.Status.DONE)
        .aggregate(at=Max("finished_at"))["at"]
    )
    if last is None:
        return Image.objects.filter(project=project).exists()
    newest = Prediction.objects.filter(image__project=project).aggregate(at=Max("created_at"))["at"]
    return newest is not None and newest > last and (timezone.now() - last).total_seconds() > 60
