from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from .models import Image


class NearDuplicateFilter(admin.SimpleListFilter):
    title = "near-duplicate"
    parameter_name = "near_duplicate"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Flagged"), ("no", "Not flagged")]

    def queryset(self, request: HttpRequest, queryset):  # type: ignore[no-untyped-def]
        if self.value() == "yes":
            return queryset.filter(near_duplicate_of__isnull=False)
        if self.value() == "no":
            return queryset.filter(near_duplicate_of__isnull=True)
        return queryset


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "original_name", "project", "format", "size", "near_duplicate_of", "created_at"]
    list_filter = ["project", NearDuplicateFilter, "format", "source_mode"]
    search_fields = ["original_name", "sha256"]
    list_select_related = ["project"]
    readonly_fields = [field.name for field in Image._meta.fields] + ["preview_large"]
    list_per_page = 50

    @admin.display(description="")
    def preview(self, obj: Image) -> str:
        return format_html('<img src="{}" alt="" style="height:56px;border-radius:3px" loading="lazy">', obj.thumbnail.url)

    @admin.display(description="Preview")
    def preview_large(self, obj: Image) -> str:
        return format_html('<a href="{}"><img src="{}" alt="" style="max-height:320px"></a>', obj.display.url, obj.thumbnail.url)

    @admin.display(description="Pixels")
    def size(self, obj: Image) -> str:
        return f"{obj.width} x {obj.height}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Images arrive through the import path (a project's "Upload images" or import_images), which
        # decodes, hashes and derives them; a bare form would bypass all of that.
        return False
