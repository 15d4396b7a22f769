from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from .models import Comparison, ComparisonSetup, PairAssignment
from .services import SetupError, comparison_setup_save


class ComparisonSetupForm(forms.ModelForm):
    class Meta:
        model = ComparisonSetup
        fields = ["project", "enabled", "criterion", "strategy", "comparisons_per_image"]

    def clean(self) -> dict:
        data = super().clean()
        value = data.get("comparisons_per_image")
        if value is not None and not 1 <= value <= 200:
            raise forms.ValidationError({"comparisons_per_image": "must be a whole number from 1 to 200"})
        return data


@admin.register(ComparisonSetup)
class ComparisonSetupAdmin(admin.ModelAdmin):
    form = ComparisonSetupForm
    list_display = ["project", "enabled", "criterion", "strategy", "comparisons_per_image", "batches", "scale_link"]
    readonly_fields = ["anchors", "anchors_from", "batches", "scale_link"]

    @admin.display(description="Scale")
    def scale_link(self, obj: ComparisonSetup) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">inferred scale</a>', reverse("comparison-scale", args=[obj.project.slug]))

    def save_model(self, request: HttpRequest, obj: ComparisonSetup, form: forms.ModelForm, change: bool) -> None:
        try:  # through the service, so the admin follows the same rules as every other writer
            comparison_setup_save(
                project=obj.project,
                enabled=obj.enabled,
                criterion=obj.criterion,
                strategy=obj.strategy,
                comparisons_per_image=obj.comparisons_per_image,
            )
        except SetupError as exc:  # the form checked every field already; never half-save
            raise forms.ValidationError(str(exc)) from None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Answers are evidence: staff read them here, and only the services write them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "first_image", "second_image", "level", "rater", "seconds_spent", "created_at"]
    list_filter = ["project", "level"]
    list_select_related = ["project", "first_image", "second_image", "rater"]


@admin.register(PairAssignment)
class PairAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "pair", "rater", "status", "created_at", "expires_at"]
    list_filter = ["project", "status"]
    list_select_related = ["project", "pair", "rater"]
