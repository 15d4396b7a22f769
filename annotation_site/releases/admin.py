from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from annotation_site.projects.models import Project

from .models import Release
from .options import DEFAULT_RATIOS, IMAGE_MODES, ReleaseError, parse_ratios
from .selectors import release_progress
from .services import release_create, release_queue


class ReleaseCreateForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.all())
    seed = forms.IntegerField(initial=0, min_value=0, help_text="Splits and bootstrap intervals draw from it.")
    ratios = forms.CharField(
        initial=",".join(f"{name}={share:g}" for name, share in DEFAULT_RATIOS.items()),
        help_text="Split shares summing to 1. An image keeps the split it had in the project's previous release.",
    )
    resamples = forms.IntegerField(initial=1000, min_value=1, help_text="Bootstrap resamples per alpha interval.")
    images = forms.ChoiceField(
        choices=[(mode, mode) for mode in IMAGE_MODES], initial="copy", help_text="Copy the photos into the release or refer to them."
    )
    reassign_splits = forms.BooleanField(required=False, help_text="Split afresh instead of keeping earlier splits.")
    score_field = forms.CharField(required=False, help_text="Overall score field to stratify by (default: the first).")

    def clean_ratios(self) -> dict[str, float]:
        try:
            return parse_ratios(self.cleaned_data["ratios"])
        except ReleaseError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = [
        "name", "project", "status", "progress_bar", "download", "images", "labels", "raters", "conversations_included", "created_at",
        "output_dir",
    ]
    list_filter = ["status", "project"]
    list_select_related = ["project"]
    readonly_fields = [
        "project", "version", "schema_version", "status", "progress", "stage", "options", "output_dir", "counts",
        "model_versions", "conversations_included", "manifest_sha256", "archive", "error", "created_at", "started_at",
        "finished_at", "created_by",
    ]
    actions = ["build_again", "release_again"]
    change_list_template = "admin/releases/release/change_list.html"

    @admin.display(description="release")
    def name(self, release: Release) -> str:
        return release.release_id

    @admin.display(description="progress")
    def progress_bar(self, release: Release) -> str:
        percent = int(round(100 * release.progress))
        return format_html(
            '<span class="release-progress" data-release="{}" data-status="{}"><progress max="100" value="{}"></progress> '
            '<span class="release-stage">{}</span></span>',
            release.pk,
            release.status,
            percent,
            release.error if release.status == Release.Status.FAILED else (release.stage or f"{percent}%"),
        )

    @admin.display(description="download")
    def download(self, release: Release) -> str:
        if release.archive:
            return format_html('<a href="{}" download>{}.zip</a>', reverse("release-download", args=[release.pk]), release.release_id)
        return "not zipped yet" if release.status == Release.Status.DONE else ""

    @admin.display(description="images")
    def images(self, release: Release) -> object:
        return release.counts.get("images", "")

    @admin.display(description="labels")
    def labels(self, release: Release) -> object:
        return release.counts.get("labels", "")

    @admin.display(description="raters")
    def raters(self, release: Release) -> object:
        return release.counts.get("raters", "")

    # A release is immutable: it is created here, built by a worker, and never edited or deleted.
    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list:
        return [
            path("progress/", self.admin_site.admin_view(self.progress_view), name="releases_release_progress"),
        ] + super().get_urls()

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:200]
        return JsonResponse({"releases": release_progress(release_ids=ids)})

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """"Create release": validate, number the version and hand the build to a worker; the list then shows its
        progress."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ReleaseCreateForm(request.POST or None, initial={"project": request.GET.get("project")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                release = release_create(
                    project=data["project"],
                    options={
                        "seed": data["seed"],
                        "ratios": data["ratios"],
                        "resamples": data["resamples"],
                        "images": data["images"],
                        "reassign_splits": data["reassign_splits"],
                        "score_field": data["score_field"],
                    },
                    created_by=request.user,
                )
            except ReleaseError as exc:
                form.add_error(None, str(exc))
            else:
                release_queue(release=release)
                messages.info(request, f"{release.release_id} is queued; a worker builds it into {release.output_dir}.")
                return HttpResponseRedirect(reverse("admin:releases_release_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Create release",
            "opts": self.model._meta,
            "form": form,
        }
        return render(request, "admin/releases/release/create.html", context)

    @admin.action(description="Build again (queued or failed releases)", permissions=["add"])
    def build_again(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        pending = [r for r in queryset.select_related("project") if r.status in (Release.Status.QUEUED, Release.Status.FAILED)]
        for release in pending:
            release_queue(release=release)
        skipped = queryset.count() - len(pending)
        messages.info(
            request,
            f"{len(pending)} release(s) queued again" + (f"; {skipped} running or done left as they are" if skipped else ""),
        )

    @admin.action(description="Create the next release of the same project with the same options", permissions=["add"])
    def release_again(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        for release in queryset.select_related("project"):
            options = {**release.options, "reassign_splits": False}
            try:
                new = release_create(project=release.project, options=options, created_by=request.user)
            except ReleaseError as exc:
                messages.error(request, f"{release.project.slug}: {exc}")
                continue
            release_queue(release=new)
            messages.info(request, f"{new.release_id} is queued.")
