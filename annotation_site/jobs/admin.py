from django.contrib import admin
from django.utils.html import format_html

from annotation_site.labeling.admin import ReadOnlyAdmin

from .models import Job


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "project", "status", "progress", "message", "created_at", "finished_at"]
    list_filter = ["status", "kind", "project"]
    list_select_related = ["project"]

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return format_html(
            '<progress max="100" value="{}" title="{} of {}"></progress> {}%', job.percent, job.done, job.total, job.percent
        )
