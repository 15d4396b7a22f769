"""Writes for images: importing files into a project and flagging near-duplicates."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q

from annotation_site.core.dbstats import tables_analyze_after_bulk
from annotation_site.core.tasks import enqueue
from annotation_site.projects.models import Project

from .imaging import ImagingLimits
from .models import Image
from .neardup import NearDuplicateIndex
from .pipeline import Decoded, Refused, decode_sources
from .sources import Source, Unusable

logger = logging.getLogger(__name__)

PRESCORE_BATCH = 32

Outcome = Literal["imported", "duplicate", "rejected"]


@dataclass(frozen=True)
class ImportLine:
    name: str
    outcome: Outcome
    detail: str = ""
    image_id: int | None = None


@dataclass
class ImportReport:
    lines: list[ImportLine] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def imported(self) -> int:
        return self.count("imported")

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    @property
    def near_duplicates(self) -> int:
        return sum(1 for line in self.lines if line.outcome == "imported" and "near-duplicate" in line.detail)

    def summary(self) -> str:
        return (
            f"{self.imported} imported ({self.near_duplicates} flagged as near-duplicates), "
            f"{self.duplicates} exact duplicates skipped, {self.rejected} rejected"
        )


def imaging_limits() -> ImagingLimits:
    return ImagingLimits(
        max_bytes=settings.IMAGES_MAX_BYTES,
        max_pixels=settings.IMAGES_MAX_PIXELS,
        thumbnail_size=settings.IMAGES_THUMBNAIL_SIZE,
    )


def _storage_name(kind: str, sha256: str, extension: str) -> str:
    return f"images/{kind}/{sha256[:2]}/{sha256}.{extension}"


def _write_if_absent(name: str, data: bytes) -> bool:
    """Store content-addressed bytes; True when this call created the file."""
    if default_storage.exists(name):
        return False
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        # Another process stored the same bytes a moment earlier; keep theirs.
        default_storage.delete(saved)
        return False
    return True


def _delete_unreferenced(names: list[str]) -> None:
    for name in names:
        if not Image.objects.filter(Q(original=name) | Q(display=name) | Q(thumbnail=name)).exists():
            default_storage.delete(name)


def image_store(*, project: Project, decoded: Decoded, index: NearDuplicateIndex) -> ImportLine:
    """Store one decoded image: files first, then the row in one transaction. A failure removes the
    files this call wrote, so nothing is left half-stored."""
    prepared = decoded.prepared
    existing = Image.objects.filter(project=project, sha256=prepared.sha256).values_list("id", "original_name").first()
    if existing:
        return ImportLine(decoded.name, "duplicate", f"same bytes as image #{existing[0]} ({existing[1]})", existing[0])

    original_name = _storage_name("originals", prepared.sha256, prepared.extension)
    thumbnail_name = _storage_name("thumbnails", prepared.sha256, prepared.thumbnail.extension)
    files = [(original_name, decoded.data), (thumbnail_name, prepared.thumbnail.data)]
    display_name = original_name
    if prepared.display is not None:
        display_name = _storage_name("display", prepared.sha256, prepared.display.extension)
        files.append((display_name, prepared.display.data))

    written: list[str] = []
    try:
        for name, data in files:
            if _write_if_absent(name, data):
                written.append(name)
        near = index.nearest(prepared.phash, settings.IMAGES_NEAR_DUPLICATE_DISTANCE)
        with transaction.atomic():
            image = Image.objects.create(
                project=project,
                sha256=prepared.sha256,
                phash=prepared.phash,
                original=original_name,
                display=display_name,
                thumbnail=thumbnail_name,
                original_name=decoded.name[-255:],
                format=prepared.format,
                source_mode=prepared.source_mode,
                width=prepared.width,
                height=prepared.height,
                orientation=prepared.orientation,
                byte_size=prepared.byte_size,
                near_duplicate_of_id=near[0] if near else None,
                near_duplicate_distance=near[1] if near else None,
            )
    except IntegrityError:
        # The same bytes arrived through a concurrent import a moment ago.
        _delete_unreferenced(written)
        existing_id = Image.objects.filter(project=project, sha256=prepared.sha256).values_list("id", flat=True).first()
        return ImportLine(decoded.name, "duplicate", f"same bytes as image #{existing_id}", existing_id)
    except BaseException:
        _delete_unreferenced(written)
        raise

    index.add(image.id, prepared.phash)
    notes = list(prepared.notes)
    if near:
        notes.insert(0, f"near-duplicate of image #{near[0]} (hash distance {near[1]})")
    return ImportLine(decoded.name, "imported", "; ".join(notes), image.id)


def project_near_duplicate_index(*, project: Project) -> NearDuplicateIndex:
    return NearDuplicateIndex(list(Image.objects.filter(project=project).order_by("id").values_list("id", "phash")))


def images_import(
    *,
    project: Project,
    sources: Iterable[Source | Unusable],
    workers: int = 1,
    on_line: Callable[[ImportLine], None] | None = None,
) -> ImportReport:
    """Import every source into the project. Exact duplicates (same bytes) are skipped, near-duplicates
    imported and flagged, and each rejected file gets one line saying why. Running it again on the
    same files imports nothing new."""
    report = ImportReport()

    def record(line: ImportLine) -> None:
        report.lines.append(line)
        if on_line is not None:
            on_line(line)

    readable: list[Source] = []
    for source in sources:
        if isinstance(source, Unusable):
            record(ImportLine(source.name, "rejected", source.reason))
        else:
            readable.append(source)

    index = project_near_duplicate_index(project=project)
    workers = max(1, min(workers, len(readable) // 4 or 1, os.cpu_count() or 1))
    for result in decode_sources(readable, imaging_limits(), workers=workers):
        if isinstance(result, Refused):
            record(ImportLine(result.name, "rejected", result.reason))
        else:
            record(image_store(project=project, decoded=result, index=index))
    logger.info("import into %s: %s", project.slug, report.summary())
    imported = [line.image_id for line in report.lines if line.outcome == "imported"]
    # The next rater's pick and the staff pages read these rows at once.
    tables_analyze_after_bulk(rows=len(imported), models=(Image,))
    for start in range(0, len(imported), PRESCORE_BATCH):
        # A new image is pre-scored without anyone asking; the workers' sweep covers a lost message.
        enqueue("model.prescore_images", args=[imported[start : start + PRESCORE_BATCH]])
    return report


def images_near_duplicates_refresh(*, project: Project) -> int:
    """Recompute every near-duplicate flag of a project (after a threshold change, or after imports
    that ran side by side); each image points at its closest earlier image. Returns how many are flagged."""
    index = NearDuplicateIndex()
    flagged = 0
    changed: list[Image] = []
    for image in Image.objects.filter(project=project).order_by("id").only(
        "id", "phash", "near_duplicate_of_id", "near_duplicate_distance"
    ):
        near = index.nearest(image.phash, settings.IMAGES_NEAR_DUPLICATE_DISTANCE)
        new = (near[0], near[1]) if near else (None, None)
        if (image.near_duplicate_of_id, image.near_duplicate_distance) != new:
            image.near_duplicate_of_id, image.near_duplicate_distance = new
            changed.append(image)
        flagged += near is not None
        index.add(image.id, image.phash)
    Image.objects.bulk_update(changed, ["near_duplicate_of", "near_duplicate_distance"], batch_size=500)
    return flagged
