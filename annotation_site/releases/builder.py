"""The release export: stream the labels out of the database, compute every statistic per field, write the files.

Memory. Labels are read once, in image order, a block of whole images at a time (COPY parsed by Arrow on
PostgreSQL, server-side iteration elsewhere), and never held as Python objects: the pass keeps numeric arrays only
(image, rater, slot and one float per field: about 100 bytes a label), writes ratings.csv and ratings.parquet
block by block, and keeps of the free text only each image's normalised answers and one consensus reason per
field. Per-field statistics build a (raters, images) matrix for one field at a time in each of the statistics
worker processes. So the peak grows with labels x 100 bytes plus a few fields' matrices, not with the JSON of the
labels.

Consistency. The set of labels is fixed at the start (the highest annotation id and the raters who count then),
so a label arriving or a rater being excluded during the build changes nothing.

Extra writers. Files that need code annotation_site may not import (the LLaMA-Factory conversations need
realqa_model's prompts) are written by writers the caller passes in (see ReleaseWriter); a release built
without a writer named "conversations" says in release.json and the datasheet that it has no conversations.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import posixpath
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.db.models import Avg, Count, Exists, Max, OuterRef
from django.db.models.fields.json import KT

from annotation_site.images.models import Image
from annotation_site.labeling.models import Annotation
from annotation_site.projects.models import Project
from annotation_site.quality.selectors import annotations_for_statistics
from annotation_site.raters.models import Membership, RaterProfile
from annotation_site.raters.services import rater_profile_ensure
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.spec import FieldSpec, SchemaSpec
from annotation_site.statistics.splits import assign_splits, near_duplicate_groups

from . import plots, report
from .tasks_export import ReleaseImages, tasks_write
from .fieldstats import FieldStats, LabelArrays, field_stats, image_consensus
from .options import ReleaseError, ReleaseOptions
from .tables import StreamingTable, float_column, write_csv, write_parquet

CHUNK = 5000  # labels per database round trip and per ratings-file chunk
# Labels per COPY statement on PostgreSQL: progress is reported between them (the connection is busy during one),
# and each costs a planning and a sort of its own (at 40,000 the reading of 142,000 labels took 0.2 s longer).
COPY_LABELS = 250_000
# Worker processes for the statistics; the builder itself keeps writing files meanwhile.
STATISTICS_PROCESSES = 2
# A release of at most this many labels computes its statistics and draws its plots in the building process:
# the three helper interpreters, each importing numpy, scipy or matplotlib, cost seconds, more than its whole work.
IN_PROCESS_MAX_LABELS = 5000
COPY_BUFFER = 1 << 20
MANIFEST = "MANIFEST.sha256"
# pyiqa's datasets name their phases train / val / test.
PYIQA_PHASES = {"validation": "val", "valid": "val", "val": "val", "train": "train", "test": "test"}

Progress = Callable[[float, str], None]


# ------------------------------------------------------------------------------------------------ extra writers


@dataclass(frozen=True)
class ImageConsensus:
    """What an extra writer gets for every image of the release.

    file: the image as the release refers to it (relative to the release folder when copied).
    values: the consensus per field, typed as a label is (choice value, whole number for integer fields, the
        unrounded MOS for continuous fields, text); fields without a label are absent.
    reasons: per field with reasons, the reason of the rater closest to the consensus.
    scores: the unrounded MOS of every score field that has one.
    """

    file: str
    sha256: str
    split: str
    values: dict[str, object]
    reasons: dict[str, str]
    scores: dict[str, float]


@dataclass(frozen=True)
class ReleaseContext:
    directory: Path  # the folder being written; writers put their files below it
    release_id: str
    schema: dict  # the schema as SchemaSpec.to_dict(), the shape realqa_model.prompts reads
    score_field: str
    splits: tuple[str, ...]


class ReleaseWriter(Protocol):
    """A writer of extra release files. `name` keys its summary in release.json ("conversations" marks the
    release as having its training conversations). `close` returns {"files": [...], "counts": {...},
    "notes": [...]}; any exception fails the release, nothing half-written is kept."""

    name: str

    def open(self, context: ReleaseContext) -> None: ...

    def add(self, image: ImageConsensus) -> None: ...

    def close(self) -> dict: ...


# ------------------------------------------------------------------------------------------------ request/result


@dataclass(frozen=True)
class BuildRequest:
    release_id: str
    version: int
    project: Project
    schema_version: SchemaVersion
    spec: SchemaSpec
    options: ReleaseOptions
    previous_splits: dict[int, str]  # image id -> split of the previous release (empty: split afresh)
    previous_release: str  # its id, "" when none
    model_versions: list[str]
    created_at: datetime


@dataclass
class BuildResult:
    counts: dict
    splits: dict[int, str]
    conversations_included: bool
    manifest_sha256: str


# ------------------------------------------------------------------------------------------------ helpers


def normalise_text(text: object) -> str:
    """A text answer as released: whitespace runs collapsed, ends trimmed (case kept)."""
    return " ".join(str(text).split())


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(COPY_BUFFER), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _reading_everything() -> Iterator[None]:
    """PostgreSQL plans a cursor for its first 10% of rows by default, and may pick a fast-start plan that is slow
    over all of them; the release reads every row, so say so."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET cursor_tuple_fraction = 1.0")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET cursor_tuple_fraction")
        except DatabaseError:  # the transaction already failed; its own error is the one to report
            pass


def _lenient_decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@contextmanager
def lenient_text() -> Iterator[None]:
    """On SQLite, text that is not UTF-8 read as U+FFFD instead of failing the whole read: json_extract turns the
    escape of a lone surrogate (which an older version stored inside JSON) into bytes no UTF-8 decoder takes.
    PostgreSQL never holds such text."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.text_factory
    raw.text_factory = _lenient_decode
    try:
        yield
    finally:
        raw.text_factory = previous


def _stream(query) -> Iterator[tuple]:  # type: ignore[no-untyped-def]
    with _reading_everything(), lenient_text():
        yield from query.iterator(chunk_size=CHUNK)


class _CopyStream(io.RawIOBase):
    """The blocks of a psycopg COPY ... TO STDOUT as a readable binary file, for Arrow's CSV reader."""

    def __init__(self, blocks: Iterator[memoryview]) -> None:
        self.blocks = blocks
        self.block = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self.block:
            try:
                self.block = memoryview(next(self.blocks)).cast("B")
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.block))
        buffer[:n] = self.block[:n]
        self.block = self.block[n:]
        return n


def _can_copy() -> bool:
    """PostgreSQL through psycopg 3, whose cursors have copy()."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy")


def _copy_blocks(query, names: Sequence[str], types: dict[str, pa.DataType]) -> Iterator[pa.Table]:  # type: ignore[no-untyped-def]
    """The rows of a values_list query read with COPY ... TO STDOUT (CSV) and parsed by Arrow's C++ CSV reader,
    a block of about 4 MB at a time: the labels never pass through Python tuples. CSV has one way to tell NULL (an
    unquoted empty field) from an empty text (""), which the options below keep apart."""
    sql, params = query.query.sql_with_params()
    statement = f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT WITH (FORMAT csv)"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        source = pa.PythonFile(io.BufferedReader(_CopyStream(iter(copy)), COPY_BUFFER), mode="r")
        reader = pa_csv.open_csv(
            source,
            read_options=pa_csv.ReadOptions(column_names=list(names), block_size=4 << 20, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""]
            ),
        )
        for batch in reader:
            yield pa.Table.from_batches([batch])


def _float_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


class _FieldColumn:
    """Turns one field's column of raw values (text from PostgreSQL's ->>, typed values on SQLite, None when the
    label has no value) into the floats the statistics use: the number of a score, the index of a choice, the code
    of a normalised text answer. A value the release's schema refuses becomes nan and is counted."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.invalid = 0
        self.codes: dict[str, int] = {c.value: i for i, c in enumerate(spec.choices)}
        self.text_codes: dict[str, int] = {}

    def parse(self, raw: Sequence[object] | pa.Array) -> tuple[np.ndarray, pa.Array | None]:
        if isinstance(raw, pa.Array):
            return self.parse_text(raw)
        spec, n = self.spec, len(raw)
        present = np.fromiter((v is not None for v in raw), bool, n)
        if spec.is_score:
            try:
                numbers = np.array(raw, dtype=np.float64)
            except (TypeError, ValueError):
                numbers = np.array([_float_or_nan(v) for v in raw], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(numbers) & (numbers >= spec.min) & (numbers <= spec.max)
                if spec.kind == "integer":
                    ok &= numbers == np.round(numbers)
            numbers[~ok] = np.nan
            self.invalid += int((present & ~ok).sum())
            return numbers, None
        if spec.is_choice:
            codes = np.fromiter((self.codes.get(v, -1) if isinstance(v, str) else -1 for v in raw), np.int64, n)
            self.invalid += int((present & (codes < 0)).sum())
            return np.where(codes >= 0, codes, np.nan).astype(np.float64), None
        self.invalid += sum(1 for v in raw if v is not None and not isinstance(v, str))
        return self.parse_answers(pa.array([v if isinstance(v, str) else None for v in raw], pa.string()))

    def parse_answers(self, raw: pa.Array) -> tuple[np.ndarray, pa.Array]:
        """Text answers: normalised, and coded by their case-folded form in order of first appearance (answers that
        differ only in case or spacing are the same answer for agreement). The Python string work is done once per
        distinct text: a dictionary encoding keeps the texts in order of first appearance and points each label at
        its text, which gives the same codes as going label by label."""
        encoded = pc.dictionary_encode(raw)
        distinct = [normalise_text(v) or None for v in encoded.dictionary.to_pylist()]
        setdefault, codes_seen = self.text_codes.setdefault, self.text_codes
        code_of = np.array(
            [math.nan if t is None else float(setdefault(t.casefold(), len(codes_seen))) for t in distinct] + [math.nan],
            dtype=np.float64,
        )
        # A label without text points at the extra nan code after the dictionary's entries.
        index = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False).astype(np.int64)
        texts = pa.array(distinct + [None], pa.string()).take(pa.array(index))
        return code_of[index], texts

    def parse_text(self, raw: pa.Array) -> tuple[np.ndarray, pa.Array | None]:
        """The same for a column of text (PostgreSQL's ->> read with COPY), converted by Arrow's compute
        functions; what they cannot convert goes value by value through `parse` as above."""
        spec = self.spec
        if spec.is_score:
            try:
                numbers = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return self.parse(raw.to_pylist())
            present = raw.is_valid().to_numpy(zero_copy_only=False)
            numbers = np.array(numbers, dtype=np.float64)  # writable, nan where null
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(numbers) & (numbers >= spec.min) & (numbers <= spec.max)
                if spec.kind == "integer":
                    ok &= numbers == np.round(numbers)
            numbers[~ok] = np.nan
            self.invalid += int((present & ~ok).sum())
            return numbers, None
        if spec.is_choice:
            index = pc.index_in(raw, value_set=pa.array([c.value for c in spec.choices], pa.string()))
            codes = index.to_numpy(zero_copy_only=False)  # float, nan where null: no such choice or no value
            present = raw.is_valid().to_numpy(zero_copy_only=False)
            self.invalid += int((present & np.isnan(codes)).sum())
            return np.asarray(codes, dtype=np.float64), None
        return self.parse_answers(raw)


def _arrow_type(spec: FieldSpec) -> pa.DataType:
    if spec.kind == "integer":
        return pa.int64()
    if spec.kind == "continuous":
        return pa.float64()
    return pa.string()


def _answers_by_group(group: np.ndarray, groups: int, codes: np.ndarray, texts: pa.Array) -> list[list[str]]:
    """Per group (image), its distinct answers, most frequent first (by code, i.e. case-insensitively), first seen
    first on ties, each as its first rater wrote it. codes: per label, nan without an answer."""
    index = np.flatnonzero(~np.isnan(codes))
    group_of, code = group[index], codes[index].astype(np.int64)
    order = np.lexsort((index, code, group_of))
    group_of, code, index = group_of[order], code[order], index[order]
    starts = np.flatnonzero(np.r_[True, (group_of[1:] != group_of[:-1]) | (code[1:] != code[:-1])])
    first, owner = index[starts], group_of[starts]
    count = np.diff(np.r_[starts, index.size])
    ranked = np.lexsort((first, -count, owner))
    answers: list[list[str]] = [[] for _ in range(groups)]
    for g, text in zip(owner[ranked].tolist(), texts.take(pa.array(first[ranked])).to_pylist()):
        answers[g].append(text)
    return answers


def _closest_reasons(
    group: np.ndarray, groups: int, numbers: np.ndarray, reasons: pa.Array, *, score: bool
) -> list[str | None]:
    """Per group (image), the reason of the label closest to the group's consensus: the mean for a score, the
    majority (first choice on a tie) for a choice; the first label (rater id order) on a tie."""
    has = ~np.isnan(numbers)
    if score:
        total = np.bincount(group[has], weights=numbers[has], minlength=groups)
        count = np.bincount(group[has], minlength=groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            target = total / count
        distance = np.abs(numbers - target[group])
    else:
        codes = np.where(has, numbers, 0).astype(np.int64)
        width = int(codes.max()) + 1 if codes.size else 1
        counts = np.bincount(group[has] * width + codes[has], minlength=groups * width).reshape(groups, width)
        distance = (codes != counts.argmax(axis=1)[group]).astype(np.float64)
    written = pc.fill_null(pc.greater(pc.binary_length(reasons), 0), False).to_numpy(zero_copy_only=False)
    distance = np.where(has & written, distance, np.inf)
    order = np.lexsort((np.arange(group.size), distance, group))
    firsts = order[np.r_[True, group[order][1:] != group[order][:-1]]]
    found = firsts[np.isfinite(distance[firsts])]
    chosen: list[str | None] = [None] * groups
    for g, reason in zip(group[found].tolist(), reasons.take(pa.array(found)).to_pylist()):
        chosen[g] = reason
    return chosen


@dataclass
class _Images:
    ids: np.ndarray
    sha256: list[str]
    display: list[str]
    width: list[int]
    height: list[int]
    groups: list[str]
    files: list[str] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)


class _Build:
    def __init__(self, request: BuildRequest, directory: Path, writers: Sequence[ReleaseWriter], progress: Progress) -> None:
        self.request = request
        self.spec = request.spec
        self.options = request.options
        self.project = request.project
        self.directory = directory
        self.writers = list(writers)
        self._progress = progress
        self.digests: dict[str, str] = {}  # release path -> sha256, for files hashed while written
        self.counts: dict = {}
        self.notes: list[str] = []

    def progress(self, fraction: float, stage: str) -> None:
        self._progress(min(1.0, max(0.0, fraction)), stage)

    # ---- what the release covers

    def select(self) -> None:
        self.progress(0.0, "selecting labels")
        usable = annotations_for_statistics(project=self.project)
        # One scan for both: the count is that of the labels up to the highest id, as both come from one snapshot.
        fixed = usable.aggregate(top=Max("id"), total=Count("id"))
        self.max_id, self.total_labels = fixed["top"], fixed["total"]
        if self.max_id is None:
            raise ReleaseError(f"project {self.project.slug!r} has no labels a release may use")
        self.usable = usable.filter(id__lte=self.max_id)
        rater_ids = sorted(self.usable.order_by().values_list("rater_id", flat=True).distinct())
        self.rater_ids = np.array(rater_ids, dtype=np.int64)
        self.rater_position = {r: i for i, r in enumerate(rater_ids)}
        profiles = dict(RaterProfile.objects.filter(user_id__in=rater_ids).values_list("user_id", "pseudonym"))
        for rater in rater_ids:
            if rater not in profiles:  # staff who labeled without a rater profile: give them a pseudonym now
                from django.contrib.auth import get_user_model

                profiles[rater] = rater_profile_ensure(user=get_user_model().objects.get(pk=rater)).pseudonym
        self.pseudonyms = [profiles[r] for r in rater_ids]

        rows = list(
            Image.objects.filter(project=self.project, is_gold=False)
            .filter(Exists(self.usable.filter(image_id=OuterRef("pk"))))
            .order_by("id")
            .values_list("id", "sha256", "display", "width", "height")
        )
        # Near-duplicate groups come from every image of the project, so that two released images linked through
        # an unreleased one (a gold image, say) still count as one group.
        links = {}
        sha_of = {}
        for image_id, sha, duplicate_of in Image.objects.filter(project=self.project).values_list("id", "sha256", "near_duplicate_of_id"):
            sha_of[image_id] = sha
            links[image_id] = duplicate_of
        groups = near_duplicate_groups({sha_of[i]: (sha_of.get(d) if d is not None else None) for i, d in links.items()})
        self.images = _Images(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            sha256=[r[1] for r in rows],
            display=[r[2] for r in rows],
            width=[r[3] for r in rows],
            height=[r[4] for r in rows],
            groups=[groups.get(r[1], r[1]) for r in rows],
        )
        self.images.position = {int(i): p for p, i in enumerate(self.images.ids)}
        self.images.files = [self.file_name(sha, display) for sha, display in zip(self.images.sha256, self.images.display)]

        excluded = Membership.objects.filter(project=self.project, status=Membership.Status.EXCLUDED)
        self.counts.update(
            excluded_raters=excluded.count(),
            excluded_raters_labels=Annotation.objects.filter(
                project=self.project, image__is_gold=False, rater_id__in=excluded.values("rater_id")
            ).count(),
            gold_labels_left_out=Annotation.objects.filter(project=self.project, image__is_gold=True).count(),
            gold_images=Image.objects.filter(project=self.project, is_gold=True).count(),
            images_without_labels=Image.objects.filter(project=self.project, is_gold=False).count() - len(rows),
        )

    def file_name(self, sha: str, display: str) -> str:
        if self.options.images == "copy":
            extension = Path(display).suffix.lower() or ".jpg"
            return f"images/{sha}{extension}"
        try:
            return default_storage.path(display)
        except NotImplementedError:
            # An object store's URLs are signed and expire within minutes (AWS_QUERYSTRING_EXPIRE): name the object
            # itself, which whoever owns the bucket can fetch or sign again.
            bucket = getattr(default_storage, "bucket_name", "")
            key = posixpath.join(getattr(default_storage, "location", "") or "", display)
            return f"s3://{bucket}/{key}" if bucket else default_storage.url(display)

    # ---- pass A: numbers, and the ratings files

    def read_numbers(self) -> None:
        """The one pass over the labels, in image order, a chunk of whole images at a time. PostgreSQL hands each
        field over as its own column (values ->> 'key') of a COPY's CSV, which Arrow parses, so no label's JSON is
        decoded in Python nor any label made a Python tuple."""
        fields = self.spec.fields
        columns = [_FieldColumn(f) for f in fields]
        text_keys = [f.key for f in fields if f.kind == "text"]
        reason_fields = [f for f in fields if f.reason is not None]
        n_images = self.images.ids.size
        self.answers = {key: [[] for _ in range(n_images)] for key in text_keys}
        self.consensus_text = {key: [None] * n_images for key in text_keys}
        self.consensus_reason = {f.key: [None] * n_images for f in reason_fields}
        schema = pa.schema(
            [("file", pa.string()), ("image_sha256", pa.string()), ("rater", pa.string()),
             ("created_at", pa.timestamp("us", tz="UTC")), ("source", pa.string())]
            + [(f.key, _arrow_type(f)) for f in fields]
            + [(f"{f.key}_reason", pa.string()) for f in reason_fields]
        )
        self.ratings_writer = StreamingTable(schema, self.directory / "ratings.csv", self.directory / "ratings.parquet")
        self.arrow_files = pa.array(self.images.files, pa.string())
        self.arrow_shas = pa.array(self.images.sha256, pa.string())
        self.arrow_pseudonyms = pa.array(self.pseudonyms, pa.string())
        self.choice_values = {f.key: pa.array([c.value for c in f.choices], pa.string()) for f in fields if f.is_choice}
        self.parts: dict[str, list[np.ndarray]] = {"image": [], "rater": [], "slot": [], "values": []}
        self.sources: Counter[str] = Counter()
        self.first_label = self.last_label = None
        self.skipped = 0

        query = self.usable.order_by("image_id", "rater_id").values_list(
            "image_id",
            "rater_id",
            "created_at",
            "source",
            *(KT(f"values__{f.key}") for f in fields),
            *(KT(f"reasons__{f.key}") for f in reason_fields),
        )
        read = 0
        self.progress(0.02, f"reading labels (0 of {self.total_labels:,})")
        try:
            for block, connection_free in self._label_blocks(query, fields, reason_fields):
                if block is not None:
                    self._chunk(block, columns, reason_fields)
                    read += len(block[0])
                if connection_free:
                    self.progress(0.02 + 0.36 * read / max(1, self.total_labels), f"reading labels ({read:,} of {self.total_labels:,})")
        except BaseException:
            self.ratings_writer.abandon()
            raise
        self.ratings_writer.close()

        def joined(name: str, empty: np.ndarray) -> np.ndarray:
            return np.concatenate(self.parts[name]) if self.parts[name] else empty

        self.labels_image = joined("image", np.zeros(0, np.int32))
        self.labels_rater = joined("rater", np.zeros(0, np.int32))
        self.labels_slot = joined("slot", np.zeros(0, np.int32))
        self.labels_values = joined("values", np.zeros((0, len(fields))))
        del self.parts
        self.counts.update(labels=int(self.labels_image.size), sources=dict(self.sources))
        invalid = {c.spec.key: c.invalid for c in columns if c.invalid}
        if invalid:
            self.notes.append(
                "values the release's schema does not accept were left out: "
                + ", ".join(f"{key} {n}" for key, n in invalid.items())
                + " (labels made with an earlier schema version)"
            )
        if self.skipped:
            self.notes.append(f"{self.skipped} labels on images that became gold images during the build were left out")

    def _label_blocks(self, query, fields: Sequence[FieldSpec], reason_fields: Sequence[FieldSpec]) -> Iterator[tuple[list | None, bool]]:  # type: ignore[no-untyped-def]
        """The labels in blocks of whole images, column by column: image and rater ids as int64 arrays, created_at
        and source as Arrow arrays, then one column per field (Arrow text from PostgreSQL, the typed Python values
        elsewhere) and one Arrow text column per field with reasons. Each block comes with whether the database
        connection is free for other statements (the block may be None then)."""
        if _can_copy():
            names = ["image", "rater", "created_at", "source"] + [f"value_{i}" for i in range(len(fields))]
            names += [f"reason_{i}" for i in range(len(reason_fields))]
            types = {name: pa.string() for name in names}
            types.update(image=pa.int64(), rater=pa.int64(), created_at=pa.timestamp("us", tz="UTC"))
            # One COPY per range of images: the connection is busy while a COPY runs, and progress is reported on
            # it between them. The first and last ranges are open so that every label is read.
            ids = self.images.ids
            per_copy = max(1, math.ceil(ids.size * COPY_LABELS / max(1, self.total_labels)))
            bounds = [int(i) for i in ids[per_copy::per_copy]]
            for low, high in zip([None, *bounds], [*bounds, None]):
                part = query
                if low is not None:
                    part = part.filter(image_id__gte=low)
                if high is not None:
                    part = part.filter(image_id__lt=high)
                carry = None
                for table in _copy_blocks(part, names, types):
                    if carry is not None:
                        table = pa.concat_tables([carry, table])
                    image = table.column(0).to_numpy()
                    # The last image may go on in the next block: keep its rows back.
                    cut = int(np.searchsorted(image, image[-1])) if image.size else 0
                    carry = table.slice(cut)
                    if cut:
                        yield self._arrow_block(table.slice(0, cut)), False
                yield (self._arrow_block(carry) if carry is not None else None), True
            return
        pending: list[tuple] = []
        for row in _stream(query):
            pending.append(row)
            if len(pending) >= CHUNK and row[0] != pending[-2][0]:
                # The newest row starts an image: everything before it is whole images.
                yield self._row_block(pending[:-1], len(fields)), True
                pending = [row]
        if pending:
            yield self._row_block(pending, len(fields)), True

    @staticmethod
    def _arrow_block(table: pa.Table) -> list:
        columns = [column.combine_chunks() for column in table.columns]
        return [columns[0].to_numpy(), columns[1].to_numpy(), *columns[2:]]

    @staticmethod
    def _row_block(rows: list[tuple], n_fields: int) -> list:
        raw = list(zip(*rows))
        n = len(rows)
        return [
            np.fromiter(raw[0], np.int64, n),
            np.fromiter(raw[1], np.int64, n),
            pa.array(raw[2], pa.timestamp("us", tz="UTC")),
            pa.array(raw[3], pa.string()),
            *(list(column) for column in raw[4 : 4 + n_fields]),
            *(pa.array(column, pa.string()) for column in raw[4 + n_fields :]),
        ]

    def _chunk(self, raw: list, columns: list[_FieldColumn], reason_fields: list[FieldSpec]) -> None:
        """Labels of whole images (a block of `_label_blocks`): numbers into the arrays, rows into the ratings
        files, per-image text answers and consensus reasons into their lists."""
        fields = self.spec.fields
        image_ids, rater_ids = raw[0], raw[1]
        if not image_ids.size:
            return
        position = np.searchsorted(self.images.ids, image_ids)
        rater = np.searchsorted(self.rater_ids, rater_ids)
        keep = (position < self.images.ids.size) & (rater < self.rater_ids.size)
        keep[keep] &= (self.images.ids[position[keep]] == image_ids[keep]) & (self.rater_ids[rater[keep]] == rater_ids[keep])
        if not keep.all():  # images that became gold while the build ran
            self.skipped += int((~keep).sum())
            picked = np.flatnonzero(keep)
            if not picked.size:
                return
            where = pa.array(picked)
            raw = [
                column[picked] if isinstance(column, np.ndarray)
                else column.take(where) if isinstance(column, pa.Array)
                else [column[i] for i in picked]
                for column in raw
            ]
            position, rater = position[keep], rater[keep]
        n = position.size
        starts = np.r_[True, position[1:] != position[:-1]]
        group = np.cumsum(starts) - 1
        group_start = np.flatnonzero(starts)
        slot = np.arange(n) - group_start[group]
        numbers = np.empty((n, len(fields)))
        texts: dict[str, pa.Array] = {}
        for i, column in enumerate(columns):
            numbers[:, i], parsed_texts = column.parse(raw[4 + i])
            if parsed_texts is not None:
                texts[column.spec.key] = parsed_texts
        self.parts["image"].append(position.astype(np.int32))
        self.parts["rater"].append(rater.astype(np.int32))
        self.parts["slot"].append(slot.astype(np.int32))
        self.parts["values"].append(numbers)

        created = raw[2]
        span = pc.min_max(created)
        first, last = span["min"].as_py(), span["max"].as_py()
        self.first_label = first if self.first_label is None or first < self.first_label else self.first_label
        self.last_label = last if self.last_label is None or last > self.last_label else self.last_label
        for entry in pc.value_counts(raw[3]).to_pylist():
            self.sources[entry["values"]] += entry["counts"]

        # The ratings files, column by column from the parsed numbers: a value the schema refuses is missing here
        # exactly as it is missing from the statistics.
        where = pa.array(position)
        table: dict[str, object] = {
            "file": self.arrow_files.take(where),
            "image_sha256": self.arrow_shas.take(where),
            "rater": self.arrow_pseudonyms.take(pa.array(rater)),
            "created_at": created,
            "source": raw[3],
        }
        for i, spec in enumerate(fields):
            column = numbers[:, i]
            missing = np.isnan(column)
            if spec.kind == "integer":
                table[spec.key] = pa.array(np.where(missing, 0, column).astype(np.int64), mask=missing)
            elif spec.kind == "continuous":
                table[spec.key] = pa.array(column, mask=missing)
            elif spec.is_choice:
                table[spec.key] = self.choice_values[spec.key].take(
                    pa.array(np.where(missing, 0, column).astype(np.int32), mask=missing)
                )
            else:
                table[spec.key] = texts[spec.key]
        offset = 4 + len(fields)
        for j, spec in enumerate(reason_fields):
            table[f"{spec.key}_reason"] = raw[offset + j]
            chosen = _closest_reasons(
                group, group_start.size, numbers[:, fields.index(spec)], raw[offset + j], score=spec.is_score
            )
            target = self.consensus_reason[spec.key]
            for g, reason in enumerate(chosen):
                target[position[group_start[g]]] = reason
        self.ratings_writer.write(table)

        for key, column_texts in texts.items():
            answers, consensus = self.answers[key], self.consensus_text[key]
            codes = numbers[:, self.spec.keys.index(key)]
            for g, distinct in enumerate(_answers_by_group(group, group_start.size, codes, column_texts)):
                image = position[group_start[g]]
                answers[image] = distinct
                consensus[image] = distinct[0] if distinct else None

    # ---- statistics: quick per-image consensus here, the heavy figures in worker processes

    def labels_of(self, column: int) -> LabelArrays:
        return LabelArrays(
            image=self.labels_image, rater=self.labels_rater, slot=self.labels_slot, value=self.labels_values[:, column]
        )

    def consensus_arrays(self) -> None:
        """The per-image MOS and majority the splits and the extra writers need, computed here in milliseconds so
        that they need not wait for the statistics workers (which compute the same arrays the same way)."""
        self.quick = {
            spec.key: image_consensus(spec, self.labels_of(i), self.images.ids.size) for i, spec in enumerate(self.spec.fields)
        }

    def spawn_workers(self) -> None:
        """Start the statistics workers and the plot worker now, before the labels are read: their imports (numpy,
        scipy, matplotlib; about half a second each) then overlap with the reading instead of delaying the rest.
        They wait for their jobs on standard input (see statsworker and plotworker)."""
        package_root = str(Path(__file__).resolve().parent.parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        # One BLAS thread per worker: the workers are the parallelism. BLAS threads on top of them spin-wait for
        # cores that are busy, which tripled the statistics' CPU time in the benchmark.
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, "1")
        self.scratch = tempfile.TemporaryDirectory(prefix="realqa-release-")
        scratch = Path(self.scratch.name)
        self.workers: list[tuple[subprocess.Popen, Path, list[int], object]] = []
        self.idle_workers: list[tuple[subprocess.Popen, object]] = []
        for n in range(min(STATISTICS_PROCESSES, len(self.spec.fields))):
            log = open(scratch / f"worker-{n}.log", "wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "annotation_site.releases.statsworker"],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            self.idle_workers.append((process, log))
        (self.directory / "plots").mkdir()
        log = open(scratch / "plots.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "annotation_site.releases.plotworker", str(self.directory / "plots")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
        )
        self.plot_worker: tuple[subprocess.Popen, object] | None = (process, log)

    def plot(self, name: str, inputs: object) -> None:
        """Hand one plot to the plot worker (see plots.PLOTS), or draw it here for a small release."""
        if self.in_process:
            if plots.PLOTS[name](self.directory / "plots" / name, inputs):
                self.drawn.add(name)
            return
        process = self.plot_worker[0]
        try:
            pickle.dump((name, inputs), process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
        except BrokenPipeError:  # the worker died; plots_done reports its log
            pass

    def plots_done(self) -> list[str]:
        """Wait for the plot worker; the plots it drew, as release paths in the datasheet's order."""
        if self.in_process:
            return [f"plots/{name}" for name in plots.PLOTS if name in self.drawn]
        process, log = self.plot_worker
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        drawn = set(process.stdout.read().decode().split())
        code = process.wait()
        log.close()
        self.plot_worker = None
        if code != 0:
            tail = Path(log.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the plot worker failed:\n{tail}")
        return [f"plots/{name}" for name in plots.PLOTS if name in drawn]

    def start_statistics(self) -> None:
        fields = self.spec.fields
        params = {
            "n_images": int(self.images.ids.size),
            "n_raters": int(self.rater_ids.size),
            "resamples": self.options.resamples,
            "seed": self.options.seed,
            "split_half_splits": self.options.split_half_splits,
        }
        self.stats_params = params
        if self.in_process:
            self.stats = [field_stats(spec, self.labels_of(i), **params) for i, spec in enumerate(fields)]
            return
        scratch = Path(self.scratch.name)
        arrays = scratch / "labels.npy.npz"
        np.savez(arrays, image=self.labels_image, rater=self.labels_rater, slot=self.labels_slot, values=self.labels_values)
        # Longest first onto the least loaded worker: the MLE makes a score field several times a choice field.
        cost = [6.0 if f.is_score else (1.0 if f.is_choice else 0.1) for f in fields]
        bins: list[list[int]] = [[] for _ in self.idle_workers]
        loads = [0.0] * len(bins)
        for i in sorted(range(len(fields)), key=lambda i: -cost[i]):
            target = loads.index(min(loads))
            bins[target].append(i)
            loads[target] += cost[i]
        for n, ((process, log), columns) in enumerate(zip(self.idle_workers, bins)):
            job, result = scratch / f"job-{n}.pickle", scratch / f"result-{n}.pickle"
            with open(job, "wb") as handle:
                pickle.dump({"arrays": str(arrays), "fields": [(i, fields[i]) for i in columns], "params": params}, handle)
            try:
                process.stdin.write(f"{job}\n{result}\n".encode())
                process.stdin.close()
            except BrokenPipeError:  # the worker died starting up; finish_statistics reports its log
                pass
            self.workers.append((process, result, columns, log))
        self.idle_workers = []

    def finish_statistics(self) -> None:
        if self.in_process:
            self.by_key = {s.field.key: s for s in self.stats}
            return
        results: dict[int, FieldStats] = {}
        total = len(self.workers)
        for done, (process, result, columns, log) in enumerate(self.workers, start=1):
            self.progress(0.75 + 0.15 * (done - 1) / max(1, total), f"statistics ({done - 1} of {total} workers done)")
            code = process.wait()
            log.close()
            if code != 0:
                tail = Path(log.name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the statistics worker for {[self.spec.fields[i].key for i in columns]} failed:\n{tail}")
            with open(result, "rb") as handle:
                for column, stats in zip(columns, pickle.load(handle)):
                    results[column] = stats
        self.stats: list[FieldStats] = [results[i] for i in range(len(self.spec.fields))]
        self.by_key = {s.field.key: s for s in self.stats}
        self.workers = []

    def stop_workers(self) -> None:
        running = [(w[0], w[-1]) for w in getattr(self, "workers", [])] + getattr(self, "idle_workers", [])
        if getattr(self, "plot_worker", None) is not None:
            running.append(self.plot_worker)
            self.plot_worker = None
        for process, log in running:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
        self.workers = []
        self.idle_workers = []
        if getattr(self, "scratch", None) is not None:
            self.scratch.cleanup()
            self.scratch = None

    def split(self) -> None:
        self.progress(0.39, "assigning splits")
        score = self.quick.get(self.options.score_field)
        mos = score.mos if score is not None else None
        strata = [None if not np.isfinite(m) else float(m) for m in mos] if mos is not None else []
        previous = None
        if self.request.previous_splits:
            previous = {
                self.images.sha256[p]: self.request.previous_splits[int(i)]
                for p, i in enumerate(self.images.ids)
                if int(i) in self.request.previous_splits
            }
        try:
            by_sha = assign_splits(
                image_keys=self.images.sha256,
                strata_scores=strata or [None] * len(self.images.sha256),
                groups=self.images.groups,
                ratios=self.options.ratios,
                seed=self.options.seed,
                previous=previous,
            )
        except ValueError as exc:
            raise ReleaseError(f"splits: {exc}") from None
        self.image_split = [by_sha[sha] for sha in self.images.sha256]
        self.split_names = tuple(self.options.ratios)
        counts = Counter(self.image_split)
        self.counts["splits"] = {name: counts.get(name, 0) for name in self.split_names}
        self.counts["splits_kept_from_previous"] = len(previous or {})

    # ---- images

    def copy_images(self) -> None:
        if self.options.images != "copy":
            return
        (self.directory / "images").mkdir()
        total = len(self.images.files)
        for n, (name, target) in enumerate(zip(self.images.display, self.images.files)):
            digest = hashlib.sha256()
            with default_storage.open(name, "rb") as source, open(self.directory / target, "wb") as sink:
                for block in iter(lambda: source.read(COPY_BUFFER), b""):
                    digest.update(block)
                    sink.write(block)
            self.digests[target] = digest.hexdigest()
            if n % 500 == 0:
                self.progress(0.40 + 0.15 * n / max(1, total), f"copying images ({n:,} of {total:,})")

    # ---- per-image table, pyiqa, extra writers

    def scores_table(self) -> tuple[pa.Table, dict[str, int]]:
        columns: dict[str, pa.Array] = {
            "file": pa.array(self.images.files, pa.string()),
            "image_sha256": pa.array(self.images.sha256, pa.string()),
            "split": pa.array(self.image_split, pa.string()),
            "width": pa.array(self.images.width, pa.int64()),
            "height": pa.array(self.images.height, pa.int64()),
            "duplicate_group": pa.array(self.images.groups, pa.string()),
        }
        decimals: dict[str, int] = {}

        def number(name: str, values: np.ndarray, places: int) -> None:
            columns[name] = float_column(values, places)
            decimals[name] = places

        for stats in self.stats:
            spec = stats.field
            key = spec.key
            columns[f"{key}_n"] = pa.array(stats.n, pa.int64())
            if spec.is_score and stats.mos is not None:
                number(f"{key}_mos", stats.mos, 2)
                number(f"{key}_sd", stats.sd, 4)
                number(f"{key}_ci95", stats.ci95, 4)
                number(f"{key}_ci_low", stats.mos - stats.ci95, 4)
                number(f"{key}_ci_high", stats.mos + stats.ci95, 4)
                number(f"{key}_zmos", stats.zmos, 2)
                number(f"{key}_mle", stats.mle, 2)
                number(f"{key}_mle_ci95", stats.mle_ci95, 4)
            elif spec.is_choice and stats.counts is not None:
                labels = [c.value for c in spec.choices]
                columns[f"{key}_majority"] = pa.array(
                    [labels[m] if m >= 0 else None for m in stats.majority], pa.string()
                )
                number(f"{key}_share", stats.share, 4)
                if stats.mean_rank is not None:
                    number(f"{key}_mean_rank", stats.mean_rank, 4)
                for i, value in enumerate(labels):
                    columns[f"{key}_count_{value}"] = pa.array(stats.counts[:, i], pa.int64())
            elif spec.kind == "text":
                columns[f"{key}_answers"] = pa.array(self.answers[key], pa.list_(pa.string()))
        return pa.table(columns), decimals

    def write_tables(self) -> None:
        self.progress(0.90, "writing scores")
        table, decimals = self.scores_table()
        write_csv(table, self.directory / "scores.csv", decimals=decimals)
        (self.directory / "data").mkdir()
        splits = np.array(self.image_split, dtype=object)
        for name in self.split_names:
            part = table.filter(pa.array(splits == name))
            # An empty Parquet file is valid, but `datasets` refuses to load one: a split without images has none.
            if part.num_rows:
                write_parquet(part, self.directory / "data" / f"{name}.parquet")
        self.write_pyiqa()

    def write_pyiqa(self) -> None:
        """IQA-PyTorch's meta-info CSV: image path (relative to the release folder), mos, std, and a split column
        its GeneralNRDataset picks with `split_index: official_split` (phases train/val/test)."""
        key = self.options.score_field
        main = self.by_key.get(key)
        if main is None or main.mos is None:
            return
        others = [s for s in self.stats if s.field.level == "overall" and s.field.is_score and s.field.key != key]
        has = np.isfinite(main.mos)
        columns: dict[str, pa.Array] = {
            "img_name": pa.array([f for f, ok in zip(self.images.files, has) if ok], pa.string()),
            "mos": float_column(main.mos[has], 4),
            "std": float_column(main.sd[has], 4),
            "official_split": pa.array([PYIQA_PHASES.get(s, s) for s, ok in zip(self.image_split, has) if ok], pa.string()),
        }
        for other in others:
            columns[f"{other.field.key}_mos"] = float_column(other.mos[has], 4)
        (self.directory / "pyiqa").mkdir()
        decimals = {name: 4 for name in columns if name not in ("img_name", "official_split")}
        write_csv(pa.table(columns), self.directory / "pyiqa" / f"meta_info_{self.project.slug}.csv", decimals=decimals)

    def consensus(self, position: int) -> ImageConsensus:
        values: dict[str, object] = {}
        scores: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for spec in self.spec.fields:
            quick = self.quick[spec.key]
            if quick.n[position] == 0:
                continue
            if spec.is_score and quick.mos is not None:
                mos = float(quick.mos[position])
                scores[spec.key] = mos
                if spec.kind == "integer":
                    values[spec.key] = int(min(spec.max, max(spec.min, math.floor(mos + 0.5))))
                else:
                    values[spec.key] = mos
            elif spec.is_choice and quick.majority is not None:
                values[spec.key] = spec.choices[int(quick.majority[position])].value
            elif spec.kind == "text" and self.consensus_text[spec.key][position]:
                values[spec.key] = self.consensus_text[spec.key][position]
            reasons_of_field = self.consensus_reason.get(spec.key)
            reason = reasons_of_field[position] if reasons_of_field is not None else None
            if reason and spec.key in values:
                reasons[spec.key] = reason
        return ImageConsensus(
            file=self.images.files[position],
            sha256=self.images.sha256[position],
            split=self.image_split[position],
            values=values,
            reasons=reasons,
            scores=scores,
        )

    def run_writers(self) -> dict:
        summaries: dict[str, dict] = {}
        if not self.writers:
            return summaries
        context = ReleaseContext(
            directory=self.directory,
            release_id=self.request.release_id,
            schema=self.spec.to_dict(),
            score_field=self.options.score_field,
            splits=self.split_names,
        )
        for writer in self.writers:
            writer.open(context)
        total = self.images.ids.size
        for position in range(total):
            image = self.consensus(position)
            for writer in self.writers:
                writer.add(image)
            if position % 2000 == 0:
                self.progress(0.55 + 0.20 * position / max(1, total), "writing " + ", ".join(w.name for w in self.writers))
        for writer in self.writers:
            summaries[writer.name] = writer.close()
        return summaries

    # ---- agreement.json, raters.csv

    def agreement(self) -> dict:
        fields = []
        for stats in self.stats:
            spec = stats.field
            entry: dict = {
                "key": spec.key,
                "label": spec.label,
                "kind": spec.kind,
                "level": spec.level,
                "measurement": stats.measurement,
                "labels": int(stats.n.sum()),
                "images": int((stats.n > 0).sum()),
            }
            alpha = stats.alpha
            if alpha is None:
                entry.update(alpha=None, alpha_ci95=None, alpha_status="not computed", units=None, raters=None, pairable_values=None)
                entry["alpha_note"] = (
                    "free text without a measurement level" if spec.kind == "text" else "no labels on the scale"
                )
            else:
                entry.update(
                    alpha=alpha.alpha,
                    alpha_ci95=None if alpha.low is None else [alpha.low, alpha.high],
                    alpha_status="defined" if alpha.alpha is not None else "undefined",
                    units=alpha.units,
                    raters=alpha.raters,
                    pairable_values=alpha.pairable_values,
                    defined_resamples=alpha.defined_resamples,
                )
                if alpha.alpha is None:
                    entry["alpha_note"] = (
                        "undefined: no expected disagreement (every pairable value is the same) or fewer than two "
                        "pairable values"
                    )
            half = stats.split_half
            entry["split_half"] = None if half is None else {
                "srcc": _finite(half.srcc), "plcc": _finite(half.plcc), "images": half.images, "splits": half.splits
            }
            if spec.is_score:
                entry["mle"] = {"fitted": stats.mle_fitted, "iterations": stats.mle_iterations, "note": stats.mle_note}
            entry["notes"] = stats.notes
            fields.append(entry)
        return {
            "release": self.request.release_id,
            "confidence": 0.95,
            "resamples": self.options.resamples,
            "seed": self.options.seed,
            "interval": "percentile bootstrap over images: images drawn with replacement, each bringing all its labels",
            "alpha_reference": "Krippendorff (2011), Computing Krippendorff's Alpha-Reliability; equal to the "
            "krippendorff package 0.9.0 to 1e-9",
            "fields": fields,
        }

    def raters_table(self) -> tuple[pa.Table, dict[str, int], dict]:
        gold = {
            row["rater_id"]: row
            for row in Annotation.objects.filter(project=self.project, gold_score__isnull=False, rater_id__in=self.rater_ids.tolist())
            .values("rater_id")
            .annotate(n=Count("id"), accuracy=Avg("gold_score"))
        }
        labels = np.bincount(self.labels_rater, minlength=self.rater_ids.size)
        columns: dict[str, pa.Array] = {
            "rater": pa.array(self.pseudonyms, pa.string()),
            "labels": pa.array(labels, pa.int64()),
            "gold_answers": pa.array([gold.get(int(r), {}).get("n", 0) for r in self.rater_ids], pa.int64()),
        }
        decimals: dict[str, int] = {}
        accuracy = np.array([gold.get(int(r), {}).get("accuracy") or np.nan for r in self.rater_ids], dtype=np.float64)
        columns["gold_accuracy"] = float_column(accuracy, 4)
        decimals["gold_accuracy"] = 4
        for stats in self.stats:
            key = stats.field.key
            if stats.rater_loo_r is not None:
                columns[f"{key}_loo_r"] = float_column(stats.rater_loo_r, 4)
                columns[f"{key}_bias"] = float_column(stats.rater_bias, 4)
                decimals[f"{key}_loo_r"] = decimals[f"{key}_bias"] = 4
            if stats.field.is_score and stats.mos is not None:
                empty = np.full(self.rater_ids.size, np.nan)
                mle_bias = stats.rater_mle_bias if stats.rater_mle_bias is not None else empty
                mle_inc = stats.rater_mle_inconsistency if stats.rater_mle_inconsistency is not None else empty
                columns[f"{key}_mle_bias"] = float_column(mle_bias, 4)
                columns[f"{key}_mle_inconsistency"] = float_column(mle_inc, 4)
                # The plain-data spread of the rater around the MOS, there even when the MLE has no estimate.
                columns[f"{key}_residual_sd"] = float_column(self.residual_sd(stats), 4)
                decimals[f"{key}_mle_bias"] = decimals[f"{key}_mle_inconsistency"] = decimals[f"{key}_residual_sd"] = 4
        summary = {
            "raters": int(self.rater_ids.size),
            "labels_per_rater": {
                "min": int(labels.min()) if labels.size else 0,
                "median": float(np.median(labels)) if labels.size else 0.0,
                "max": int(labels.max()) if labels.size else 0,
            },
            "gold_accuracy_mean": _finite(np.nanmean(accuracy)) if np.isfinite(accuracy).any() else None,
            "raters_with_gold": int(np.isfinite(accuracy).sum()),
        }
        return pa.table(columns), decimals, summary

    def residual_sd(self, stats: FieldStats) -> np.ndarray:
        """Per rater, the SD of (rating - image MOS): the plain-data stand-in for inconsistency when no MLE fit."""
        values = self.labels_values[:, self.spec.keys.index(stats.field.key)]
        ok = ~np.isnan(values)
        resid = values[ok] - stats.mos[self.labels_image[ok]]
        raters = self.labels_rater[ok]
        n = np.bincount(raters, minlength=self.rater_ids.size)
        mean = np.bincount(raters, weights=resid, minlength=self.rater_ids.size)
        square = np.bincount(raters, weights=resid * resid, minlength=self.rater_ids.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = mean / n
            return np.where(n > 1, np.sqrt(np.maximum(square / n - mean * mean, 0.0) * n / (n - 1)), np.nan)

    # ---- everything

    def run(self) -> BuildResult:
        labels = annotations_for_statistics(project=self.project).order_by()[: IN_PROCESS_MAX_LABELS + 1].count()
        self.in_process = labels <= IN_PROCESS_MAX_LABELS
        if self.in_process:
            (self.directory / "plots").mkdir()
            self.drawn: set[str] = set()
        else:
            self.spawn_workers()
        try:
            return self.build()
        finally:
            self.stop_workers()

    def build(self) -> BuildResult:
        self.select()
        self.read_numbers()
        self.start_statistics()
        self.consensus_arrays()
        # The histograms need only the per-image consensus: drawn while the statistics run.
        histograms = []
        for spec in self.spec.fields:
            quick = self.quick[spec.key]
            histograms.append((spec, quick.mos, None if quick.counts is None else quick.counts.sum(axis=0)))
        self.plot(plots.SCORE_HISTOGRAMS, histograms)
        self.split()
        self.copy_images()
        extras = self.run_writers()
        self.finish_statistics()
        score_stats = self.by_key.get(self.options.score_field)
        self.plot(plots.ALPHA, plots.alpha_inputs(self.stats))
        residual_sd = self.residual_sd(score_stats) if score_stats is not None and score_stats.mos is not None else None
        self.plot(plots.RATERS, plots.rater_inputs(score_stats, residual_sd))
        self.write_tables()
        self.progress(0.93, "writing comparison, region and description files")
        score = self.by_key.get(self.options.score_field)
        tasks = tasks_write(
            self.directory,
            project=self.project,
            images=ReleaseImages(ids=self.images.ids.tolist(), files=self.images.files, splits=self.image_split),
            mos=score.mos if score is not None else None,
            sd=score.sd if score is not None and score.mos is not None else None,
            seed=self.options.seed,
        )

        self.progress(0.96, "writing agreement, raters, plots and datasheet")
        agreement = self.agreement()
        if tasks["region_agreement"] is not None:
            agreement["regions"] = tasks["region_agreement"]
        (self.directory / "agreement.json").write_text(json.dumps(agreement, indent=2, allow_nan=False) + "\n")
        raters, rater_decimals, rater_summary = self.raters_table()
        write_csv(raters, self.directory / "raters.csv", decimals=rater_decimals)
        (self.directory / "schema.json").write_text(
            json.dumps(self.spec.to_dict(), indent=2, ensure_ascii=False) + "\n"
        )
        drawn = self.plots_done()
        conversations = extras.get("conversations")
        self.counts.update(images=int(self.images.ids.size), raters=int(self.rater_ids.size))
        metadata = {
            "release": self.request.release_id,
            "project": self.project.slug,
            "version": self.request.version,
            "schema_version": self.request.schema_version.version,
            "schema_digest": self.request.schema_version.digest,
            "created_at": self.request.created_at.isoformat(),
            "labels_from": self.first_label.isoformat() if self.first_label else None,
            "labels_to": self.last_label.isoformat() if self.last_label else None,
            "options": self.options.to_dict(),
            "previous_release": self.request.previous_release or None,
            "counts": self.counts,
            "model_versions": self.request.model_versions,
            "images": self.options.images,
            "conversations": conversations
            if conversations is not None
            else {
                "included": False,
                "why": "built without the conversation writer, which lives in `workers` (it needs realqa_model); "
                "`manage.py export_release` and the releases.build task include it",
            },
            "extras": {name: summary for name, summary in extras.items() if name != "conversations"},
            "tasks": {key: tasks[key] for key in ("comparisons", "regions", "descriptions")},
            "notes": self.notes,
        }
        (self.directory / "release.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        report.datasheet_write(
            self.directory / "datasheet.md",
            project=self.project,
            spec=self.spec,
            metadata=metadata,
            agreement=agreement,
            stats=self.stats,
            rater_summary=rater_summary,
            plots=drawn,
        )
        self.progress(0.98, "writing MANIFEST.sha256")
        manifest = self.manifest()
        return BuildResult(
            counts=self.counts,
            splits={int(i): s for i, s in zip(self.images.ids, self.image_split)},
            conversations_included=conversations is not None and bool(conversations.get("included", True)),
            manifest_sha256=manifest,
        )

    def manifest(self) -> str:
        lines = []
        for path in sorted(p for p in self.directory.rglob("*") if p.is_file()):
            name = path.relative_to(self.directory).as_posix()
            if name == MANIFEST:
                continue
            digest = self.digests.get(name) or _sha256_file(path)
            lines.append(f"{digest}  {name}\n")
        data = "".join(lines).encode()
        (self.directory / MANIFEST).write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def release_files_write(
    request: BuildRequest,
    directory: Path,
    *,
    writers: Iterable[ReleaseWriter] = (),
    progress: Progress = lambda fraction, stage: None,
) -> BuildResult:
    """Write the whole release into `directory` (an empty folder). Raises ReleaseError for what the data cannot
    give (no labels, splits that clash with the previous release); the caller removes the folder on any error."""
    return _Build(request, directory, list(writers), progress).run()


def manifest_verify(directory: Path) -> list[str]:
    """Files whose checksum does not match MANIFEST.sha256, or that it lists but are missing, or that it misses."""
    directory = Path(directory)
    problems = []
    listed = set()
    for line in (directory / MANIFEST).read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256_file(path) != digest:
            problems.append(f"{name}: checksum differs")
    for path in directory.rglob("*"):
        name = path.relative_to(directory).as_posix()
        if path.is_file() and name != MANIFEST and name not in listed:
            problems.append(f"{name}: not in the manifest")
    return problems


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


__all__ = [
    "BuildRequest",
    "BuildResult",
    "ImageConsensus",
    "MANIFEST",
    "ReleaseContext",
    "ReleaseWriter",
    "manifest_verify",
    "normalise_text",
    "release_files_write",
    "remove_tree",
]
