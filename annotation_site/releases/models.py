from django.conf import settings
from django.db import models
from django.utils import timezone


class Release(models.Model):
    """One version of a project's dataset release. Once done it never changes: a new export is a new
    version, and its files are pinned by the digest of their MANIFEST.sha256."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="releases")
    version = models.PositiveIntegerField(help_text="1, 2, 3, ... per project.")
    schema_version = models.ForeignKey(
        "schemas.SchemaVersion", on_delete=models.PROTECT, related_name="+", help_text="The schema the release reads labels with."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    stage = models.CharField(max_length=200, blank=True, help_text="What the build is doing now.")
    options = models.JSONField(default=dict, help_text="Seed, split ratios, resamples, images copied or referenced, ...")
    output_dir = models.CharField(max_length=1000, help_text="Folder the release is written to.")
    counts = models.JSONField(default=dict, blank=True, help_text="Images, labels, raters, per split, ...")
    model_versions = models.JSONField(default=list, blank=True, help_text="Models whose predictions touched the project.")
    conversations_included = models.BooleanField(default=False)
    manifest_sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of MANIFEST.sha256.")
    archive = models.CharField(
        max_length=500, blank=True, help_text="The release as one zip file in the media storage, for staff to download."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="release_version_unique_per_project")]

    def __str__(self) -> str:
        return self.release_id

    @property
    def release_id(self) -> str:
        return f"{self.project.slug}-v{self.version}"


class ReleaseSplit(models.Model):
    """The split an image was given in a release; the next release of the project starts from these."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="splits", db_index=False)
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="+", db_index=False)
    split = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "image"], name="release_split_once_per_image")]

    def __str__(self) -> str:
        return f"image #{self.image_id} in {self.split}"
