"""The release as staff get it: `manage.py export_release` and the "releases.build" task on a real worker, both with
the LLaMA-Factory conversations that need realqa_model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from annotation_site.releases.builder import manifest_verify
from annotation_site.releases.models import Release
from annotation_site.releases.services import release_create
from realqa_model import parse_score
from realqa_model.prompts import parse_cot_answer
from tests.annotation_site.releases.helpers import read_csv, read_json, small_project
from workers.celery import app


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)


def _conversations(out: Path) -> dict[str, list[dict]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((out / "conversations").glob("*.json"))}


@pytest.mark.django_db
def test_export_release_writes_conversations_that_the_realqa_parsers_read(project, staff, tmp_path, realqa_schema):
    data = small_project(project, staff)
    out = tmp_path / "realqa-v1"

    call_command("export_release", "realqa-test", "--out", str(out), "--resamples", "100", "--no-progress")

    assert manifest_verify(out) == []
    scores = {row["image_sha256"]: row for row in read_csv(out / "scores.csv")}
    conversations = _conversations(out)
    plain = [c for name, items in conversations.items() if name.endswith("_plain") for c in items]
    cot = [c for name, items in conversations.items() if name.endswith("_cot") for c in items]
    assert len(plain) == 8  # four images, two overall score fields
    assert len(cot) == 4
    for conversation in plain + cot:
        user, assistant = conversation["messages"]
        assert user["role"] == "user" and user["content"].startswith("<image>")
        assert assistant["role"] == "assistant"
        [image] = conversation["images"]
        assert (out / image).is_file()
    a = data["images"][0]
    [quality] = [
        c for c in plain
        if c["images"] == [f"images/{a.sha256}.jpg"] and "overall quality" in c["messages"][0]["content"]
    ]
    assert quality["messages"][1]["content"] == "The overall quality score of this image is 7.00."
    assert parse_score(quality["messages"][1]["content"]) == float(scores[a.sha256]["quality_mos"])
    [chain] = [c for c in cot if c["images"] == [f"images/{a.sha256}.jpg"]]
    parsed = parse_cot_answer(realqa_schema, chain["messages"][1]["content"])
    assert parsed["final_score"] == 7.0 and chain["messages"][1]["content"].endswith("The final score is <7.00>.")
    assert parsed["values"]["clarity"] == "good"  # the majority
    assert parsed["values"]["eye_catching"] == 7  # the MOS of 6, 7 and 9, rounded
    assert parsed["reasons"]["eye_catching"] == "eye_catching reason for 7"  # the rater closest to the consensus
    assert parsed["values"]["subject_background"] == "Subject: a cat; background: a sofa"
    info = read_json(out / "dataset_info.json")
    for entry in info.values():
        assert entry["formatting"] == "sharegpt" and (out / entry["file_name"]).is_file()
    metadata = read_json(out / "release.json")
    assert metadata["conversations"]["included"] is True
    assert Release.objects.get().conversations_included is True
    assert "`conversations/`" in (out / "datasheet.md").read_text()


@pytest.mark.django_db
def test_bad_options_give_a_clear_command_error_and_leave_nothing_behind(project, staff, tmp_path):
    small_project(project, staff)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    cases = [
        (["nope", "--out", str(tmp_path / "a")], "no project with slug 'nope'"),
        (["realqa-test", "--out", str(full)], "is not empty"),
        (["realqa-test", "--out", str(tmp_path / "a"), "--ratios", "train=0.8,test=0.1"], "must sum to 1"),
        (["realqa-test", "--out", str(tmp_path / "a"), "--ratios", "train=0.8,Test=0.2"], "split name 'Test'"),
        (["realqa-test", "--out", str(tmp_path / "a"), "--ratios", "train=lots"], "must be a number"),
        (["realqa-test", "--out", str(tmp_path / "a"), "--resamples", "0"], "resamples must be between 1"),
        (["realqa-test", "--out", str(tmp_path / "a"), "--score-field", "clarity"], "not a score field"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            call_command("export_release", *args, "--no-progress")
    assert not Release.objects.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert (full / "keep.txt").read_text() == "mine"


@pytest.mark.django_db
def test_a_project_without_usable_labels_cannot_be_released(project, tmp_path):
    with pytest.raises(CommandError, match="has no labels a release may use"):
        call_command("export_release", "realqa-test", "--out", str(tmp_path / "a"), "--no-progress")


def test_a_real_worker_builds_a_queued_release_with_its_conversations(project, staff, tmp_path, celery_worker_queue):
    small_project(project, staff)
    release = release_create(project=project, options={"resamples": 100}, output_dir=tmp_path / "release")

    result = app.send_task("releases.build", args=[release.pk], queue=celery_worker_queue)

    outcome = result.get(timeout=180)
    release.refresh_from_db()
    assert release.status == Release.Status.DONE and release.progress == 1.0
    assert outcome == {"release": "realqa-test-v1", "status": "done", "manifest_sha256": release.manifest_sha256, "archive": release.archive}
    assert release.archive.endswith(".zip") and default_storage.exists(release.archive)  # for staff to download
    out = Path(release.output_dir)
    assert manifest_verify(out) == [] and release.conversations_included
    assert (out / "dataset_info.json").is_file() and len(read_csv(out / "ratings.csv")) == 9
    # Delivered twice (a worker died after finishing): the done release stays exactly as it was.
    again = app.send_task("releases.build", args=[release.pk], queue=celery_worker_queue).get(timeout=120)
    assert again == outcome


@pytest.mark.django_db
def test_export_release_works_on_any_schema_and_its_conversations_parse(one_of_each_schema, tmp_path):
    from annotation_site.labeling.services import annotation_create
    from annotation_site.projects.services import project_create
    from annotation_site.raters.services import rater_create
    from tests.conftest import make_images

    project = project_create(slug="other", schema_definition=one_of_each_schema)
    images = make_images(project, 4)
    for n in range(3):
        rater = rater_create(username=f"o{n}", password="pw-123456")
        for k, image in enumerate(images):
            labels = {
                "sharpness": ["blurry", "soft", "sharp", "cannot_tell"][(n + k) % 4],
                "clutter": "cluttered" if n else "uncluttered",
                "appeal": {"value": 3 + n + k, "reason": f"reason {n}"},
                "overall": round(2.5 + n + k * 1.3, 1),
                "notes": "  A  note " if n else "",
            }
            annotation_create(image=image, rater=rater, labels=labels)
    out = tmp_path / "other"
    call_command("export_release", "other", "--out", str(out), "--resamples", "50", "--no-progress")

    assert manifest_verify(out) == []
    cot = [c for name, items in _conversations(out).items() if name.endswith("_cot") for c in items]
    assert len(cot) == 4
    for conversation in cot:
        parsed = parse_cot_answer(one_of_each_schema, conversation["messages"][1]["content"])
        assert 1.0 <= parsed["final_score"] <= 10.0 and "appeal" in parsed["values"]
    scores = read_csv(out / "scores.csv")
    assert all(json.loads(row["notes_answers"]) in ([], ["A note"]) for row in scores)
