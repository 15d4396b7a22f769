"""Writes for the model in the loop: features, predictions, training runs and the priority order."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db import transaction
from django.db.models import F

from annotation_site.images.models import Image
from annotation_site.projects.models import Project

from .models import ImageFeatures, ModelRun, Prediction
from .priority import Comparable, disagreement_by_field, rank_images
from .selectors import blind_predictions, consensus_labels, features_matrix, model_run_current, project_spec

# The share of labelled images whose model-consensus disagreement earns them one more rater.
DISAGREEMENT_SHARE = 0.05
DISAGREEMENT_MIN = 0.25


def prediction_store(
    *, image: Image | int, model_version: str, values: dict, uncertainty: float = 0.0, trained_on: bool | None = None
) -> tuple[Prediction, bool]:
    """Store a model's prediction once per image and model version; a redelivered task that stores
    the same prediction again changes nothing and gets the stored row back. ``trained_on``: whether the
    model learnt from this image's labels (None: not known)."""
    image_id = image if isinstance(image, int) else image.pk
    return Prediction.objects.get_or_create(
        image_id=image_id,
        model_version=model_version,
        defaults={"values": values, "uncertainty": uncertainty, "trained_on": trained_on},
    )


def predictions_store_many(*, model_version: str, rows: Iterable[tuple[int, dict, float, bool | None]]) -> int:
    """Store a batch of one model's predictions, each (image id, values, uncertainty, trained_on), in a few
    statements. An image that already has a prediction from this model keeps it: a redelivered task, or two
    workers on one image, store it once. Returns how many rows were offered."""
    objects = [
        Prediction(image_id=image_id, model_version=model_version, values=values, uncertainty=float(uncertainty), trained_on=trained_on)
        for image_id, values, uncertainty, trained_on in rows
    ]
    Prediction.objects.bulk_create(objects, batch_size=500, ignore_conflicts=True)
    return len(objects)


def features_store(*, image_id: int, version: str, vector: np.ndarray) -> bool:
    """Keep an image's features for a feature-extractor version; False when they were there already."""
    _, created = ImageFeatures.objects.get_or_create(
        image_id=image_id, version=version, defaults={"vector": np.asarray(vector, dtype="<f4").tobytes()}
    )
    return created


def model_run_record(
    *, project: Project, model_version: str, scorer: str, checkpoint: str, images_used: int, labels_used: int, metrics: dict
) -> ModelRun:
    run, _ = ModelRun.objects.get_or_create(
        project=project,
        model_version=model_version,
        defaults={
            "scorer": scorer,
            "checkpoint": checkpoint,
            "images_used": images_used,
            "labels_used": labels_used,
            "metrics": metrics,
        },
    )
    return run


def _comparable_fields(project: Project) -> list[Comparable]:
    spec = project_spec(project=project)
    out = []
    for f in spec.fields:
        if f.is_score:
            out.append(Comparable(f.key, span=float(f.max - f.min)))
        elif f.kind == "ordinal":
            out.append(Comparable(f.key, ranks={value: f.ordinal_rank(value) for value in f.choice_values}))
        elif f.is_choice:
            out.append(Comparable(f.key))
    return out


def priorities_recompute(*, project: Project, features_version: str | None = None, batch_size: int = 200, seed: int = 0) -> int:
    """Reorder the project's unlabelled images by its strategy and give the labelled images on which the
    model's guess, made before it learnt their labels, and the raters disagree most one more rater.
    Returns how many images it ordered."""
    run = model_run_current(project=project)
    candidates = list(
        Image.objects.filter(project=project, is_gold=False, label_count=0).order_by("pk").values_list("pk", flat=True)
    )
    uncertainty = np.full(len(candidates), np.nan)
    if run is not None:
        rows = Prediction.objects.filter(model_version=run.model_version, image__project=project, image__label_count=0)
        known = dict(rows.values_list("image_id", "uncertainty").iterator(chunk_size=2000))
        uncertainty = np.array([known.get(i, np.nan) for i in candidates], dtype=float)
    embeddings = labelled_embeddings = None
    if features_version and candidates and project.priority_strategy == Project.Strategy.ACTIVE:
        found = features_matrix(image_ids=candidates, version=features_version)
        if len(found) == len(candidates):
            embeddings = np.stack([found[i] for i in candidates])
            labelled = Image.objects.filter(project=project, is_gold=False, label_count__gt=0).values_list("pk", flat=True)
            # A labelled photo without stored features covers nothing: the batch then merely repeats its kind.
            kept = list(features_matrix(image_ids=labelled, version=features_version).values())
            labelled_embeddings = np.stack(kept) if kept else np.zeros((0, embeddings.shape[1]))
    ranking = rank_images(
        strategy=project.priority_strategy,
        uncertainty=uncertainty,
        embeddings=embeddings,
        labelled_embeddings=labelled_embeddings,
        batch_size=batch_size,
        seed=seed,
    )
    updates = [
        Image(pk=pk, priority=float(p), priority_reason=reason[:200])
        for pk, p, reason in zip(candidates, ranking.priority, ranking.reasons)
    ]
    with transaction.atomic():
        Image.objects.bulk_update(updates, ["priority", "priority_reason"], batch_size=1000)
        _settle_finished(project)
        if run is not None and project.priority_strategy != Project.Strategy.RANDOM:
            _ask_more_raters_where_model_disagrees(project)
    return len(updates)


# Below every priority rank_images gives (0 to 2), so that finished photos end the engine's order.
FINISHED_PRIORITY = -1.0


def _settle_finished(project: Project) -> None:
    """Send the photos that have every label they want to the end of the order.

    A photo keeps the priority it was labelled under, and the pick walks the order index past every photo
    ahead of the first one with room: without this, each label of a prioritised project would pass over all
    the photos labelled before it (tens of thousands at 10x RealQA). Photos still waiting for raters keep
    their priority, so they are finished first; the disagreement rule below may raise one again."""
    Image.objects.filter(project=project, is_gold=False, label_count__gte=project.overlap).filter(
        label_count__gte=F("wanted_count")
    ).exclude(priority=FINISHED_PRIORITY).update(
        priority=FINISHED_PRIORITY, priority_reason="has every label it wants"
    )


def _ask_more_raters_where_model_disagrees(project: Project) -> None:
    # The current model learnt the consensus of every labelled image and repeats it: on the simulated photos of
    # benchmarks/active_learning.py it was never more than 1.5 points off on 1-10, short of the 2.25 asked
    # for, so its own predictions never disagree. Each image is judged by the newest guess made without its labels.
    fields = _comparable_fields(project)
    consensus = consensus_labels(project=project).labels
    blind = blind_predictions(project=project)
    scored = []
    for image_id, row in consensus.items():
        if image_id not in blind:
            continue
        guess = {key: value.get("value") for key, value in blind[image_id].values.items()}
        parts = disagreement_by_field(predicted=guess, consensus=row, fields=fields)
        if not parts:
            continue
        d = float(np.mean(list(parts.values())))
        if d >= DISAGREEMENT_MIN:
            key = max(parts, key=parts.__getitem__)
            scored.append((d, image_id, f"most on {key}: {_shown(guess[key])} against {_shown(row[key])}"))
    scored.sort(key=lambda item: (-item[0], item[1]))
    top = scored[: max(1, int(DISAGREEMENT_SHARE * len(consensus)))] if scored else []
    for d, image_id, most in top:
        # One more rater at a time, up to the project's maximum; adaptive overlap takes it from there.
        image = Image.objects.only("label_count", "wanted_count").get(pk=image_id)
        wanted = min(max(image.wanted_count, image.label_count) + 1, project.max_overlap)
        if wanted > image.wanted_count and wanted > image.label_count:
            Image.objects.filter(pk=image_id).update(
                wanted_count=wanted,
                priority=1.0 + d,
                priority_reason=f"the model's guess before these labels and their consensus disagree by {d:.2f} (share of the scale), {most}",
            )


def _shown(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)

