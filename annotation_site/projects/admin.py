from __future__ import annotations

import json
from dataclasses import asdict, replace

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from annotation_site.images.services import images_import
from annotation_site.images.sources import FileSource, collect_sources
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.services import schema_version_create
from annotation_site.schemas.spec import SchemaError, load_schema_file, parse_schema

from .models import Project


class ProjectForm(forms.ModelForm):
    schema_file = forms.FileField(
        required=False,
        help_text="Annotation schema (JSON). Leave empty on a new project to use the RealQA schema; "
        "on an existing project a changed schema becomes its next version.",
    )

    class Meta:
        model = Project
        fields = ["slug", "name", "description", "overlap", "is_active"]

    def clean_schema_file(self) -> dict | None:
        upload = self.cleaned_data.get("schema_file")
        try:
            if upload is None:
                return None if self.instance.pk else load_schema_file(settings.REALQA_SCHEMA_PATH).to_dict()
            try:
                data = json.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise forms.ValidationError(f"{upload.name}: not valid JSON: {exc}") from None
            return parse_schema(data).to_dict()
        except SchemaError as exc:
            raise forms.ValidationError(exc.errors) from None


class SchemaVersionInline(admin.TabularInline):
    model = SchemaVersion
    fields = ["version", "digest", "created_at", "created_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Django's documented recipe for a field that takes several files."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list:
        if isinstance(data, (list, tuple)):
            if not data and self.required:  # a POST without any file: say so rather than import nothing
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(help_text="Photos or zip archives; several at once.")


def _upload_sources(uploads: list) -> list:
    """Uploads always land in temporary files (FILE_UPLOAD_HANDLERS), so a photo is read like a file
    on disk and a zip is unpacked like a zip on disk, under the name the user chose."""
    sources: list = []
    for upload in uploads:
        temporary = upload.temporary_file_path()
        if upload.name.lower().endswith(".zip"):
            sources.extend(
                replace(source, name=source.name.replace(temporary, upload.name, 1))
                for source in collect_sources([temporary])
            )
        else:
            sources.append(FileSource(name=upload.name, path=temporary))
    return sources


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ["slug", "name", "overlap", "is_active", "image_count", "upload_link"]
    search_fields = ["slug", "name"]
    inlines = [SchemaVersionInline]

    @admin.display(description="Images")
    def image_count(self, obj: Project) -> int:
        return obj.images.count()

    @admin.display(description="")
    def upload_link(self, obj: Project) -> str:
        return format_html('<a href="{}">Upload images</a>', reverse("admin:projects_project_upload", args=[obj.pk]))

    def save_model(self, request: HttpRequest, obj: Project, form: ProjectForm, change: bool) -> None:
        # The admin runs this in one transaction with the form, so project and schema land together.
        super().save_model(request, obj, form, change)
        definition = form.cleaned_data.get("schema_file")
        if definition is not None:
            version, created = schema_version_create(project=obj, definition=definition, created_by=request.user)
            if created and change:
                messages.info(request, f"The schema is now at version {version.version}.")

    def get_urls(self) -> list:
        return [
            path("<int:pk>/upload/", self.admin_site.admin_view(self.upload_view), name="projects_project_upload"),
        ] + super().get_urls()

    def upload_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        project = get_object_or_404(Project, pk=pk)
        if not self.has_change_permission(request, project):
            raise PermissionDenied
        report = None
        # Bound on every POST, even an empty one, so a POST without files is told what is missing.
        form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
        wants_json = request.headers.get("Accept") == "application/json"
        if request.method == "POST":
            if not form.is_valid():
                if wants_json:
                    return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
            else:
                report = images_import(project=project, sources=_upload_sources(form.cleaned_data["files"]))
                if wants_json:
                    # The page's script sends files one request at a time to draw its progress bar.
                    return JsonResponse({"lines": [asdict(line) for line in report.lines]})
                messages.info(request, f"{project.slug}: {report.summary()}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Upload images to {project}",
            "project": project,
            "opts": self.model._meta,
            "form": form,
            "report": report,
        }
        return render(request, "admin/projects/project/upload.html", context)
