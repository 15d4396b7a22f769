from __future__ import annotations

import copy
import json

import pytest
from django.core.management import CommandError, call_command

from annotation_site.labeling.services import annotation_create
from annotation_site.projects.models import Project
from annotation_site.schemas.models import SchemaVersion
from annotation_site.schemas.selectors import schema_version_current
from annotation_site.schemas.services import schema_version_create
from annotation_site.schemas.spec import SchemaError
from tests.annotation_site.images import corpus
from tests.annotation_site.labels import REALQA_LABELS

pytestmark = pytest.mark.django_db


def _image(project):  # type: ignore[no-untyped-def]
    from annotation_site.images.services import images_import
    from annotation_site.images.sources import BytesSource

    report = images_import(project=project, sources=[BytesSource("cat.jpg", corpus.photo_jpeg(seed=1))])
    return project.images.get(pk=report.lines[0].image_id)


def test_changing_a_live_schema_makes_a_new_version_and_leaves_stored_labels_alone(project, rater, realqa_schema):
    image = _image(project)
    annotation, _ = annotation_create(image=image, rater=rater, labels=REALQA_LABELS)
    changed = copy.deepcopy(realqa_schema)
    changed["fields"][0]["choices"][0]["label"] = "Very bad"

    version, created = schema_version_create(project=project, definition=changed)

    assert created and version.version == 2
    assert schema_version_current(project=project) == version
    annotation.refresh_from_db()
    assert annotation.schema_version.version == 1
    assert annotation.values["clarity"] == "good"
    assert SchemaVersion.objects.get(project=project, version=1).definition["fields"][0]["choices"][0]["label"] == "Bad"


def test_submitting_the_same_schema_again_creates_no_version(project, realqa_schema):
    reordered = json.loads(json.dumps(realqa_schema, sort_keys=True))
    version, created = schema_version_create(project=project, definition=reordered)
    assert not created and version.version == 1


def test_a_bad_schema_is_refused_before_anything_is_written(project, realqa_schema):
    broken = copy.deepcopy(realqa_schema)
    broken["fields"][2]["kind"] = "ordnial"
    with pytest.raises(SchemaError, match=r"fields\[2\]\.kind"):
        schema_version_create(project=project, definition=broken)
    assert project.schema_versions.count() == 1


def test_create_project_command_creates_a_project_on_a_schema_file(tmp_path, one_of_each_schema):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(one_of_each_schema))
    call_command("create_project", "tiny", "--schema", str(path), "--overlap", "3", stdout=open(tmp_path / "out", "w"))
    project = Project.objects.get(slug="tiny")
    assert project.overlap == 3
    assert [field["kind"] for field in schema_version_current(project=project).definition["fields"]] == [
        "ordinal",
        "nominal",
        "integer",
        "continuous",
        "text",
    ]


def test_create_project_command_on_an_existing_project_adds_a_version_only_when_the_schema_changed(tmp_path, one_of_each_schema):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(one_of_each_schema))
    out = tmp_path / "out"
    call_command("create_project", "tiny", "--schema", str(path), stdout=open(out, "w"))
    call_command("create_project", "tiny", "--schema", str(path), stdout=open(out, "a"))
    one_of_each_schema["fields"][3]["max"] = 5
    path.write_text(json.dumps(one_of_each_schema))
    call_command("create_project", "tiny", "--schema", str(path), stdout=open(out, "a"))
    assert "schema unchanged (version 1)" in out.read_text()
    assert "now at version 2" in out.read_text()


def test_create_project_command_names_the_bad_key_of_a_broken_schema(tmp_path, one_of_each_schema):
    one_of_each_schema["fields"][1]["choises"] = one_of_each_schema["fields"][1].pop("choices")
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(one_of_each_schema))
    with pytest.raises(CommandError, match=r"fields\[1\].*'choises'.*did you mean 'choices'"):
        call_command("create_project", "tiny", "--schema", str(path))
    assert not Project.objects.filter(slug="tiny").exists()


def test_create_project_command_points_at_the_line_of_invalid_json(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text('{\n  "name": "x",\n  "fields": [\n}\n')
    with pytest.raises(CommandError, match="not valid JSON.*line 4"):
        call_command("create_project", "tiny", "--schema", str(path))
