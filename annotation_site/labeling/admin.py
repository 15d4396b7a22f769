from django import forms
from django.contrib import admin
from django.http import HttpRequest

from annotation_site.images.models import GoldAnswer
from annotation_site.schemas.selectors import schema_spec, schema_version_current

from .gold import gold_values_clean
from .models import Annotation, Assignment
from .services import gold_answer_set


class ReadOnlyAdmin(admin.ModelAdmin):
    """Labels are evidence: staff read them here, and only the services write them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "image", "rater", "status", "created_at", "expires_at"]
    list_filter = ["project", "status"]
    list_select_related = ["project", "image", "rater"]


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "image", "rater", "schema_version", "seconds_spent", "source", "created_at"]
    list_filter = ["project", "source"]
    list_select_related = ["project", "image", "rater", "schema_version"]


class GoldAnswerForm(forms.ModelForm):
    class Meta:
        model = GoldAnswer
        fields = ["image", "values", "tolerances", "feedback", "for_qualification"]
        help_texts = {
            "values": 'Field key to the known answer, e.g. {"clarity": "bad", "quality": 2.0}.',
            "tolerances": 'Field key to the accepted distance, e.g. {"quality": 1} (default: one step or one unit).',
        }

    def clean(self) -> dict:
        data = super().clean()
        image = data.get("image")
        if image is not None and data.get("values") is not None:
            spec = schema_spec(schema_version=schema_version_current(project=image.project))
            try:
                gold_values_clean(spec, data["values"], data.get("tolerances") or {})
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(GoldAnswer)
class GoldAnswerAdmin(admin.ModelAdmin):
    form = GoldAnswerForm
    list_display = ["image", "for_qualification", "values"]
    list_filter = ["for_qualification", "image__project"]
    raw_id_fields = ["image"]

    def save_model(self, request: HttpRequest, obj: GoldAnswer, form: GoldAnswerForm, change: bool) -> None:
        # Through the service, so the image also leaves the regular pool and the statistics.
        gold_answer_set(
            image=form.cleaned_data["image"],
            values=form.cleaned_data["values"],
            tolerances=form.cleaned_data.get("tolerances") or {},
            feedback=form.cleaned_data.get("feedback", ""),
            for_qualification=form.cleaned_data.get("for_qualification", False),
        )
