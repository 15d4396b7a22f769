from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from annotation_site.labeling.admin import ReadOnlyAdmin

from .models import DescriptionAnnotation, DescriptionSetup, GroundingLease, GroundingSetup, RegionAnnotation
from .taxonomy import SetupError, distortions_clean, questions_clean, severities_clean, tags_clean


class _SetupForm(forms.ModelForm):
    """Each JSON list goes through the same check as the services, and every bad entry is named."""

    checks: dict = {}

    def clean(self) -> dict:
        cleaned = super().clean()
        for field, check in self.checks.items():
            if field in cleaned:
                try:
                    cleaned[field] = check(cleaned[field])
                except SetupError as exc:
                    self.add_error(field, list(exc.errors.values()))
        return cleaned


class GroundingSetupForm(_SetupForm):
    checks = {"tags": tags_clean, "region_questions": questions_clean}

    class Meta:
        model = GroundingSetup
        fields = ["project", "enabled", "tags", "region_questions", "raters_per_image"]


class DescriptionSetupForm(_SetupForm):
    checks = {"distortions": distortions_clean, "severities": severities_clean}

    class Meta:
        model = DescriptionSetup
        fields = ["project", "enabled", "distortions", "severities", "raters_per_image", "detail_min_chars"]


@admin.register(GroundingSetup)
class GroundingSetupAdmin(admin.ModelAdmin):
    form = GroundingSetupForm
    list_display = ["project", "enabled", "raters_per_image"]

    def get_readonly_fields(self, request: HttpRequest, obj: GroundingSetup | None = None) -> list[str]:
        return ["project"] if obj else []


@admin.register(DescriptionSetup)
class DescriptionSetupAdmin(admin.ModelAdmin):
    form = DescriptionSetupForm
    list_display = ["project", "enabled", "raters_per_image", "detail_min_chars"]

    def get_readonly_fields(self, request: HttpRequest, obj: DescriptionSetup | None = None) -> list[str]:
        return ["project"] if obj else []


@admin.register(GroundingLease)
class GroundingLeaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "kind", "image", "rater", "status", "created_at", "expires_at"]
    list_filter = ["project", "kind", "status"]
    list_select_related = ["project", "image", "rater"]


@admin.register(RegionAnnotation)
class RegionAnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "image", "rater", "box_count", "seconds_spent", "created_at"]
    list_filter = ["project"]
    list_select_related = ["project", "image", "rater"]

    @admin.display(description="boxes")
    def box_count(self, obj: RegionAnnotation) -> int:
        return len(obj.boxes)


@admin.register(DescriptionAnnotation)
class DescriptionAnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "image", "rater", "seconds_spent", "created_at"]
    list_filter = ["project"]
    list_select_related = ["project", "image", "rater"]
