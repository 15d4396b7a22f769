"""import_ratings: ratings collected elsewhere (long-form CSV, Label Studio JSON) become the project's labels."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation_site.images.models import Image
from annotation_site.labeling.assignments import NoAssignment, assignment_next, assignment_submit
from annotation_site.labeling.importing import RatingsImportError, ratings_import
from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.quality.selectors import annotations_for_statistics, project_rater_quality
from annotation_site.raters.models import Membership
from annotation_site.raters.services import rater_create
from annotation_site.statistics import mos_table
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import REPO, make_images

pytestmark = pytest.mark.django_db

LABEL_STUDIO_EXPORT = REPO / "tests" / "data" / "labelstudio_realqa_export.json"


@pytest.fixture
def images(project):  # type: ignore[no-untyped-def]
    project.gold_rate = 0
    project.save()
    return make_images(project, 3)  # img-1000.jpg, img-1001.jpg, img-1002.jpg


def long_rows(image: str, rater: str, labels: dict | None = None, **changes: object) -> list[list[str]]:
    """One rater's full RealQA label on one image as long-form CSV rows: image, rater, field, value, reason."""
    rows = []
    for key, value in {**(labels or REALQA_LABELS), **changes}.items():
        reason = ""
        if isinstance(value, dict):
            value, reason = value["value"], value["reason"]
        rows.append([image, rater, key, str(value), reason])
    return rows


LONG_HEADER = ("image", "rater", "field", "value", "reason")


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = LONG_HEADER) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_ratings", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def failure(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return str(caught.value)


def test_a_csv_of_two_raters_becomes_one_typed_label_per_image_and_rater(project, images, tmp_path):
    rows = (
        long_rows("img-1000.jpg", "alice")
        + long_rows(
            "img-1000.jpg", "bob", clarity="Fair", quality="5.4", eye_catching={"value": "6", "reason": "Dull."}
        )
        + long_rows(images[1].sha256, "alice", clarity="Excellent", exposure="Well exposed")
    )
    out = run("realqa-test", str(write_csv(tmp_path / "ratings.csv", rows)))

    assert "3 labels on 2 images stored" in out and "2 raters created" in out
    stored = {(a.image.original_name, a.rater.username): a for a in Annotation.objects.select_related("image", "rater")}
    assert set(stored) == {
        ("img-1000.jpg", "imported-alice"),
        ("img-1000.jpg", "imported-bob"),
        ("img-1001.jpg", "imported-alice"),
    }
    bob = stored[("img-1000.jpg", "imported-bob")]
    assert bob.source == Annotation.Source.IMPORT
    assert bob.values["quality"] == 5.4
    assert bob.values["eye_catching"] == 6 and isinstance(bob.values["eye_catching"], int)
    assert bob.values["clarity"] == "fair"  # matched by its label, stored as the choice value
    assert bob.reasons == {"eye_catching": "Dull.", "composition": REALQA_LABELS["composition"]["reason"]}
    assert stored[("img-1001.jpg", "imported-alice")].values["exposure"] == "well"
    assert bob.schema_version_id == project.current_schema_id and bob.client_info["imported_from"] == "ratings.csv"
    # Every label sits on a submitted assignment and the images' counters moved as two submits move them.
    assert all(a.assignment.status == Assignment.Status.SUBMITTED for a in stored.values())
    counters = {i.original_name: (i.assigned_count, i.label_count) for i in Image.objects.all()}
    assert counters == {"img-1000.jpg": (2, 2), "img-1001.jpg": (1, 1), "img-1002.jpg": (0, 0)}
    # The external raters are rater users who cannot log in, active members of the project.
    alice = get_user_model().objects.get(username="imported-alice")
    assert not alice.has_usable_password() and alice.rater_profile.pseudonym
    assert Membership.objects.get(project=project, rater=alice).status == Membership.Status.ACTIVE


def test_a_label_studio_export_is_mapped_onto_the_schema_fields(project, images):
    out = run("realqa-test", str(LABEL_STUDIO_EXPORT), "--rater-prefix", "ls-", "--map", "overall_quality=quality")

    assert "5 labels on 3 images stored" in out and "1 cancelled Label Studio annotations left out" in out
    labels = {(a.image.original_name, a.rater.username): a for a in Annotation.objects.select_related("image", "rater")}
    assert len(labels) == 5 and not get_user_model().objects.filter(username="ls-3").exists()
    first = labels[("img-1000.jpg", "ls-1")]
    assert first.values == {
        "clarity": "good",
        "exposure": "well",
        "saturation": "natural",
        "subject_background": "Subject: a red kettle; background: a kitchen shelf",
        "subject_integrity": "complete",
        "subject_clutter": "uncluttered",
        "background_clutter": "cluttered",
        "level_shot": "level",
        "eye_catching": 7,
        "composition": 6,
        "quality": 6.8,
        "aesthetics": 6.1,
    }
    assert first.reasons["eye_catching"] == "The red kettle pops against the grey shelf."  # eye_catching_reason
    assert first.seconds_spent == 41.2  # the annotation's lead_time
    # Choices given by value or label in any case: "poor", "Under", "under", "partial".
    second = labels[("img-1001.jpg", "ls-2")].values
    assert (second["clarity"], second["exposure"], second["saturation"], second["subject_integrity"]) == (
        "poor",
        "under",
        "under",
        "partial",
    )
    assert labels[("img-1002.jpg", "ls-2")].values["level_shot"] == "no_horizon"
    assert Image.objects.get(original_name="img-1000.jpg").label_count == 2


def test_every_problem_in_a_file_is_listed_with_its_line_and_nothing_is_stored(project, images, tmp_path):
    rows = (
        long_rows("img-1000.jpg", "alice")  # lines 2-13: fine
        + long_rows("nope.jpg", "alice")[:1]  # line 14: unknown image
        + [["img-1001.jpg", "bob", "qualty", "6.5", ""]]  # line 15: unknown field
        + long_rows("img-1001.jpg", "carol", quality="11")  # lines 16-27, quality on line 26: out of range
        + [["img-1002.jpg", "dave", "clarity", "sharp", ""]]  # line 28: not a choice
    )
    message = failure("realqa-test", str(write_csv(tmp_path / "bad.csv", rows)))

    assert "nothing imported" in message
    assert "line 14: no image 'nope.jpg' in this project" in message
    assert "line 15: field 'qualty': no field 'qualty' (did you mean 'quality'?)" in message
    assert "line 26: quality: must be between 1 and 10 (got 11)" in message
    assert "line 28: clarity: must be one of bad, poor, fair, good, excellent (got 'sharp')" in message
    # dave's label misses every other field: named once per field, at his first line; carol's quality is
    # named once, as out of range, not again as missing.
    assert "line 28: image 'img-1002.jpg', rater 'imported-dave': quality: this field is required" in message
    assert "imported-carol" not in message
    assert Annotation.objects.count() == 0 and Assignment.objects.count() == 0
    assert not get_user_model().objects.filter(username__startswith="imported-").exists()
    assert Image.objects.filter(label_count__gt=0).count() == 0


def test_a_label_studio_export_with_unknown_names_and_bad_values_is_refused_by_task(project, images, tmp_path):
    export = LABEL_STUDIO_EXPORT.read_text().replace("8b07e2aa-img-1001.jpg", "8b07e2aa-img-9999.jpg")
    path = tmp_path / "export.json"
    path.write_text(export.replace('"rating": 9', '"rating": 12'))

    message = failure("realqa-test", str(path))  # no --map: overall_quality is not a field

    assert "task 2 (id 42), annotation 1, result 'clarity': no image '/data/upload/3/8b07e2aa-img-9999.jpg'" in message
    assert "task 1 (id 41), annotation 1, result 'overall_quality': field 'overall_quality': no field" in message
    assert "task 3 (id 43), annotation 1, result 'eye_catching': eye_catching: must be between 1 and 10" in message
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            ["img-1000.jpg", "alice", "quality", "6.8", ""],
            "line 14: 'quality' of rater 'alice' on image 'img-1000.jpg' repeats line 12",
        ),
        (["img-1000.jpg", "alice", "quality", "7.5", ""], "contradicts (6.8 there, 7.5 here) line 12"),
    ],
)
def test_a_field_given_twice_for_the_same_image_and_rater_is_refused(project, images, tmp_path, second, expected):
    rows = long_rows("img-1000.jpg", "alice") + [second]
    message = failure("realqa-test", str(write_csv(tmp_path / "twice.csv", rows)))
    assert expected in message
    assert Annotation.objects.count() == 0


def test_running_the_same_file_again_changes_nothing(project, images, tmp_path):
    path = write_csv(tmp_path / "ratings.csv", long_rows("img-1000.jpg", "alice") + long_rows("img-1001.jpg", "bob"))
    run("realqa-test", str(path))
    before = (
        list(Annotation.objects.order_by("id").values_list("id", "values")),
        list(Image.objects.order_by("id").values_list("assigned_count", "label_count")),
        get_user_model().objects.count(),
        Membership.objects.count(),
        Assignment.objects.count(),
    )

    again = run("realqa-test", str(path))

    assert "0 labels on 0 images stored; 2 already there and skipped" in again and "2 reused" in again
    after = (
        list(Annotation.objects.order_by("id").values_list("id", "values")),
        list(Image.objects.order_by("id").values_list("assigned_count", "label_count")),
        get_user_model().objects.count(),
        Membership.objects.count(),
        Assignment.objects.count(),
    )
    assert after == before
    # A changed file does not overwrite what is stored; the difference is reported.
    changed = write_csv(tmp_path / "changed.csv", long_rows("img-1000.jpg", "alice", quality="3.0"))
    err = io.StringIO()
    call_command("import_ratings", "realqa-test", str(changed), "--no-progress", stdout=io.StringIO(), stderr=err)
    assert (
        "line 2: image 'img-1000.jpg', rater 'imported-alice': the stored label differs from the file and was kept"
        in err.getvalue()
    )
    kept = Annotation.objects.get(rater__username="imported-alice", image__original_name="img-1000.jpg")
    assert kept.values["quality"] == 6.8


def test_a_dry_run_counts_what_would_be_stored_and_stores_nothing(project, images, tmp_path):
    path = write_csv(tmp_path / "ratings.csv", long_rows("img-1000.jpg", "alice"))
    out = run("realqa-test", str(path), "--dry-run")
    assert "1 labels on 1 images would be stored (dry run, nothing stored)" in out and "1 raters created" in out
    assert Annotation.objects.count() == 0 and not get_user_model().objects.filter(username="imported-alice").exists()


def test_scores_only_data_needs_partial_and_then_imports(project, images, tmp_path):
    # KonIQ-style data: one overall score per rater and image, none of the attributes.
    rows = [["img-1000.jpg", "w1", "quality", "7.2"], ["img-1001.jpg", "w1", "quality", "3.1"]]
    path = write_csv(tmp_path / "mos.csv", rows, header=("image", "rater", "field", "value"))
    assert "clarity: this field is required" in failure("realqa-test", str(path))
    assert "2 labels on 2 images stored" in run("realqa-test", str(path), "--partial")
    assert sorted(Annotation.objects.values_list("values", flat=True), key=str) == [{"quality": 3.1}, {"quality": 7.2}]


def test_the_engine_never_hands_a_rater_an_image_they_rated_elsewhere(project, images, tmp_path):
    project.overlap = project.max_overlap = 2
    project.qualification_size = 0
    project.save()
    rater1 = rater_create(username="rater1", password="pw-123456")
    rows = long_rows("img-1000.jpg", "rater1")
    rows += long_rows("img-1000.jpg", "outside") + long_rows("img-1001.jpg", "outside")
    # An empty prefix joins the external id "rater1" to the platform's rater1.
    run("realqa-test", str(write_csv(tmp_path / "ratings.csv", rows)), "--rater-prefix", "")

    assert "outside" in set(get_user_model().objects.values_list("username", flat=True))
    seen = []
    following = assignment_next(project=project, rater=rater1)
    while not isinstance(following, NoAssignment):
        seen.append(following.image.original_name)
        following = assignment_submit(assignment_id=following.pk, rater=rater1, labels=REALQA_LABELS).next
    assert seen == ["img-1002.jpg", "img-1001.jpg"]  # least rated first, and never img-1000.jpg, rated elsewhere
    # img-1000.jpg already has its two raters: a newcomer is not sent there either.
    newcomer = rater_create(username="rater2", password="pw-123456")
    assert assignment_next(project=project, rater=newcomer).image.original_name == "img-1002.jpg"
    counters = {i.original_name: (i.assigned_count, i.label_count) for i in Image.objects.all()}
    assert counters == {"img-1000.jpg": (2, 2), "img-1001.jpg": (2, 2), "img-1002.jpg": (2, 1)}


def test_a_live_lease_of_a_reused_rater_becomes_the_imported_label(project, images, tmp_path):
    project.qualification_size = 0
    project.save()
    rater1 = rater_create(username="rater1", password="pw-123456")
    lease = assignment_next(project=project, rater=rater1)
    image = lease.image.original_name
    run("realqa-test", str(write_csv(tmp_path / "ratings.csv", long_rows(image, "rater1"))), "--rater-prefix", "")

    lease.refresh_from_db()
    assert lease.status == Assignment.Status.SUBMITTED and lease.annotation.source == Annotation.Source.IMPORT
    counted = Image.objects.get(original_name=image)
    assert (counted.assigned_count, counted.label_count) == (1, 1)  # the lease was counted once, not twice


def test_statistics_see_imported_labels_beside_platform_ones(project, images, tmp_path):
    rows = []
    for number, rater in enumerate(["a", "b", "c", "d"]):
        for image, base in (("img-1000.jpg", 7.0), ("img-1001.jpg", 4.0), ("img-1002.jpg", 5.5)):
            rows += long_rows(image, rater, quality=f"{base + 0.1 * number:.1f}")
    run("realqa-test", str(write_csv(tmp_path / "ratings.csv", rows)))

    used = annotations_for_statistics(project=project)
    assert used.count() == 12 and set(used.values_list("source", flat=True)) == {Annotation.Source.IMPORT}
    matrix = np.full((4, 3), np.nan)
    raters = sorted({a.rater_id for a in used})
    order = [i.pk for i in images]
    for annotation in used:
        matrix[raters.index(annotation.rater_id), order.index(annotation.image_id)] = annotation.values["quality"]
    np.testing.assert_allclose(mos_table(matrix).mean, [7.15, 4.15, 5.65])
    quality = {row.username: row for row in project_rater_quality(project=project)}
    assert {name: row.labels for name, row in quality.items()} == {f"imported-{r}": 3 for r in "abcd"}
    assert quality["imported-a"].bias < 0 < quality["imported-d"].bias


def test_the_service_reports_problems_as_data_and_accepts_an_open_stream(project, images):
    stream = io.StringIO("image,rater,field,value\nimg-1000.jpg,x,quality,abc\n")
    with pytest.raises(RatingsImportError) as caught:
        ratings_import(project=project, source=stream, format="csv", partial=True)
    assert [str(p) for p in caught.value.problems] == ["line 2: quality: must be a number (got 'abc')"]
    with pytest.raises(ValueError, match="format must be one of csv, labelstudio"):
        ratings_import(project=project, source=io.StringIO(""), format="xlsx")


def test_bad_headers_missing_files_and_projects_are_named(project, images, tmp_path):
    path = write_csv(tmp_path / "odd.csv", [], header=("image", "rater", "value", "score"))
    assert "line 1: missing column(s) field; unknown column(s) 'score'" in failure("realqa-test", str(path))
    assert "no such file" in failure("realqa-test", str(tmp_path / "absent.csv"))
    assert "no project with slug 'nope'" in failure("nope", str(path))
    empty = write_csv(tmp_path / "empty.csv", [])
    assert "no ratings in the file" in failure("realqa-test", str(empty))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"data": ')
    assert "file: not valid JSON" in failure("realqa-test", str(broken))


def test_progress_bars_go_to_stderr_and_the_summary_to_stdout(project, images, tmp_path):
    path = write_csv(tmp_path / "ratings.csv", long_rows("img-1000.jpg", "alice"))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_ratings", "realqa-test", str(path), stdout=out, stderr=err)
    assert "reading: " in err.getvalue() and "storing: 100%" in err.getvalue()
    assert out.getvalue().strip() == (
        "realqa-test: 1 labels on 1 images stored; 0 already there and skipped; 1 raters created, 0 reused; "
        "12 records read"
    )


def test_a_gold_image_gets_a_gold_score_and_no_counts(project, images, tmp_path):
    from annotation_site.labeling.services import gold_answer_set

    gold_answer_set(image=images[2], values={"quality": 6.0, "clarity": "good"})
    rows = long_rows("img-1002.jpg", "alice", quality="9.0") + long_rows("img-1000.jpg", "alice")
    run("realqa-test", str(write_csv(tmp_path / "ratings.csv", rows)))

    label = Annotation.objects.get(image=images[2])
    assert label.gold_score == 0.5 and label.assignment.kind == Assignment.Kind.GOLD  # clarity right, quality 3 off
    assert Image.objects.get(pk=images[2].pk).label_count == 0
    assert list(annotations_for_statistics(project=project).values_list("image_id", flat=True)) == [images[0].pk]


def test_a_name_shared_by_two_images_must_be_given_by_sha256(project, tmp_path):
    from annotation_site.images.services import images_import
    from annotation_site.images.sources import BytesSource
    from tests.annotation_site.images import corpus

    sources = [BytesSource(f"{folder}/x.jpg", corpus.photo_jpeg(seed=seed)) for folder, seed in (("a", 1), ("b", 2))]
    images_import(project=project, sources=sources)
    first = Image.objects.get(original_name="a/x.jpg")
    ambiguous = write_csv(tmp_path / "ratings.csv", long_rows("x.jpg", "alice"))
    assert "line 2: image 'x.jpg' matches 2 images" in failure("realqa-test", str(ambiguous))
    by_path_and_hash = long_rows("b/x.jpg", "alice") + long_rows(first.sha256.upper(), "alice")
    assert "2 labels on 2 images stored" in run("realqa-test", str(write_csv(tmp_path / "ok.csv", by_path_and_hash)))


def test_a_label_staff_deleted_can_be_imported_again_without_counting_twice(project, images, tmp_path):
    path = write_csv(tmp_path / "ratings.csv", long_rows("img-1000.jpg", "alice"))
    run("realqa-test", str(path))
    Annotation.objects.all().delete()  # the admin's delete: the submitted assignment stays

    assert "1 labels on 1 images stored" in run("realqa-test", str(path))
    image = Image.objects.get(pk=images[0].pk)
    assert (image.assigned_count, image.label_count) == (1, 1) and Assignment.objects.count() == 1
