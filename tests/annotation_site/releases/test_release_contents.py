from __future__ import annotations

import json
import math
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from annotation_site.releases.builder import manifest_verify
from annotation_site.releases.models import Release
from annotation_site.releases.services import release_build, release_create
from annotation_site.raters.models import RaterProfile
from tests.annotation_site.releases.helpers import read_csv, read_json, small_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="staff", password="pw-123456", is_staff=True)


@pytest.fixture
def built(project, staff, tmp_path):  # type: ignore[no-untyped-def]
    """The small project released without extra writers (as annotation_site alone can)."""
    data = small_project(project, staff)
    release = release_create(project=project, options={"resamples": 200}, output_dir=tmp_path / "release")
    release = release_build(release_id=release.pk)
    return release, Path(release.output_dir), data


def _by_sha(rows: list[dict]) -> dict[str, dict]:
    return {row["image_sha256"]: row for row in rows}


def test_scores_csv_holds_the_hand_computed_mos_sd_and_student_t_interval(built):
    release, out, data = built
    a, b, c, d, _ = data["images"]
    rows = _by_sha(read_csv(out / "scores.csv"))

    row = rows[a.sha256]
    assert (row["quality_n"], row["quality_mos"], row["quality_sd"]) == ("3", "7.00", "1.0000")
    assert row["quality_ci95"] == "2.4841"  # t(0.975, 2) = 4.3027 times 1 / sqrt(3)
    assert (row["quality_ci_low"], row["quality_ci_high"]) == ("4.5159", "9.4841")
    assert (rows[b.sha256]["quality_mos"], rows[b.sha256]["quality_sd"], rows[b.sha256]["quality_ci95"]) == ("5.00", "0.0000", "0.0000")
    assert (rows[c.sha256]["quality_n"], rows[c.sha256]["quality_mos"], rows[c.sha256]["quality_sd"]) == ("1", "9.00", "")
    assert rows[d.sha256]["quality_mos"] == "3.00"  # the excluded rater's 1.0 is not in it
    # choice fields: the majority, its share and the distribution
    assert (row["clarity_majority"], row["clarity_share"]) == ("good", "0.6667")
    assert (row["clarity_count_good"], row["clarity_count_poor"], row["clarity_count_bad"]) == ("2", "1", "0")
    assert rows[b.sha256]["clarity_majority"] == "fair"  # a tie goes to the choice listed first
    # text fields: normalised answers, most frequent first, case-insensitive duplicates merged
    assert json.loads(row["subject_background_answers"]) == [
        "Subject: a cat; background: a sofa",
        "Subject: a dog; background: grass",
    ]
    assert {r["split"] for r in rows.values()} <= {"train", "validation", "test"}
    assert release.counts["images"] == 4 and release.counts["labels"] == 9 and release.counts["raters"] == 3


def test_an_excluded_rater_and_gold_images_are_left_out_of_every_file(built):
    release, out, data = built
    excluded = RaterProfile.objects.get(user=data["raters"][3]).pseudonym
    gold = data["images"][4]
    for name in ("scores.csv", "ratings.csv", "raters.csv", "agreement.json", "datasheet.md", "release.json"):
        text = (out / name).read_text()
        assert excluded not in text, name
        assert gold.sha256 not in text, name
    ratings = read_csv(out / "ratings.csv")
    assert len(ratings) == 9 and "spam" not in (out / "ratings.csv").read_text()
    assert release.counts["excluded_raters"] == 1 and release.counts["excluded_raters_labels"] == 4
    assert release.counts["gold_labels_left_out"] == 4
    raters = read_csv(out / "raters.csv")
    assert sorted(r["labels"] for r in raters) == ["2", "3", "4"]
    # r3 rated A 8 (MOS 7) and D 4 (MOS 3): residuals 1 and 1, SD 0; r1: -1, 0, 0, -1 -> SD 0.5774
    by_labels = {r["labels"]: r for r in raters}
    assert (by_labels["2"]["quality_residual_sd"], by_labels["4"]["quality_residual_sd"]) == ("0.0000", "0.5774")


def test_ratings_name_raters_by_pseudonym_only(built):
    _, out, data = built
    ratings = read_csv(out / "ratings.csv")
    pseudonyms = {RaterProfile.objects.get(user=r).pseudonym for r in data["raters"][:3]}
    assert {row["rater"] for row in ratings} == pseudonyms
    text = (out / "ratings.csv").read_text()
    assert not any(f"r{i}," in text or text.count(f",r{i}\n") for i in range(1, 5))
    a = data["images"][0]
    reasons = sorted(row["eye_catching_reason"] for row in ratings if row["image_sha256"] == a.sha256)
    assert reasons == ["eye_catching reason for 6", "eye_catching reason for 7", "eye_catching reason for 9"]


def test_agreement_matches_the_krippendorff_package_and_says_undefined_without_disagreement(built):
    _, out, data = built
    agreement = {f["key"]: f for f in read_json(out / "agreement.json")["fields"]}
    quality = agreement["quality"]
    matrix = np.array(  # raters r1..r3 x images A..D
        [[6.0, 5.0, 9.0, 2.0], [7.0, 5.0, np.nan, 3.0], [8.0, np.nan, np.nan, 4.0]]
    )
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="interval")
    assert quality["measurement"] == "interval" and abs(quality["alpha"] - expected) < 1e-9
    assert quality["alpha_ci95"][0] <= quality["alpha_ci95"][1]
    assert (quality["units"], quality["raters"], quality["pairable_values"]) == (3, 3, 8)
    assert agreement["saturation"]["alpha"] is None and agreement["saturation"]["alpha_status"] == "undefined"
    assert agreement["clarity"]["measurement"] == "ordinal" and agreement["clarity"]["alpha"] is not None
    assert agreement["subject_background"]["alpha_status"] == "not computed"
    assert "| `saturation` | ordinal | undefined |" in (out / "datasheet.md").read_text()
    # three raters on four images: the MLE has no interior maximum; the release says so and repeats the MOS
    assert quality["mle"]["fitted"] is False and "MLE not estimable" in quality["mle"]["note"]
    rows = read_csv(out / "scores.csv")
    assert all(r["quality_mle"] == r["quality_mos"] for r in rows)


def test_every_file_is_in_the_manifest_and_its_checksum_verifies(built):
    release, out, _ = built
    listed = [line.split("  ", 1)[1] for line in (out / "MANIFEST.sha256").read_text().splitlines()]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "MANIFEST.sha256")
    assert listed == on_disk
    assert any(name.startswith("images/") for name in listed)
    assert manifest_verify(out) == []
    (out / "scores.csv").write_text("tampered\n")
    assert manifest_verify(out) == ["scores.csv: checksum differs"]
    assert len(release.manifest_sha256) == 64


def test_a_release_built_without_the_conversation_writer_says_it_has_no_conversations(built):
    release, out, _ = built
    assert release.conversations_included is False
    metadata = read_json(out / "release.json")
    assert metadata["conversations"]["included"] is False
    assert "Training conversations: **not included**" in (out / "datasheet.md").read_text()
    assert not (out / "conversations").exists()


def test_release_metadata_plots_and_pyiqa_meta_info(built):
    release, out, data = built
    metadata = read_json(out / "release.json")
    assert metadata["release"] == "realqa-test-v1" == release.release_id
    assert metadata["schema_version"] == 1 and metadata["counts"]["labels"] == 9
    for plot in ("score_histograms", "alpha", "rater_bias_inconsistency"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = read_csv(out / "pyiqa" / "meta_info_realqa-test.csv")
    assert list(meta[0]) == ["img_name", "mos", "std", "official_split", "aesthetics_mos"]
    assert {row["official_split"] for row in meta} <= {"train", "val", "test"}
    a = data["images"][0]
    [row] = [r for r in meta if a.sha256 in r["img_name"]]
    assert row["mos"] == "7.0000" and (out / row["img_name"]).is_file()
    assert (out / "schema.json").is_file() and (out / "datasheet.md").read_text().startswith("# Datasheet: realqa-test-v1")


def test_a_done_release_never_changes_and_the_next_one_is_a_new_version(built, project, tmp_path):
    release, out, _ = built
    before = (out / "MANIFEST.sha256").read_bytes()
    again = release_build(release_id=release.pk)
    assert again.status == Release.Status.DONE and (out / "MANIFEST.sha256").read_bytes() == before
    second = release_create(project=project, options={"resamples": 50}, output_dir=tmp_path / "second")
    assert second.version == 2 and second.release_id == "realqa-test-v2"


def test_parquet_files_load_with_hugging_face_datasets_offline(built, monkeypatch, tmp_path):
    _, out, data = built
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    files = {path.stem: str(path) for path in (out / "data").glob("*.parquet")}  # four images leave a split empty
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert sum(len(loaded[name]) for name in files) == 4
    rows = [row for name in files for row in loaded[name]]
    a = data["images"][0]
    [row] = [r for r in rows if r["image_sha256"] == a.sha256]
    assert row["quality_mos"] == 7.0 and math.isclose(row["quality_ci95"], 2.4841)
    assert row["subject_background_answers"][0] == "Subject: a cat; background: a sofa"
    ratings = datasets.load_dataset("parquet", data_files=str(out / "ratings.parquet"), cache_dir=str(tmp_path / "cache"))
    assert len(ratings["train"]) == 9


def test_a_schema_without_score_fields_still_releases_unstratified(tmp_path):
    from annotation_site.labeling.services import annotation_create
    from annotation_site.projects.services import project_create
    from annotation_site.raters.services import rater_create
    from tests.conftest import make_images

    schema = {
        "name": "Choices only",
        "fields": [
            {"key": "sharpness", "label": "Sharpness", "level": "low", "kind": "ordinal",
             "choices": [{"value": "blurry", "label": "Blurry"}, {"value": "sharp", "label": "Sharp"}]},
            {"key": "clutter", "label": "Clutter", "level": "middle", "kind": "nominal",
             "choices": [{"value": "no", "label": "No"}, {"value": "yes", "label": "Yes"}]},
        ],
    }
    project = project_create(slug="choices", schema_definition=schema)
    images = make_images(project, 3)
    for n, name in enumerate(("a", "b")):
        rater = rater_create(username=name, password="pw-123456")
        for image in images:
            annotation_create(image=image, rater=rater, labels={"sharpness": "sharp" if n else "blurry", "clutter": "no"})
    release = release_build(release_id=release_create(project=project, output_dir=tmp_path / "r").pk)

    out = Path(release.output_dir)
    assert release.status == Release.Status.DONE and release.options["score_field"] == ""
    assert not (out / "pyiqa").exists() and manifest_verify(out) == []
    assert "Splits are not stratified" in (out / "datasheet.md").read_text()
    agreement = {f["key"]: f for f in read_json(out / "agreement.json")["fields"]}
    # Two raters who disagree on every image: 1 - (n - 1) D_o / D_e = 1 - 5 * 6 / 18
    assert agreement["sharpness"]["alpha"] == pytest.approx(-2 / 3)
    assert agreement["clutter"]["alpha_status"] == "undefined"


def test_a_small_release_built_in_one_process_equals_one_built_with_worker_processes(project, staff, tmp_path, monkeypatch):
    from annotation_site.releases import builder

    small_project(project, staff)
    here = release_build(release_id=release_create(project=project, options={"resamples": 200}, output_dir=tmp_path / "here").pk)
    monkeypatch.setattr(builder, "IN_PROCESS_MAX_LABELS", -1)  # as a release too large to build in one process
    workers = release_build(release_id=release_create(project=project, options={"resamples": 200}, output_dir=tmp_path / "workers").pk)

    a, b = Path(here.output_dir), Path(workers.output_dir)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert any(name.startswith("plots/") for name in files)
    for name in ["scores.csv", "raters.csv", "ratings.csv", *[f for f in files if f.startswith("plots/")]]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    agreement_here, agreement_workers = read_json(a / "agreement.json"), read_json(b / "agreement.json")
    assert (agreement_here.pop("release"), agreement_workers.pop("release")) == (here.release_id, workers.release_id)
    assert agreement_here == agreement_workers
