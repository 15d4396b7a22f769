"""Import ratings collected elsewhere (a long-form CSV, or a Label Studio JSON export) as labels of a project,
so they get the same statistics and release as labels given on the platform.

The import is all or nothing: the whole file is read and checked first (every image found, every field known,
every value valid under the project's current schema, no pair given twice) and every problem is reported with
its line or task; only a clean file is stored, in one transaction.

Each (image, rater) pair becomes one Annotation (source "import") combining that rater's fields, linked to a
submitted Assignment, exactly as a label given on the platform is: the assignment engine then never hands the
rater that image again, and the image's counters (assigned_count, label_count) move as a submit moves them.
External raters become rater users named <prefix><external id> without a password (they cannot log in), with an
active membership; a user of that name already there is reused and their membership left as it is.

Running the same file again stores nothing: a pair the project already holds a label for is skipped (and
reported when the file's values differ from the stored ones). Stored labels are never replaced; to correct an
imported label, delete it in the admin and import again.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlparse

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from annotation_site.core.dbstats import tables_analyze_after_bulk
from annotation_site.images.models import GoldAnswer, Image
from annotation_site.projects.models import Project
from annotation_site.raters.models import Membership
from annotation_site.raters.services import rater_create, rater_profile_ensure
from annotation_site.schemas.selectors import schema_spec, schema_version_current
from annotation_site.schemas.spec import FieldSpec, LabelError, SchemaSpec

from .gold import gold_check
from .models import Annotation, Assignment
from .services import MAX_SECONDS_SPENT

FORMATS = ("csv", "labelstudio")
CSV_COLUMNS = ("image", "rater", "field", "value")
CSV_OPTIONAL_COLUMNS = ("reason",)
LABEL_STUDIO_TYPES = ("rating", "number", "choices", "textarea")
DEFAULT_RATER_PREFIX = "imported-"
REASON_SUFFIX = ".reason"
BATCH = 2000

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Label Studio names an uploaded file "<8 hex>-<original name>".
_LABEL_STUDIO_UPLOAD = re.compile(r"[0-9a-f]{8}-(.+)")
_USERNAME = UnicodeUsernameValidator()


@dataclass(frozen=True)
class ImportProblem:
    where: str  # "line 12" (CSV) or "task 3 (id 41), annotation 1" (Label Studio)
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportReport:
    format: str
    dry_run: bool = False
    records: int = 0  # CSV rows, or Label Studio results, read
    labels: int = 0  # labels stored (or, on a dry run, that would be)
    images: int = 0  # distinct images among them
    skipped: int = 0  # (image, rater) pairs the project already had a label for, left as they were
    differing: list[str] = field(default_factory=list)  # skipped pairs whose stored values differ from the file
    cancelled: int = 0  # Label Studio annotations marked cancelled (a skip there), not imported
    raters_created: int = 0
    raters_reused: int = 0
    memberships_created: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would be stored (dry run, nothing stored)" if self.dry_run else "stored"
        text = (
            f"{self.labels} labels on {self.images} images {verb}; {self.skipped} already there and skipped"
            f"{f' ({len(self.differing)} differ from the file)' if self.differing else ''}; "
            f"{self.raters_created} raters created, {self.raters_reused} reused; {self.records} records read"
        )
        if self.cancelled:
            text += f"; {self.cancelled} cancelled Label Studio annotations left out"
        return text


class RatingsImportError(ValueError):
    """The file cannot be imported; nothing was stored. ``report.problems`` lists every problem found."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(f"{len(report.problems)} problems, nothing imported")

    @property
    def problems(self) -> list[ImportProblem]:
        return self.report.problems


# ---------------------------------------------------------------------------------------------------------------
# Records: what a file says, one field of one rater on one image
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    where: str
    image: str
    rater: str
    name: str  # field key, from_name, or a mapped name
    value: object  # str from a CSV; str, number or list from Label Studio
    reason: str | None = None
    result_type: str = "csv"
    seconds_spent: float | None = None


def _read_csv(
    stream: IO[str], report: ImportReport, problems: list[ImportProblem], progress: IO[str] | None
) -> Iterator[_Record]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        problems.append(ImportProblem("line 1", f"the file is empty; expected a header {', '.join(CSV_COLUMNS)}"))
        return
    except csv.Error as exc:
        problems.append(ImportProblem("line 1", f"not a readable CSV file ({exc})"))
        return
    columns = [name.strip().lower() for name in header]
    missing = [name for name in CSV_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in CSV_COLUMNS + CSV_OPTIONAL_COLUMNS]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(name) for name in unknown)}")
        if repeated:
            parts.append(f"repeated column(s) {', '.join(repeated)}")
        expected = ", ".join(CSV_COLUMNS) + " and optionally " + ", ".join(CSV_OPTIONAL_COLUMNS)
        problems.append(ImportProblem("line 1", f"{'; '.join(parts)} (the header must name {expected})"))
        return
    at = {name: columns.index(name) for name in columns}
    line = reader.line_num
    rows = tqdm(reader, unit="row", desc="reading", disable=progress is None, file=progress)
    try:
        for row in rows:
            first_line, line = line + 1, reader.line_num  # a quoted value may span several lines
            where = f"line {first_line}"
            if not any(cell.strip() for cell in row):
                continue
            report.records += 1
            if len(row) != len(columns):
                problems.append(ImportProblem(where, f"{len(row)} values for {len(columns)} columns"))
                continue
            cells = {name: row[index].strip() for name, index in at.items()}
            empty = [name for name in CSV_COLUMNS if not cells[name]]
            if empty:
                problems.append(ImportProblem(where, f"empty {', '.join(empty)}"))
                continue
            yield _Record(
                where=where,
                image=cells["image"],
                rater=cells["rater"],
                name=cells["field"],
                value=cells["value"],
                reason=cells.get("reason") or None,
            )
    except csv.Error as exc:
        problems.append(ImportProblem(f"line {reader.line_num}", f"not readable as CSV ({exc})"))


def _label_studio_rater(completed_by: object) -> str | None:
    # Exports give the user's id, or with some options an object describing the user.
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id", completed_by.get("email"))
    if isinstance(completed_by, bool) or completed_by is None:
        return None
    if isinstance(completed_by, (int, str)):
        return str(completed_by).strip() or None
    return None


def _label_studio_value(item: dict) -> tuple[object, str | None]:
    """The answer a result item carries, or (None, problem)."""
    kind = item.get("type")
    value = item.get("value")
    if not isinstance(value, dict):
        return None, "the result has no value object"
    if kind == "rating":
        answer = value.get("rating")
    elif kind == "number":
        answer = value.get("number")
    elif kind == "choices":
        answer = value.get("choices")
        if not isinstance(answer, list) or len(answer) != 1:
            return None, f"a choices result must hold exactly one choice (got {answer!r})"
        answer = answer[0]
    else:  # textarea: one entry per line the annotator added
        answer = value.get("text")
        if isinstance(answer, list) and all(isinstance(part, str) for part in answer):
            answer = "\n".join(part.strip() for part in answer)
    if answer is None:
        return None, f"the {kind} result has no value"
    return answer, None


def _read_label_studio(
    stream: IO[str], report: ImportReport, problems: list[ImportProblem], progress: IO[str] | None
) -> Iterator[_Record]:
    try:
        tasks = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(ImportProblem("file", f"not valid JSON ({exc})"))
        return
    if isinstance(tasks, dict):  # a single task exported on its own
        tasks = [tasks]
    if not isinstance(tasks, list):
        problems.append(ImportProblem("file", "a Label Studio export is a JSON list of tasks"))
        return
    bar = tqdm(tasks, unit="task", desc="reading", disable=progress is None, file=progress)
    for number, task in enumerate(bar, start=1):
        task_where = f"task {number}"
        if not isinstance(task, dict):
            problems.append(ImportProblem(task_where, "a task must be a JSON object"))
            continue
        if task.get("id") is not None:
            task_where += f" (id {task['id']})"
        data = task.get("data")
        image = data.get("image") if isinstance(data, dict) else None
        if not isinstance(image, str) or not image.strip():
            problems.append(ImportProblem(task_where, "no data.image (the image's URL or path)"))
            continue
        annotations = task.get("annotations") or task.get("completions") or []  # "completions": exports before 1.0
        if not isinstance(annotations, list):
            problems.append(ImportProblem(task_where, "annotations must be a list"))
            continue
        for position, annotation in enumerate(annotations, start=1):
            where = f"{task_where}, annotation {position}"
            if not isinstance(annotation, dict):
                problems.append(ImportProblem(where, "an annotation must be a JSON object"))
                continue
            if annotation.get("was_cancelled"):
                report.cancelled += 1
                continue
            rater = _label_studio_rater(annotation.get("completed_by"))
            if rater is None:
                problems.append(ImportProblem(where, "no completed_by (the annotator)"))
                continue
            lead_time = annotation.get("lead_time")
            seconds = (
                float(lead_time)
                if isinstance(lead_time, (int, float))
                and not isinstance(lead_time, bool)
                and math.isfinite(lead_time)
                and 0 <= lead_time <= MAX_SECONDS_SPENT
                else None
            )
            results = annotation.get("result")
            if not isinstance(results, list):
                problems.append(ImportProblem(where, "result must be a list"))
                continue
            for item in results:
                report.records += 1
                name = item.get("from_name") if isinstance(item, dict) else None
                item_where = f"{where}, result {name!r}" if isinstance(name, str) else f"{where}, a result"
                if not isinstance(name, str) or not name:
                    problems.append(ImportProblem(item_where, "a result needs a from_name"))
                    continue
                if item.get("type") not in LABEL_STUDIO_TYPES:
                    problems.append(
                        ImportProblem(
                            item_where,
                            f"result type {item.get('type')!r} is not imported (only {', '.join(LABEL_STUDIO_TYPES)})",
                        )
                    )
                    continue
                answer, problem = _label_studio_value(item)
                if problem is not None:
                    problems.append(ImportProblem(item_where, problem))
                    continue
                yield _Record(
                    where=item_where,
                    image=image.strip(),
                    rater=rater,
                    name=name,
                    value=answer,
                    result_type=item["type"],
                    seconds_spent=seconds,
                )


# ---------------------------------------------------------------------------------------------------------------
# Resolving records against the project: images, raters, fields, values
# ---------------------------------------------------------------------------------------------------------------


def _base_name(name: str) -> str:
    return re.split(r"[/\\:]", name)[-1]


class _ImageIndex:
    """Finds a project's image by sha256, by the name it was imported under, or by that name's last part."""

    def __init__(self, project: Project) -> None:
        self.by_sha: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.by_base: dict[str, list[int]] = defaultdict(list)
        self.names: dict[int, str] = {}
        self.gold: set[int] = set()
        rows = Image.objects.filter(project=project).values_list("id", "sha256", "original_name", "is_gold")
        for image_id, sha256, name, is_gold in rows.iterator(chunk_size=5000):
            self.by_sha[sha256] = image_id
            self.by_name[name].append(image_id)
            self.by_base[_base_name(name)].append(image_id)
            self.names[image_id] = name
            if is_gold:
                self.gold.add(image_id)

    def _one(self, ids: list[int], ref: str) -> int:
        if len(ids) == 1:
            return ids[0]
        listed = ", ".join(f"#{i} {self.names[i]!r}" for i in ids[:3])
        raise LookupError(f"image {ref!r} matches {len(ids)} images ({listed}); name it by its sha256")

    def resolve(self, ref: str, *, url: bool = False) -> int:
        """The image's id; LookupError saying why there is none."""
        candidates = [ref]
        if url:
            # Label Studio gives a URL: /data/upload/3/1a2b3c4d-photo.jpg, s3://bucket/dir/photo.jpg,
            # /data/local-files/?d=dir/photo.jpg.
            parsed = urlparse(ref)
            local = parse_qs(parsed.query).get("d")
            path = unquote(local[0] if local else parsed.path)
            candidates = [path, _base_name(path)]
            uploaded = _LABEL_STUDIO_UPLOAD.fullmatch(_base_name(path))
            if uploaded:
                candidates.append(uploaded.group(1))
        lowered = ref.lower()
        if _SHA256.fullmatch(lowered) and lowered in self.by_sha:
            return self.by_sha[lowered]
        for name in candidates:
            if name in self.by_name:
                return self._one(self.by_name[name], ref)
        for name in candidates:
            base = _base_name(name)
            if base in self.by_base:
                return self._one(self.by_base[base], ref)
        raise LookupError(f"no image {ref!r} in this project (give the file name it was imported under or its sha256)")


def _partial_spec(spec: SchemaSpec) -> SchemaSpec:
    """The schema with every field and reason optional: data from elsewhere often carries only some fields."""
    fields = tuple(
        dataclasses.replace(
            f, required=False, reason=dataclasses.replace(f.reason, required=False) if f.reason else None
        )
        for f in spec.fields
    )
    return SchemaSpec(name=spec.name, description=spec.description, fields=fields)


def _match_choice(spec_field: FieldSpec, answer: str) -> str:
    folded = answer.strip().casefold()
    for choice in spec_field.choices:
        if folded in (choice.value.casefold(), choice.label.casefold()):
            return choice.value
    return answer  # clean_value names the valid choices


def _number(text: str) -> object:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # clean_value says a number was expected


def _typed(spec_field: FieldSpec, record: _Record) -> object:
    """The record's answer in the type the schema field takes (validation itself is the schema's)."""
    answer = record.value
    if record.result_type in ("rating", "number") and not spec_field.is_score:
        raise ValueError(f"a {record.result_type} result cannot answer the {spec_field.kind} field {spec_field.key!r}")
    if spec_field.is_choice:
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(int(answer)) if float(answer).is_integer() else str(answer)
        return _match_choice(spec_field, answer) if isinstance(answer, str) else answer
    if spec_field.is_score:
        return _number(answer.strip()) if isinstance(answer, str) else answer
    return answer


def _parse_map(field_map: dict[str, str] | None, spec: SchemaSpec) -> tuple[dict[str, tuple[str, bool]], list[str]]:
    """from_name -> (field key, is_reason); a target "key.reason" sends the text to the field's reason."""
    mapping: dict[str, tuple[str, bool]] = {}
    errors: list[str] = []
    for source, target in (field_map or {}).items():
        is_reason = target.endswith(REASON_SUFFIX)
        key = target[: -len(REASON_SUFFIX)] if is_reason else target
        try:
            spec_field = spec.field(key)
        except KeyError as exc:
            errors.append(f"--map {source}={target}: {exc.args[0]}")
            continue
        if is_reason and spec_field.reason is None:
            errors.append(f"--map {source}={target}: field {key!r} takes no reason")
            continue
        mapping[source] = (key, is_reason)
    return mapping, errors


def _target(name: str, mapping: dict[str, tuple[str, bool]], spec: SchemaSpec) -> tuple[str, bool]:
    if name in mapping:
        return mapping[name]
    if name in spec.keys:
        return name, False
    # By convention a text answer "<key>_reason" (or "<key>.reason") is the reason of field <key>.
    for suffix in ("_reason", REASON_SUFFIX):
        key = name[: -len(suffix)]
        if name.endswith(suffix) and key in spec.keys and spec.field(key).reason is not None:
            return key, True
    spec.field(name)  # KeyError naming the unknown field, with a suggestion
    raise AssertionError("unreachable")


@dataclass(slots=True)
class _Pending:
    """One rater's answers for one image, gathered from the file's records."""

    where: str
    values: dict[str, object] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    seen: dict[tuple[str, bool], str] = field(default_factory=dict)  # (key, is_reason) -> where it was given
    seconds_spent: float | None = None
    failed: set[str] = field(default_factory=set)  # fields with a bad value, already reported


def _gather(
    records: Iterable[_Record],
    *,
    spec: SchemaSpec,
    images: _ImageIndex,
    mapping: dict[str, tuple[str, bool]],
    rater_prefix: str,
    url_images: bool,
    problems: list[ImportProblem],
) -> dict[tuple[int, str], _Pending]:
    pending: dict[tuple[int, str], _Pending] = {}
    image_cache: dict[str, int | str] = {}
    for record in records:
        failures: list[str] = []
        image_id = image_cache.get(record.image)
        if image_id is None:
            try:
                image_id = images.resolve(record.image, url=url_images)
            except LookupError as exc:
                image_id = str(exc.args[0])
            image_cache[record.image] = image_id
        if isinstance(image_id, str):
            failures.append(image_id)
        username = rater_prefix + record.rater
        try:
            _USERNAME(username)
            if len(username) > 150:
                raise ValidationError("too long")
        except ValidationError:
            failures.append(
                f"rater {record.rater!r} cannot be a user name (letters, digits and @ . + - _ only, at most "
                f"{150 - len(rater_prefix)} characters)"
            )
        try:
            key, is_reason = _target(record.name, mapping, spec)
        except KeyError as exc:
            failures.append(f"field {record.name!r}: {exc.args[0]}")
            key, is_reason = "", False
        if failures:
            problems.append(ImportProblem(record.where, "; ".join(failures)))
            continue
        spec_field = spec.field(key)
        group = pending.setdefault((image_id, username), _Pending(where=record.where))  # type: ignore[arg-type]
        try:
            if is_reason:
                if not isinstance(record.value, str):
                    raise ValueError(f"the reason of {key!r} must be text")
                value: object = record.value.strip()
            else:
                value = spec_field.clean_value(_typed(spec_field, record))
        except ValueError as exc:
            problems.append(ImportProblem(record.where, str(exc.args[0])))
            group.failed.add(key)  # said once here, not again as a missing field
            continue
        answers: list[tuple[bool, object]] = [(is_reason, value)]
        if record.reason is not None:
            answers.append((True, record.reason))
        for answer_is_reason, answer in answers:
            slot = (key, answer_is_reason)
            what = f"the reason of {key!r}" if answer_is_reason else f"{key!r}"
            if slot in group.seen:
                earlier_where = group.seen[slot]
                earlier = group.reasons.get(key) if answer_is_reason else group.values.get(key)
                how = "repeats" if earlier == answer else f"contradicts ({earlier!r} there, {answer!r} here)"
                said = f"{what} of rater {record.rater!r} on image {record.image!r} {how} {earlier_where}"
                problems.append(ImportProblem(record.where, said))
                continue
            group.seen[slot] = record.where
            if answer_is_reason:
                group.reasons[key] = answer  # type: ignore[assignment]
            else:
                group.values[key] = answer
        if record.seconds_spent is not None:
            group.seconds_spent = record.seconds_spent
    return pending


def _clean_groups(
    pending: dict[tuple[int, str], _Pending], spec: SchemaSpec, images: _ImageIndex, problems: list[ImportProblem]
) -> list[tuple[int, str]]:
    """Each pair's answers validated together (required fields, reasons) by the schema; the pairs that pass,
    their answers replaced by the cleaned labels (and the bookkeeping dropped: a big file holds many)."""
    cleaned: list[tuple[int, str]] = []
    for (image_id, username), group in pending.items():
        raw: dict[str, object] = {}
        for key, value in group.values.items():
            raw[key] = {"value": value, "reason": group.reasons[key]} if key in group.reasons else value
        for key, reason in group.reasons.items():
            if key not in group.values:
                raw[key] = {"value": None, "reason": reason}
        try:
            labels = spec.clean_labels(raw)
        except LabelError as exc:
            for key, message in exc.errors.items():
                if key in group.failed:
                    continue
                where = group.seen.get((key, False), group.seen.get((key, True), group.where))
                problems.append(
                    ImportProblem(where, f"image {images.names[image_id]!r}, rater {username!r}: {key}: {message}")
                )
            continue
        if not group.failed:
            group.values, group.reasons, group.seen = labels.values, labels.reasons, {}
            cleaned.append((image_id, username))
    return cleaned


# ---------------------------------------------------------------------------------------------------------------
# Storing
# ---------------------------------------------------------------------------------------------------------------


def _raters(usernames: set[str], project: Project, report: ImportReport) -> dict[str, int]:
    User = get_user_model()
    field_name = User.USERNAME_FIELD
    existing = {
        name: pk for name, pk in User.objects.filter(**{f"{field_name}__in": usernames}).values_list(field_name, "pk")
    }
    report.raters_reused = len(existing)
    ids = dict(existing)
    for name in sorted(usernames - set(existing)):
        ids[name] = rater_create(username=name, password=None).pk
        report.raters_created += 1
    for pk in existing.values():
        rater_profile_ensure(user=User(pk=pk))
    members = set(
        Membership.objects.filter(project=project, rater_id__in=ids.values()).values_list("rater_id", flat=True)
    )
    now = timezone.now()
    new = [
        Membership(project=project, rater_id=pk, status=Membership.Status.ACTIVE, qualified_at=now)
        for pk in ids.values()
        if pk not in members
    ]
    Membership.objects.bulk_create(new)
    report.memberships_created = len(new)
    return ids


def _store(
    project: Project,
    cleaned: list[tuple[int, str]],
    pending: dict[tuple[int, str], _Pending],
    images: _ImageIndex,
    report: ImportReport,
    source_name: str,
    progress: IO[str] | None,
) -> None:
    version = schema_version_current(project=project)
    spec = schema_spec(schema_version=version)
    rater_ids = _raters({username for _, username in cleaned}, project, report)
    by_id = {(image_id, rater_ids[username]): (image_id, username) for image_id, username in cleaned}

    # Pairs already labeled are left alone: that makes a second run of the same file a no-op.
    stored: set[tuple[int, int]] = set()
    rows = (
        Annotation.objects.filter(project=project, rater_id__in=set(rater_ids.values()))
        .order_by("id")
        .values_list("image_id", "rater_id", "values", "reasons")
    )
    for image_id, rater_id, values, reasons in rows.iterator(chunk_size=5000):
        stored.add((image_id, rater_id))
        name = by_id.get((image_id, rater_id))
        if name is not None and (values, reasons) != (pending[name].values, pending[name].reasons):
            report.differing.append(
                f"{pending[name].where}: image {images.names[image_id]!r}, rater {name[1]!r}: the stored label "
                "differs from the file and was kept"
            )
    todo = sorted(pair for pair in by_id if pair not in stored)
    report.skipped = len(by_id) - len(todo)

    # A rater reused from the platform may hold a lease on the image, or have skipped it or let it expire:
    # that assignment becomes the submitted one.
    earlier = {
        (image_id, rater_id): (pk, status)
        for pk, image_id, rater_id, status in Assignment.objects.filter(
            project=project, rater_id__in=set(rater_ids.values()), annotation__isnull=True
        ).values_list("pk", "image_id", "rater_id", "status")
    }
    gold = {g.image_id: g for g in GoldAnswer.objects.filter(image_id__in={i for i, _ in todo} & images.gold)}
    now = timezone.now()
    label_added: dict[int, int] = defaultdict(int)
    assigned_added: dict[int, int] = defaultdict(int)
    bar = tqdm(total=len(todo), unit="label", desc="storing", disable=progress is None or not todo, file=progress)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        new_assignments = []
        reused: list[int] = []
        for image_id, rater_id in batch:
            kind = Assignment.Kind.GOLD if image_id in images.gold else Assignment.Kind.REGULAR
            if (image_id, rater_id) in earlier:
                pk, status = earlier[(image_id, rater_id)]
                reused.append(pk)
                if kind == Assignment.Kind.REGULAR:
                    # A lease is counted in assigned_count already, a submitted assignment (whose label staff
                    # deleted) in both counters; a skipped or expired one in neither.
                    if status in (Assignment.Status.SKIPPED, Assignment.Status.EXPIRED):
                        assigned_added[image_id] += 1
                    if status != Assignment.Status.SUBMITTED:
                        label_added[image_id] += 1
                continue
            new_assignments.append(
                Assignment(
                    project=project,
                    image_id=image_id,
                    rater_id=rater_id,
                    status=Assignment.Status.SUBMITTED,
                    kind=kind,
                    schema_version=version,
                    created_at=now,
                    expires_at=now,
                    finished_at=now,
                )
            )
            if kind == Assignment.Kind.REGULAR:
                assigned_added[image_id] += 1
                label_added[image_id] += 1
        Assignment.objects.bulk_create(new_assignments)
        if reused:
            Assignment.objects.filter(pk__in=reused).update(
                status=Assignment.Status.SUBMITTED, finished_at=now, skip_reason=""
            )
        assignment_ids = {(a.image_id, a.rater_id): a.pk for a in new_assignments}
        assignment_ids.update({pair: earlier[pair][0] for pair in batch if pair in earlier})
        annotations = []
        for image_id, rater_id in batch:
            name = by_id[(image_id, rater_id)]
            values, reasons = pending[name].values, pending[name].reasons
            check = (
                gold_check(spec, expected=gold[image_id].values, tolerances=gold[image_id].tolerances, given=values)
                if image_id in gold
                else None
            )
            annotations.append(
                Annotation(
                    project=project,
                    image_id=image_id,
                    rater_id=rater_id,
                    assignment_id=assignment_ids[(image_id, rater_id)],
                    schema_version=version,
                    values=values,
                    reasons=reasons,
                    seconds_spent=pending[name].seconds_spent,
                    client_info={"imported_from": source_name, "where": pending[name].where},
                    source=Annotation.Source.IMPORT,
                    gold_score=check.score if check else None,
                    created_at=now,
                )
            )
        Annotation.objects.bulk_create(annotations)
        bar.update(len(batch))
    bar.close()

    # Counters move as the engine moves them: a lease adds to assigned_count, a submit to label_count.
    # Images sharing the same increments are updated together.
    by_increment: dict[tuple[int, int], list[int]] = defaultdict(list)
    for image_id in label_added.keys() | assigned_added.keys():
        by_increment[(label_added[image_id], assigned_added[image_id])].append(image_id)
    for (labels, assigned), ids in by_increment.items():
        for start in range(0, len(ids), BATCH):
            Image.objects.filter(pk__in=ids[start : start + BATCH]).update(
                label_count=F("label_count") + labels, assigned_count=F("assigned_count") + assigned
            )
    report.labels = len(todo)
    report.images = len({image_id for image_id, _ in todo})


class _DryRun(Exception):
    pass


def _open(source: str | os.PathLike | IO[str]) -> tuple[IO[str], str, bool]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        # utf-8-sig: spreadsheets put a byte-order mark before the header.
        return open(path, encoding="utf-8-sig", newline=""), path.name, True
    return source, getattr(source, "name", "stream"), False


def ratings_import(
    *,
    project: Project,
    source: str | os.PathLike | IO[str],
    format: str,
    rater_prefix: str = DEFAULT_RATER_PREFIX,
    field_map: dict[str, str] | None = None,
    partial: bool = False,
    dry_run: bool = False,
    progress: IO[str] | None = None,
) -> ImportReport:
    """Import a file of ratings into the project (see the module docstring), all or nothing.

    format       "csv" (columns image, rater, field, value and optionally reason; one row per field) or
                 "labelstudio" (a Label Studio JSON export; rating, number, choices and textarea results).
    rater_prefix put before every external rater id to make the user name.
    field_map    file field name (CSV field / Label Studio from_name) -> schema field key, or "key.reason" for
                 the field's reason. Names equal to a field key need no entry; "<key>_reason" is key's reason.
    partial      accept pairs that answer only some of the schema's fields (and fields without their reason);
                 by default every required field and reason must be there, as on the platform.
    dry_run      check and count everything, store nothing.
    progress     a stream for progress bars (none when None).

    Returns the report; raises RatingsImportError (nothing stored) listing every problem with its place.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    report = ImportReport(format=format, dry_run=dry_run)
    try:
        version = schema_version_current(project=project)
    except Exception:
        report.problems.append(ImportProblem("project", f"project {project.slug!r} has no schema"))
        raise RatingsImportError(report) from None
    spec = schema_spec(schema_version=version)
    validation_spec = _partial_spec(spec) if partial else spec
    mapping, map_errors = _parse_map(field_map, spec)
    if map_errors:
        report.problems.extend(ImportProblem("options", error) for error in map_errors)
        raise RatingsImportError(report)

    images = _ImageIndex(project)
    stream, source_name, owned = _open(source)
    problems = report.problems
    try:
        reader = _read_csv if format == "csv" else _read_label_studio
        pending = _gather(
            reader(stream, report, problems, progress),
            spec=validation_spec,
            images=images,
            mapping=mapping,
            rater_prefix=rater_prefix,
            url_images=format == "labelstudio",
            problems=problems,
        )
    except UnicodeDecodeError as exc:
        problems.append(ImportProblem("file", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        pending = {}
    finally:
        if owned:
            stream.close()
    cleaned = _clean_groups(pending, validation_spec, images, problems)
    if not problems and not cleaned and not report.cancelled:
        problems.append(ImportProblem("file", "no ratings in the file"))
    if problems:
        raise RatingsImportError(report)

    try:
        with transaction.atomic():
            _store(project, cleaned, pending, images, report, source_name, progress)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except IntegrityError as exc:
        # Only a label or lease stored by someone else while this import ran can collide.
        report.problems.append(
            ImportProblem("database", f"labels changed while importing ({exc}); nothing was stored, run it again")
        )
        raise RatingsImportError(report) from None
    if not dry_run:
        # The engine's picks, the statistics and the staff pages read these rows next.
        tables_analyze_after_bulk(rows=report.labels, models=(Annotation, Assignment, Image))
    return report


__all__ = ["FORMATS", "ImportProblem", "ImportReport", "RatingsImportError", "ratings_import"]
