"""Reads for labeling: what a rater's client is shown."""

from __future__ import annotations

from annotation_site.predictions.models import Prediction
from annotation_site.predictions.selectors import model_run_current

from .models import Assignment


def assignment_payload(assignment: Assignment) -> dict:
    """An assignment as a rater's client sees it. Gold images look like any other; the model's guess
    appears only when the project turned pre-annotation on."""
    image = assignment.image
    payload = {
        "id": assignment.pk,
        "phase": "qualification" if assignment.kind == Assignment.Kind.QUALIFICATION else "labeling",
        "expires_at": assignment.expires_at.isoformat(),
        "schema_version": assignment.schema_version.version,
        "image": {
            "id": image.pk,
            "url": image.display.url,
            "thumbnail_url": image.thumbnail.url,
            "width": image.width,
            "height": image.height,
        },
    }
    if assignment.project.pre_annotation:
        # The project's current model speaks for it; another model's rows (an MLLM beside it, an older
        # training) are shown only when the project has no trained model of its own.
        predictions = Prediction.objects.filter(image=image)
        run = model_run_current(project=assignment.project)
        prediction = (run and predictions.filter(model_version=run.model_version).first()) or predictions.order_by("-created_at").first()
        if prediction is not None:
            payload["prediction"] = {"model_version": prediction.model_version, "values": prediction.values}
    return payload
