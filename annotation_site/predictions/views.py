from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from annotation_site.core.staffpages import staff_permission_required
from annotation_site.core.tasks import enqueue
from annotation_site.projects.models import Project

from .forms import ModelSettingsForm
from .plots import line_svg, scatter_svg
from .selectors import (
    consensus_labels,
    model_run_current,
    model_runs,
    model_vs_consensus,
    prediction_model_versions,
    priority_queue,
    project_spec,
)


def _learning_curves(project: Project) -> list[dict]:
    """One curve per field: the held-out figure of each training against the images it learnt from."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for run in model_runs(project=project):
        for key, figures in run.metrics.get("fields", {}).items():
            value = figures.get("srcc", figures.get("accuracy"))
            if value is not None:
                curves.setdefault(key, []).append((run.images_used, value))
    return [
        {"key": key, "svg": mark_safe(line_svg(points, x_label="labelled images", y_label="held-out SRCC / accuracy", y_low=min(0.0, min(p[1] for p in points))))}
        for key, points in curves.items()
    ]


def _model_comparisons(project: Project) -> tuple[list[dict], list[dict]]:
    """Per model version with predictions here (the CPU scorer, the MLLM): its comparison with the raters'
    consensus and a scatter plot per score field; and the same figures as a table, a row per field and a column
    per model, for reading the models side by side."""
    versions = prediction_model_versions(project=project)
    if not versions:
        return [], []
    spec = {f.key: f for f in project_spec(project=project).fields}
    consensus = consensus_labels(project=project)
    # (column id, heading, note under it, scorer, model version or None for the guesses made before the labels)
    columns = []
    for version in versions:
        note = f"{version.predictions} prediction{pluralize(version.predictions)}"
        heading = f"{version.scorer} (current)" if version.run else version.scorer
        columns.append((version.model_version, heading, note, version.scorer, version.model_version))
        if version.run:
            note = "each photo as guessed by the model current while it waited for raters"
            columns.append(("before-labels", f"{version.scorer}, before the labels", note, version.scorer, None))
    models = []
    for column, heading, note, scorer, model_version in columns:
        fields = []
        for comparison in model_vs_consensus(project=project, model_version=model_version, consensus=consensus):
            svg = ""
            if comparison.kind == "score" and comparison.points:
                f = spec[comparison.key]
                svg = mark_safe(scatter_svg(comparison.points, low=float(f.min), high=float(f.max), x_label="raters' mean", y_label=scorer))
            fields.append({"comparison": comparison, "svg": svg})
        empty = all(item["comparison"].n == 0 for item in fields)
        if empty and model_version is None:
            note = "none yet: every labelled photo got its labels before a model had guessed it"
        models.append({"column": column, "heading": heading, "note": note, "model_version": model_version, "fields": fields, "empty": empty})
    table = [
        {"key": item["comparison"].key, "label": item["comparison"].label, "cells": [m["fields"][i]["comparison"] for m in models]}
        for i, item in enumerate(models[0]["fields"])
    ]
    return models, table


@staff_permission_required("projects.view_project", POST="projects.change_project")
@require_http_methods(["GET", "HEAD", "POST"])
def model_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("current_schema"), slug=slug)
    form = ModelSettingsForm(request.POST or None, instance=project)
    if not request.user.has_perm("projects.change_project"):  # shown, not changed (a POST was refused already)
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST":
        if form.is_valid():
            form.save()
            enqueue("model.recompute_priorities", args=[project.pk])
            messages.success(request, "Saved. The queue is being reordered with the new strategy.")
            return redirect("model-page", slug=project.slug)
    run = model_run_current(project=project)
    models, table = _model_comparisons(project) if project.current_schema is not None else ([], [])
    return render(
        request,
        "predictions/model.html",
        {
            "project": project,
            "form": form,
            "run": run,
            "runs": list(model_runs(project=project)),
            "models": models,
            "table": table,
            "curves": _learning_curves(project),
            "queue": priority_queue(project=project),
        },
    )


@staff_permission_required("projects.change_project")
@require_POST
def model_retrain(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    enqueue("model.retrain_project", args=[project.pk, True])
    messages.success(request, "Retraining was queued; follow it under Background jobs in the admin.")
    return redirect("model-page", slug=project.slug)
