"""`python -m realqa_model train|eval|score` end to end on a folder of photos, and its errors."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from realqa_model.cli import main
from tests.realqa_model.synthetic import distorted_photos

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "fixtures" / "realqa_schema.json"
TRAIN, HELD_OUT = 90, 30
SMALL = ["--epochs", "80", "--ensemble", "3", "--hidden", "16"]


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """photos/train/*.jpg and photos/held/*.jpg, long-form training labels, wide-form held-out labels."""
    root = tmp_path_factory.mktemp("cli")
    samples = distorted_photos(TRAIN + HELD_OUT, seed=5)
    long_rows: list[list[object]] = [["image", "field", "value"]]
    wide_rows: list[list[object]] = [["image", "clarity", "exposure", "quality", "subject_background"]]
    for index, sample in enumerate(samples):
        part = "train" if index < TRAIN else "held"
        (root / "photos" / part).mkdir(parents=True, exist_ok=True)
        name = f"{part}/p{index:03d}.jpg"
        (root / "photos" / name).write_bytes(sample.jpeg)
        if part == "train":
            long_rows += [[name, key, sample.labels[key]] for key in ("clarity", "exposure", "quality")]
        else:
            labels = sample.labels
            wide_rows.append([name, labels["clarity"], labels["exposure"], labels["quality"], "Subject: shapes"])
    write_csv(root / "train.csv", long_rows)
    write_csv(root / "held.csv", wide_rows)
    return root


@pytest.fixture(scope="module")
def model(project) -> Path:
    out = io.StringIO()
    folder = project / "model"
    status = main(
        [
            "train",
            "--schema",
            str(SCHEMA),
            "--images",
            str(project / "photos"),
            "--labels",
            str(project / "train.csv"),
            "--out",
            str(folder),
            *SMALL,
        ],
        out=out,
    )
    assert status == 0
    assert "saved cpu-multihead:" in out.getvalue()
    return folder


def run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(args, out=out), out.getvalue()


def test_train_writes_a_checkpoint_and_says_which_fields_it_learnt(model) -> None:
    config = json.loads((model / "config.json").read_text())

    assert sorted(p.name for p in model.iterdir()) == ["config.json", "model.safetensors"]
    assert config["training"]["n_images"] == TRAIN
    assert config["training"]["fields"]["quality"]["n"] == TRAIN  # the 30 unlabelled photos are left out
    assert config["training"]["fields"]["quality"]["predicted"] is True
    assert config["training"]["fields"]["composition"]["predicted"] is False


def test_eval_prints_per_field_figures_as_a_table_and_as_json(project, model) -> None:
    arguments = [
        "eval",
        "--model",
        str(model),
        "--images",
        str(project / "photos"),
        "--labels",
        str(project / "held.csv"),
    ]

    status, table = run(arguments)
    json_status, text = run([*arguments, "--json"])

    assert status == json_status == 0
    metrics = json.loads(text)
    assert metrics["n_images"] == HELD_OUT
    assert metrics["fields"]["quality"]["n"] == HELD_OUT and metrics["fields"]["quality"]["srcc"] > 0.7
    assert metrics["fields"]["clarity"]["accuracy"] > 0.6
    assert "subject_background" not in metrics["fields"]  # text: never predicted
    assert metrics["model_version"] in table and "quality" in table and "SRCC" in table


def test_score_writes_one_json_line_per_image(project, model) -> None:
    target = project / "predictions.jsonl"

    status, _ = run(
        [
            "score",
            "--model",
            str(model),
            "--images",
            str(project / "photos" / "held"),
            "--out",
            str(target),
            "--batch-size",
            "7",
        ]
    )

    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert status == 0 and len(lines) == HELD_OUT
    version = json.loads((model / "config.json").read_text())["version"]
    assert {line["model_version"] for line in lines} == {version}
    assert lines[0]["image"] == f"p{TRAIN:03d}.jpg"  # named relative to the folder given
    assert set(lines[0]["fields"]) == {"clarity", "exposure", "quality"}
    assert set(lines[0]["fields"]["quality"]) == {"value", "confidence", "uncertainty"}
    assert 0 <= lines[0]["uncertainty"] <= 1


def test_score_reads_an_image_list_and_reports_an_unreadable_file_but_scores_the_rest(
    project, model, tmp_path, capsys
) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    listing = write_csv(
        tmp_path / "list.csv", [["image"], [str(project / "photos" / "held" / "p100.jpg")], ["broken.jpg"]]
    )

    status, text = run(["score", "--model", str(model), "--images", str(listing)])

    lines = [json.loads(line) for line in text.splitlines()]
    assert status == 1
    assert "fields" in lines[0] and "broken.jpg" in lines[1]["error"]
    assert "broken.jpg" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["image", "field", "value"], ["train/p000.jpg", "clarity", "great"]],
            r"labels\.csv:2: field 'clarity': 'great' is not one of bad",
        ),
        (
            [["image", "field", "value"], ["train/p000.jpg", "quality", "high"]],
            r"labels\.csv:2: field 'quality': 'high' is not a number",
        ),
        (
            [["image", "field", "value"], ["train/p000.jpg", "quality", "12"]],
            r"labels\.csv:2: field 'quality': 12.0 is outside 1..10",
        ),
        (
            [["image", "field", "value"], ["train/p000.jpg", "sharpness", "good"]],
            r"labels\.csv:2: field 'sharpness' is not in the schema",
        ),
        (
            [["image", "field", "value"], ["train/p000.jpg", "clarity", "good"], ["train/p000.jpg", "clarity", "bad"]],
            r"labels\.csv:3: a second value .* \(first on line 2\)",
        ),
        (
            [["image", "field", "value"], ["nowhere.jpg", "clarity", "good"]],
            r"labels\.csv:2: image 'nowhere.jpg' is not among the 120 images",
        ),
        (
            [["image", "clarity", "colour"], ["train/p000.jpg", "good", "red"]],
            r"labels\.csv:1: column 'colour' is not a field",
        ),
        ([["photo", "clarity"]], r"labels\.csv:1: no 'image' column"),
    ],
    ids=[
        "choice",
        "not-a-number",
        "out-of-range",
        "unknown-field",
        "duplicate",
        "unknown-image",
        "unknown-column",
        "no-image-column",
    ],
)
def test_train_refuses_bad_labels_naming_the_file_line_and_field(project, tmp_path, capsys, rows, message) -> None:
    labels = write_csv(tmp_path / "labels.csv", rows)

    status, _ = run(
        [
            "train",
            "--schema",
            str(SCHEMA),
            "--images",
            str(project / "photos"),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "m"),
        ]
    )

    assert status == 1
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_train_refuses_a_broken_schema_and_an_occupied_output_folder(project, model, tmp_path, capsys) -> None:
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text('{"fields": [{"key": "q", "kind": "ordnial"}]}')
    base = ["train", "--images", str(project / "photos"), "--labels", str(project / "train.csv")]

    assert run([*base, "--schema", str(bad_schema), "--out", str(tmp_path / "m")])[0] == 1
    assert "schema.json: schema field 'q'.kind: 'ordnial' is not one of" in capsys.readouterr().err
    assert run([*base, "--schema", str(SCHEMA), "--out", str(model)])[0] == 1
    assert "exists and is not an empty folder (use --force" in capsys.readouterr().err
    assert run([*base, "--schema", str(SCHEMA), "--out", str(tmp_path / "m"), "--epochs", "0"])[0] == 1
    assert "epochs must be an int >= 1" in capsys.readouterr().err


def test_python_dash_m_exits_non_zero_with_a_message_for_a_missing_model(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realqa_model",
            "score",
            "--model",
            str(tmp_path / "nowhere"),
            "--images",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert "nowhere" in result.stderr and "config.json" in result.stderr and "Traceback" not in result.stderr
