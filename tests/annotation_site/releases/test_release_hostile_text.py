"""Raters' text in a release: a release of a project holding text that should never have been stored (a lone
surrogate, a NUL, as an older version let through on SQLite) still builds, and text a spreadsheet would run as
a formula (=, +, -, @, tab, carriage return first) is neutralised in every CSV with a leading quote, as OWASP
recommends, while the Parquet files keep it exactly and numbers stay numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection

from annotation_site.grounding.models import DescriptionAnnotation, RegionAnnotation
from annotation_site.labeling.models import Annotation
from annotation_site.releases.tables import StreamingTable, write_csv
from tests.annotation_site.releases.test_release_tasks_export import build, describe, regions, task_project

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://x","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tx=1", "\rx=1"]


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)


def _unstorable_texts() -> list[str]:
    """What this database holds when an older version let it through: SQLite keeps a lone surrogate and a NUL
    inside JSON (escaped), PostgreSQL refuses both, so there the text is only unusual."""
    if connection.vendor == "sqlite":
        return ["note \ud800 half a pair", "nul \x00 inside", "\udfff"]
    return ["\u2028line separator", "\ufeffbom", "\U0001f600 emoji"]


def _hostile_project(project, staff):  # type: ignore[no-untyped-def]
    data = task_project(project, staff)
    a, b, c, d, _gold = data["images"]
    r1, r2, r3, _r4 = data["raters"]
    texts = _unstorable_texts()
    # As the old API stored them: straight into the rows, past the checks that now refuse them.
    first = Annotation.objects.filter(image=a, rater=r1).get()
    first.values = {**first.values, "subject_background": texts[0]}
    first.reasons = {**first.reasons, "composition": texts[1]}
    first.save(update_fields=["values", "reasons"])
    second = Annotation.objects.filter(image=b, rater=r1).get()
    second.values = {**second.values, "subject_background": FORMULAS[0]}
    second.reasons = {**second.reasons, "eye_catching": FORMULAS[1]}
    second.save(update_fields=["values", "reasons"])
    third = Annotation.objects.filter(image=d, rater=r1).get()
    third.values = {**third.values, "subject_background": FORMULAS[2]}
    third.reasons = {**third.reasons, "composition": FORMULAS[3]}
    third.save(update_fields=["values", "reasons"])
    regions(project, c, r1, ([0.1, 0.1, 0.4, 0.4], "blur", texts[0]), ([0.5, 0.5, 0.9, 0.9], "noise", texts[2]))
    regions(project, d, r2, ([0.1, 0.1, 0.4, 0.4], "blur", FORMULAS[0]))
    describe(project, b, r2, [("noise", "obvious")], FORMULAS[4])
    describe(project, c, r3, [("blur", "slight")], texts[0] if connection.vendor != "sqlite" else "plain")
    if connection.vendor == "sqlite":
        region = RegionAnnotation.objects.get(image=c, rater=r1)
        DescriptionAnnotation.objects.filter(image=c, rater=r3).update(detail="a described \x00 photo")
        assert region.boxes[0]["note"] == texts[0]  # the surrogate really is stored
    return data


def test_a_release_of_a_project_holding_hostile_text_still_builds_and_keeps_every_file_readable(
    project, staff, tmp_path
):
    _hostile_project(project, staff)

    release, out = build(project, tmp_path, ratios={"train": 1.0})

    assert release.status == "done", release.error
    for path in out.rglob("*"):
        if path.suffix in (".csv", ".json", ".jsonl", ".md"):
            text = path.read_text(encoding="utf-8")  # valid UTF-8 throughout
            if path.suffix == ".json":
                json.loads(text)
            elif path.suffix == ".jsonl":
                [json.loads(line) for line in text.splitlines()]
    regions_jsonl = (out / "regions/regions.jsonl").read_text(encoding="utf-8")
    if connection.vendor == "sqlite":
        notes = [box["note"] for line in regions_jsonl.splitlines() for box in json.loads(line)["boxes"]]
        assert "note \ud800 half a pair" in notes  # the JSON says exactly what is stored, as an escape


def test_formula_text_is_neutralised_in_the_csv_files_and_exact_in_parquet(project, staff, tmp_path):
    _hostile_project(project, staff)

    release, out = build(project, tmp_path, ratios={"train": 1.0})

    assert release.status == "done", release.error
    with open(out / "ratings.csv", newline="", encoding="utf-8") as handle:
        ratings = list(csv.DictReader(handle))
    texts = {row["subject_background"] for row in ratings} | {row["eye_catching_reason"] for row in ratings} | {
        row["composition_reason"] for row in ratings
    }
    assert "'" + FORMULAS[0] in texts and "'" + FORMULAS[1] in texts and "'" + FORMULAS[2] in texts
    assert "'" + FORMULAS[3] in texts
    for path in out.rglob("*.csv"):
        for row in csv.reader(path.open(newline="", encoding="utf-8")):
            for cell in row:
                assert not cell[:1] in ("=", "+", "@", "\t", "\r"), (path.name, cell)
                assert not (cell[:1] == "-" and not _number(cell)), (path.name, cell)
    parquet = pq.read_table(out / "ratings.parquet").to_pydict()
    assert FORMULAS[0] in parquet["subject_background"] and FORMULAS[1] in parquet["eye_catching_reason"]
    assert FORMULAS[2] in parquet["subject_background"] and FORMULAS[3] in parquet["composition_reason"]
    readme = (out / "datasheet.md").read_text(encoding="utf-8")
    assert "formula" in readme and "single quote" in readme and "Parquet" in readme


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_csv_cells_starting_like_a_formula_get_a_leading_quote_but_negative_numbers_stay_numbers(tmp_path: Path):
    table = pa.table(
        {
            "text": pa.array(FORMULAS + ["plain", "-", None, "'already"], pa.string()),
            "score": pa.array([-1.5, 2.0, -3.25, 0.0, 1.0, -0.5, 7.0, -2.0, None, 1.0], pa.float64()),
            "count": pa.array([-1, 2, -3, 0, 1, -5, 7, -2, None, 1], pa.int64()),
        }
    )
    write_csv(table, tmp_path / "t.csv", decimals={"score": 2})
    streaming = StreamingTable(table.schema, tmp_path / "s.csv", tmp_path / "s.parquet")
    streaming.write({name: table.column(name).combine_chunks() for name in table.column_names})
    streaming.close()

    for name in ("t.csv", "s.csv"):
        rows = list(csv.DictReader((tmp_path / name).open(newline="", encoding="utf-8")))
        assert [row["text"] for row in rows] == ["'" + text for text in FORMULAS] + ["plain", "'-", "", "'already"]
        assert [row["count"] for row in rows] == ["-1", "2", "-3", "0", "1", "-5", "7", "-2", "", "1"]
        assert rows[0]["score"] in ("-1.50", "-1.5") and rows[7]["score"] in ("-2.00", "-2")
    exact = pq.read_table(tmp_path / "s.parquet").column("text").to_pylist()
    assert exact == FORMULAS + ["plain", "-", None, "'already"]


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="PostgreSQL never holds such text")
def test_the_admin_pages_of_a_row_holding_a_lone_surrogate_open_without_a_500(project, staff, admin_client):
    data = _hostile_project(project, staff)
    a, b, c, d, _gold = data["images"]
    region = RegionAnnotation.objects.get(image=c, rater=data["raters"][0])
    annotation = Annotation.objects.get(image=a, rater=data["raters"][0])
    description = DescriptionAnnotation.objects.get(image=c, rater=data["raters"][2])
    for path in (
        f"/admin/grounding/regionannotation/{region.pk}/change/",
        "/admin/grounding/regionannotation/",
        f"/admin/labeling/annotation/{annotation.pk}/change/",
        "/admin/labeling/annotation/",
        f"/admin/grounding/descriptionannotation/{description.pk}/change/",
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    page = admin_client.get(f"/admin/grounding/regionannotation/{region.pk}/change/").content.decode("utf-8")
    assert "note \\ud800 half a pair" in page  # shown as its escape, as the release writes it
