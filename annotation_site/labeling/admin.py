from django.contrib import admin
from django.http import HttpRequest

from .models import Annotation, Assignment


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
