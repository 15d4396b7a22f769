"""Reads for the model in the loop: the raters' consensus the model learns from, what still needs
features or scores, and how the model compares with people."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from scipy import stats

from annotation_site.core.idlists import id_batches
from annotation_site.images.models import Image
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import annotations_for_statistics
from annotation_site.schemas.selectors import schema_spec
from annotation_site.schemas.spec import FieldSpec, SchemaSpec

from .models import ImageFeatures, ModelRun, Prediction


def project_spec(*, project: Project) -> SchemaSpec:
    return schema_spec(schema_version=project.current_schema)


def _majority(field: FieldSpec, values: list) -> object:
    # Ties go to the choice listed first, so the consensus does not depend on label order.
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in field.choice_values if counts.get(v) == best)


@dataclass(frozen=True)
class Consensus:
    labels: dict[int, dict[str, object]]  # image id -> field key -> mean score / majority choice
    label_counts: dict[int, int]  # image id -> labels behind it

    @property
    def labels_used(self) -> int:
        return sum(self.label_counts.values())


def consensus_labels(*, project: Project) -> Consensus:
    """Per labelled image, the consensus of the raters whose labels statistics may use: the mean of each
    score field and the majority of each choice field. Text fields carry no consensus."""
    spec = project_spec(project=project)
    fields = [f for f in spec.fields if f.is_score or f.is_choice]
    collected: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    counts: Counter[int] = Counter()
    for image_id, values in annotations_for_statistics(project=project).values_list("image_id", "values").iterator(chunk_size=2000):
        counts[image_id] += 1
        for f in fields:
            value = values.get(f.key)
            if value is not None:
                collected[image_id][f.key].append(value)
    labels: dict[int, dict[str, object]] = {}
    for image_id, by_field in collected.items():
        row: dict[str, object] = {}
        for f in fields:
            values = by_field.get(f.key)
            if values:
                row[f.key] = round(float(np.mean(values)), 4) if f.is_score else _majority(f, values)
        labels[image_id] = row
    return Consensus(labels=labels, label_counts=dict(counts))


def model_run_current(*, project: Project) -> ModelRun | None:
    return ModelRun.objects.filter(project=project).order_by("-created_at", "-pk").first()


def model_runs(*, project: Project) -> QuerySet[ModelRun]:
    """The learning curve: every training, oldest first."""
    return ModelRun.objects.filter(project=project).order_by("created_at", "pk")


def images_without_features(*, project: Project, version: str) -> QuerySet[Image]:
    have = ImageFeatures.objects.filter(image__project=project, version=version).values("image_id")
    return Image.objects.filter(project=project).exclude(pk__in=have).order_by("pk")


def images_without_prediction(*, project: Project, model_version: str) -> QuerySet[Image]:
    have = Prediction.objects.filter(image__project=project, model_version=model_version).values("image_id")
    return Image.objects.filter(project=project).exclude(pk__in=have).order_by("pk")


def images_with_features(*, image_ids: list[int], version: str) -> set[int]:
    """Which of these images have stored features (the ids only; at most ID_BATCH of them, one query)."""
    return set(ImageFeatures.objects.filter(image_id__in=image_ids, version=version).values_list("image_id", flat=True))


def features_matrix(*, image_ids: list[int] | QuerySet, version: str) -> dict[int, np.ndarray]:
    """Stored feature vectors by image id; ``image_ids`` may be a values_list queryset (one subquery, no parameter per id)."""
    if isinstance(image_ids, QuerySet):
        batches: Iterable = [image_ids]
    else:
        batches = id_batches(image_ids)
    found: dict[int, np.ndarray] = {}
    for batch in batches:
        rows = ImageFeatures.objects.filter(image_id__in=batch, version=version).values_list("image_id", "vector")
        found.update((image_id, np.frombuffer(bytes(vector), dtype="<f4")) for image_id, vector in rows.iterator(chunk_size=2000))
    return found


@dataclass(frozen=True)
class FieldComparison:
    key: str
    label: str
    kind: str  # "score" or "choice"
    n: int
    srcc: float | None = None
    plcc: float | None = None
    accuracy: float | None = None
    points: tuple[tuple[float, float], ...] = ()  # (consensus, model) for a scatter plot of a score field


def _correlations(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None, None
    return float(stats.spearmanr(a, b).statistic), float(stats.pearsonr(a, b).statistic)


def _predicted_value(entry: object) -> object:
    # Scorers store {"value": ..., "confidence": ...}; a bare value (a prediction written by hand or by an older
    # tool) is read as the value rather than breaking the staff page.
    return entry.get("value") if isinstance(entry, dict) else entry


@dataclass(frozen=True)
class BlindPrediction:
    model_version: str
    values: dict


def blind_predictions(*, project: Project) -> dict[int, BlindPrediction]:
    """Per labelled image, the newest guess of one of the project's own models that had not learnt from its
    labels: usually the model that was current while the image waited for raters. Images without one (labelled
    before any model, or predicted only before this was recorded) are left out."""
    versions = list(ModelRun.objects.filter(project=project).values_list("model_version", flat=True))
    if not versions:
        return {}
    newest = Prediction.objects.filter(image=OuterRef("pk"), model_version__in=versions, trained_on=False).order_by(
        "-created_at", "-pk"
    )
    chosen = (
        Image.objects.filter(project=project, label_count__gt=0)
        .annotate(prediction=Subquery(newest.values("pk")[:1]))
        .exclude(prediction=None)
        .values("prediction")
    )
    rows = Prediction.objects.filter(pk__in=chosen).values_list("image_id", "model_version", "values")
    return {image_id: BlindPrediction(version, values) for image_id, version, values in rows.iterator(chunk_size=2000)}


def model_vs_consensus(
    *, project: Project, model_version: str | None, consensus: Consensus | None = None
) -> list[FieldComparison]:
    """Per field, the model's predictions against the raters' consensus on every labelled image. Images
    the model was trained on are included, so this is agreement, not a held-out accuracy (the model runs
    carry that). ``model_version=None`` compares the project's own models before they learnt each image's
    labels (:func:`blind_predictions`) instead. Pass `consensus` to compare several models against one reading
    of the labels."""
    spec = project_spec(project=project)
    consensus = (consensus or consensus_labels(project=project)).labels
    if model_version is None:
        predicted = {i: blind.values for i, blind in blind_predictions(project=project).items() if i in consensus}
    else:
        predicted = {}
        for batch in id_batches(consensus):
            rows = Prediction.objects.filter(image_id__in=batch, model_version=model_version).values_list("image_id", "values")
            predicted.update(rows)
    out = []
    for f in spec.fields:
        if not (f.is_score or f.is_choice):
            continue
        pairs = [
            (consensus[i][f.key], value)
            for i in predicted
            if f.key in consensus[i] and (value := _predicted_value(predicted[i].get(f.key))) is not None
        ]
        if f.is_score:
            a = np.array([p[0] for p in pairs], dtype=float)
            b = np.array([p[1] for p in pairs], dtype=float)
            srcc, plcc = _correlations(a, b)
            out.append(FieldComparison(f.key, f.label, "score", len(pairs), srcc=srcc, plcc=plcc, points=tuple(zip(a, b))))
        else:
            accuracy = float(np.mean([p[0] == p[1] for p in pairs])) if pairs else None
            out.append(FieldComparison(f.key, f.label, "choice", len(pairs), accuracy=accuracy))
    return out


@dataclass(frozen=True)
class ModelVersionPredictions:
    model_version: str
    scorer: str  # the registry name the version starts with, e.g. "cpu-multihead" or "qwen2-vl"
    predictions: int  # on the project's images
    latest: datetime
    run: ModelRun | None  # the project's training that made it; None for a scorer not trained here (the MLLM)


def prediction_model_versions(*, project: Project) -> list[ModelVersionPredictions]:
    """The model versions to set against the raters: the project's current model, then every version of a scorer
    not trained here (the multimodal LLM, `gpu.prescore_images`) that has predictions in the project, newest
    first. Earlier trainings of the project's own model are left out: each scored every image again when it was
    replaced, and the learning curve already has their held-out figures."""
    current = model_run_current(project=project)
    runs = {run.model_version: run for run in ModelRun.objects.filter(project=project)}
    rows = (
        Prediction.objects.filter(image__project=project)
        .values("model_version")
        .annotate(n=Count("id"), latest=Max("created_at"))
        .order_by("-latest", "model_version")
    )
    versions = [
        ModelVersionPredictions(row["model_version"], row["model_version"].split(":")[0], row["n"], row["latest"], runs.get(row["model_version"]))
        for row in rows
        if row["model_version"] not in runs or (current is not None and row["model_version"] == current.model_version)
    ]
    return sorted(versions, key=lambda v: v.run is None)  # stable: the current model first, the rest newest first


def priority_queue(*, project: Project, limit: int = 50) -> QuerySet[Image]:
    """The images raters get next, in the assignment engine's own order, with the strategy's reason."""
    return (
        Image.objects.filter(project=project, is_gold=False)
        .filter(Q(assigned_count__lt=project.overlap) | Q(assigned_count__lt=F("wanted_count")))
        .order_by("-priority", "assigned_count", "id")
        .only("pk", "original_name", "thumbnail", "priority", "priority_reason", "label_count", "assigned_count", "wanted_count")[:limit]
    )
