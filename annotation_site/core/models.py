from django.db import models
from django.utils import timezone


class PendingTask(models.Model):
    """A task the web could not hand to the broker (it was down or hung). The periodic task
    `core.send_pending_tasks` sends it once the broker answers again (annotation_site/core/tasks.py)."""

    name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    queue = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=1)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"pending {self.name}{tuple(self.args)!r}"
