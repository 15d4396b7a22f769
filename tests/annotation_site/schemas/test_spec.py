"""Annotation schemas: parsing the schema JSON and validating rater labels against it.

Run without Django: ``python -m pytest -p no:django tests/annotation_site/schemas/test_spec.py``.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation_site.schemas.spec import (
    CleanedLabels,
    FieldSpec,
    LabelError,
    SchemaError,
    SchemaSpec,
    load_schema_file,
    parse_schema,
)

REPO = Path(__file__).resolve().parents[3]
REALQA_PATH = REPO / "fixtures" / "realqa_schema.json"
ONE_OF_EACH_PATH = REPO / "tests" / "data" / "one_of_each_schema.json"


@pytest.fixture(scope="module")
def realqa() -> SchemaSpec:
    return load_schema_file(REALQA_PATH)


@pytest.fixture
def one_of_each_data() -> dict:
    return json.loads(ONE_OF_EACH_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def one_of_each(one_of_each_data) -> SchemaSpec:
    return parse_schema(one_of_each_data)


def schema_errors(data) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        parse_schema(data)
    assert caught.value.errors, "a SchemaError must carry at least one message"
    return caught.value.errors


def label_errors(spec: SchemaSpec, raw) -> dict[str, str]:
    with pytest.raises(LabelError) as caught:
        spec.clean_labels(raw)
    return caught.value.errors


def valid_one_of_each_labels() -> dict:
    return {
        "sharpness": "soft",
        "clutter": "cluttered",
        "appeal": {"value": 7, "reason": "nice light"},
        "overall": 6.3,
        "notes": "fine",
    }


# ----------------------------------------------------------------- shipped schema


def test_the_shipped_realqa_schema_parses_with_twelve_fields_at_the_right_levels(realqa):
    assert realqa.name == "RealQA"
    assert len(realqa.fields) == 12
    levels = {level: [f.key for f in fields] for level, fields in realqa.by_level().items()}
    assert levels == {
        "low": ["clarity", "exposure", "saturation"],
        "middle": [
            "subject_background",
            "subject_integrity",
            "subject_clutter",
            "background_clutter",
            "level_shot",
        ],
        "high": ["eye_catching", "composition"],
        "overall": ["quality", "aesthetics"],
    }
    assert list(realqa.by_level()) == ["low", "middle", "high", "overall"]


def test_the_shipped_realqa_schema_cites_the_paper_and_says_the_scales_are_our_reading(realqa):
    assert "2503.06141" in realqa.description
    assert "Next Token Is Enough" in realqa.description
    assert "our reading" in realqa.description


def test_the_shipped_realqa_fields_have_the_kinds_and_scales_we_chose(realqa):
    kinds = {f.key: (f.kind, f.measurement) for f in realqa.fields}
    assert kinds == {
        "clarity": ("ordinal", "ordinal"),
        "exposure": ("ordinal", "ordinal"),
        "saturation": ("ordinal", "ordinal"),
        "subject_background": ("text", None),
        "subject_integrity": ("ordinal", "ordinal"),
        "subject_clutter": ("nominal", "nominal"),
        "background_clutter": ("nominal", "nominal"),
        "level_shot": ("ordinal", "ordinal"),
        "eye_catching": ("integer", "interval"),
        "composition": ("integer", "interval"),
        "quality": ("continuous", "interval"),
        "aesthetics": ("continuous", "interval"),
    }
    assert realqa.field("clarity").choice_values == ("bad", "poor", "fair", "good", "excellent")
    assert realqa.field("exposure").choice_values == (
        "severely_under",
        "under",
        "well",
        "over",
        "severely_over",
    )
    assert realqa.field("saturation").choice_values == ("under", "natural", "over")
    assert realqa.field("subject_background").max_length == 300
    for key in ("eye_catching", "composition"):
        field = realqa.field(key)
        assert (field.min, field.max) == (1, 10)
        assert field.reason is not None and field.reason.required
    for key in ("quality", "aesthetics"):
        field = realqa.field(key)
        assert (field.min, field.max, field.step) == (1.0, 10.0, 0.1)


def test_every_shipped_realqa_field_has_help_text_and_anchor_examples(realqa):
    for field in realqa.fields:
        assert len(field.help) > 80, field.key
        assert field.anchors, field.key
    assert "100%" in realqa.field("clarity").help
    eye = {a.value: a.example for a in realqa.field("eye_catching").anchors}
    assert eye[1] == "a cluttered snapshot nobody would stop for"
    assert eye[10] == "a striking image that holds attention"


def test_the_not_applicable_realqa_choices_lie_off_the_scale(realqa):
    integrity = realqa.field("subject_integrity")
    assert integrity.ordinal_rank("no_subject") is None
    assert [integrity.ordinal_rank(v) for v in ("incomplete", "partial", "complete")] == [0, 1, 2]
    assert "worst (incomplete) to best (complete)" in integrity.help
    level_shot = realqa.field("level_shot")
    assert level_shot.ordinal_rank("no_horizon") is None
    assert level_shot.ordinal_rank("level") == 0
    assert level_shot.ordinal_rank("clearly_tilted") == 2


def test_a_complete_realqa_submission_is_accepted(realqa):
    cleaned = realqa.clean_labels(
        {
            "clarity": "good",
            "exposure": "well",
            "saturation": "natural",
            "subject_background": "  Subject: bed; background: hotel room  ",
            "subject_integrity": "no_subject",
            "subject_clutter": "uncluttered",
            "background_clutter": "cluttered",
            "level_shot": "no_horizon",
            "eye_catching": {"value": 6, "reason": "warm light on the bed"},
            "composition": {"value": 5.0, "reason": "centred, nothing more"},
            "quality": 7.2,
            "aesthetics": 6,
        }
    )
    assert cleaned.values["subject_background"] == "Subject: bed; background: hotel room"
    assert cleaned.values["composition"] == 5 and isinstance(cleaned.values["composition"], int)
    assert cleaned.values["aesthetics"] == 6.0
    assert cleaned.reasons == {"eye_catching": "warm light on the bed", "composition": "centred, nothing more"}
    assert list(cleaned.values) == list(realqa.keys)


def test_importing_the_spec_module_does_not_import_django():
    code = (
        "import sys; import annotation_site.schemas.spec; "
        "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------- parsed objects


def test_the_test_schema_has_one_field_of_each_kind(one_of_each):
    assert sorted(f.kind for f in one_of_each.fields) == sorted(
        ["ordinal", "nominal", "integer", "continuous", "text"]
    )
    assert one_of_each.keys == ("sharpness", "clutter", "appeal", "overall", "notes")


def test_defaults_are_filled_in_when_keys_are_left_out(one_of_each):
    clutter = one_of_each.field("clutter")
    assert clutter.required is True
    assert clutter.help == ""
    assert clutter.anchors == ()
    assert clutter.measurement == "nominal"
    assert clutter.reason is None
    assert one_of_each.field("sharpness").measurement == "ordinal"
    assert one_of_each.field("appeal").measurement == "interval"
    assert one_of_each.field("overall").measurement == "interval"
    assert one_of_each.field("notes").measurement is None
    text_default = parse_schema(
        {"name": "x", "fields": [{"key": "t", "label": "T", "level": "low", "kind": "text"}]}
    )
    assert text_default.field("t").max_length == 2000
    assert text_default.description == ""


def test_field_helpers_tell_choices_from_scores(one_of_each):
    sharpness = one_of_each.field("sharpness")
    assert sharpness.is_choice and not sharpness.is_score
    assert sharpness.choice_values == ("blurry", "soft", "sharp", "cannot_tell")
    assert one_of_each.field("appeal").is_score and not one_of_each.field("appeal").is_choice
    assert one_of_each.field("overall").is_score
    assert not one_of_each.field("notes").is_choice and not one_of_each.field("notes").is_score


def test_ordinal_rank_counts_only_on_scale_choices_and_rejects_unknown_values(one_of_each):
    sharpness = one_of_each.field("sharpness")
    assert [sharpness.ordinal_rank(v) for v in sharpness.choice_values] == [0, 1, 2, None]
    with pytest.raises(ValueError, match="blury"):
        sharpness.ordinal_rank("blury")
    with pytest.raises(ValueError):
        one_of_each.field("appeal").ordinal_rank("1")


def test_asking_for_a_missing_field_suggests_a_close_key(one_of_each):
    with pytest.raises(KeyError, match="did you mean 'sharpness'"):
        one_of_each.field("sharpnes")


def test_to_dict_round_trips_to_an_equal_schema(realqa, one_of_each):
    for spec in (realqa, one_of_each):
        again = parse_schema(spec.to_dict())
        assert again == spec
        assert again.to_dict() == spec.to_dict()
        assert again.digest() == spec.digest()


def test_to_dict_is_plain_json_with_every_default_filled_in(one_of_each):
    data = one_of_each.to_dict()
    json.dumps(data, allow_nan=False)
    clutter = next(f for f in data["fields"] if f["key"] == "clutter")
    assert clutter == {
        "key": "clutter",
        "label": "Clutter",
        "level": "middle",
        "kind": "nominal",
        "measurement": "nominal",
        "required": True,
        "help": "",
        "anchors": [],
        "choices": [
            {"value": "uncluttered", "label": "Uncluttered", "help": "", "not_applicable": False},
            {"value": "cluttered", "label": "Cluttered", "help": "", "not_applicable": False},
        ],
        "reason": None,
    }


def test_the_digest_is_stable_under_key_order_and_whitespace(one_of_each_data):
    spec = parse_schema(one_of_each_data)
    reordered = json.loads(
        json.dumps(
            {
                "fields": [dict(reversed(list(f.items()))) for f in one_of_each_data["fields"]],
                "description": one_of_each_data["description"],
                "name": one_of_each_data["name"],
            },
            indent=7,
        )
    )
    assert parse_schema(reordered).digest() == spec.digest()
    assert len(spec.digest()) == 64 and int(spec.digest(), 16) >= 0


def test_the_digest_ignores_spelling_out_defaults_and_changes_with_content(one_of_each_data):
    spec = parse_schema(one_of_each_data)
    explicit = copy.deepcopy(one_of_each_data)
    explicit["fields"][1].update({"required": True, "help": "", "measurement": "nominal"})
    explicit["fields"][3].update({"min": 1.0, "max": 10.0})
    assert parse_schema(explicit).digest() == spec.digest()
    changed = copy.deepcopy(one_of_each_data)
    changed["fields"][2]["max"] = 20
    assert parse_schema(changed).digest() != spec.digest()


def test_parsed_objects_are_frozen(one_of_each):
    with pytest.raises(AttributeError):
        one_of_each.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        one_of_each.fields[0].key = "other"  # type: ignore[misc]
    hash(one_of_each)


# ----------------------------------------------------------------- schema errors


def minimal(**field) -> dict:
    base = {"key": "f", "label": "F", "level": "low", "kind": "integer", "min": 1, "max": 5}
    base.update(field)
    return {"name": "t", "fields": [base]}


def test_it_names_the_bad_key_when_a_field_kind_is_misspelled(one_of_each_data):
    one_of_each_data["fields"][3]["kind"] = "ordnial"
    errors = schema_errors(one_of_each_data)
    assert any(
        e.startswith("fields[3].kind: 'ordnial' is not one of ordinal, nominal, integer, continuous, text")
        for e in errors
    ), errors


def test_it_suggests_the_right_name_for_an_unknown_field_key(one_of_each_data):
    one_of_each_data["fields"][0]["choises"] = one_of_each_data["fields"][0].pop("choices")
    errors = schema_errors(one_of_each_data)
    assert "fields[0]: unknown key 'choises' (did you mean 'choices'?)" in errors


def test_it_points_at_both_places_of_a_duplicate_field_key(one_of_each_data):
    one_of_each_data["fields"][4]["key"] = "sharpness"
    assert "fields[4].key: duplicate key 'sharpness' (also fields[0])" in schema_errors(one_of_each_data)


def test_it_rejects_a_measurement_that_does_not_suit_the_kind(one_of_each_data):
    one_of_each_data["fields"][1]["measurement"] = "interval"
    assert "fields[1].measurement: 'interval' does not suit a nominal field (use nominal)" in schema_errors(
        one_of_each_data
    )


@pytest.mark.parametrize(
    ("kind_settings", "measurement", "ok"),
    [
        ({"kind": "ordinal", "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}, "nominal", True),
        ({"kind": "ordinal", "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}, "ratio", False),
        ({"kind": "integer", "min": 1, "max": 5}, "ratio", True),
        ({"kind": "integer", "min": 1, "max": 5}, "ordinal", True),
        ({"kind": "integer", "min": 1, "max": 5}, "nominal", False),
        ({"kind": "continuous", "min": 0, "max": 1}, "ratio", True),
        ({"kind": "text"}, "nominal", True),
        ({"kind": "text"}, "ordinal", False),
    ],
)
def test_measurement_levels_are_checked_against_the_kind(kind_settings, measurement, ok):
    field = {"key": "f", "label": "F", "level": "low", "measurement": measurement, **kind_settings}
    data = {"name": "t", "fields": [field]}
    if ok:
        assert parse_schema(data).field("f").measurement == measurement
    else:
        assert any(e.startswith("fields[0].measurement:") and "does not suit" in e for e in schema_errors(data))


def test_it_asks_for_a_non_empty_list_of_fields():
    assert any(e.startswith("fields: must be a non-empty list") for e in schema_errors({"name": "t", "fields": []}))
    assert any(e.startswith("fields: must be a non-empty list") for e in schema_errors({"name": "t"}))
    assert any(
        e.startswith("fields: must be a non-empty list") for e in schema_errors({"name": "t", "fields": {"a": 1}})
    )


def test_it_collects_every_error_instead_of_stopping_at_the_first(one_of_each_data):
    one_of_each_data["name"] = ""
    one_of_each_data["fields"][0]["kind"] = "ordnial"
    one_of_each_data["fields"][1]["choices"] = [{"value": "only", "label": "Only"}]
    one_of_each_data["fields"][2]["min"] = "1"
    one_of_each_data["fields"][3]["step"] = 0.4
    one_of_each_data["fields"][4]["required"] = "yes"
    with pytest.raises(SchemaError) as caught:
        parse_schema(one_of_each_data)
    locations = [e.split(":")[0] for e in caught.value.errors]
    for expected in ("name", "fields[0].kind", "fields[1].choices", "fields[2].min", "fields[3].step", "fields[4].required"):
        assert expected in locations, caught.value.errors
    assert str(caught.value) == "; ".join(caught.value.errors)


@pytest.mark.parametrize(
    ("data", "location"),
    [
        ("not a schema", "schema"),
        ({"name": "t", "fields": ["clarity"]}, "fields[0]"),
        ({"name": "t", "fields": [None]}, "fields[0]"),
        (minimal(min="1"), "fields[0].min"),
        (minimal(min=True), "fields[0].min"),
        (minimal(max=float("nan")), "fields[0].max"),
        (minimal(max=float("inf")), "fields[0].max"),
        (minimal(min=1.5), "fields[0].min"),
        (minimal(min=5, max=5), "fields[0].max"),
        (minimal(required="yes"), "fields[0].required"),
        (minimal(label=3), "fields[0].label"),
        (minimal(label="   "), "fields[0].label"),
        (minimal(key="Clarity"), "fields[0].key"),
        (minimal(key="x" * 65), "fields[0].key"),
        (minimal(key=7), "fields[0].key"),
        (minimal(level="top"), "fields[0].level"),
        (minimal(kind=["integer"]), "fields[0].kind"),
        (minimal(measurement="cardinal"), "fields[0].measurement"),
        (minimal(help=["h"]), "fields[0].help"),
        (minimal(anchors={"value": 1}), "fields[0].anchors"),
        (minimal(anchors=["1"]), "fields[0].anchors[0]"),
        (minimal(anchors=[{"value": 11, "example": "too high"}]), "fields[0].anchors[0].value"),
        (minimal(anchors=[{"value": 1}]), "fields[0].anchors[0].example"),
        (minimal(choices=[{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]), "fields[0].choices"),
        (minimal(step=1), "fields[0].step"),
        (minimal(max_length=10), "fields[0].max_length"),
        (minimal(reason="why?"), "fields[0].reason"),
        (minimal(reason={"label": "Why?", "required": "yes"}), "fields[0].reason.required"),
        (minimal(reason={"lable": "Why?"}), "fields[0].reason"),
        (minimal(reason={"label": "Why?", "max_length": 0}), "fields[0].reason.max_length"),
        (minimal(kind="continuous", min=0, max=1, step=0), "fields[0].step"),
        (minimal(kind="continuous", min=0, max=1, step=-0.1), "fields[0].step"),
        (minimal(kind="continuous", min=1, max=10, step=0.4), "fields[0].step"),
        (minimal(kind="continuous", min=1, max=10, step="0.1"), "fields[0].step"),
        (minimal(kind="text", min=None, max=None, max_length="long"), "fields[0].max_length"),
        (minimal(kind="text", min=None, max=None, reason={"label": "Why?"}), "fields[0].reason"),
        (minimal(kind="ordinal", min=None, max=None), "fields[0].choices"),
        (minimal(kind="ordinal", min=None, max=None, choices="a,b"), "fields[0].choices"),
        (minimal(kind="ordinal", min=None, max=None, choices=[1, 2]), "fields[0].choices[0]"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": 1, "label": "A"}, {"value": "b", "label": "B"}]), "fields[0].choices[0].value"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": "a", "label": "A"}, {"value": "a", "label": "B"}]), "fields[0].choices[1].value"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": "a"}, {"value": "b", "label": "B"}]), "fields[0].choices[0].label"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": "a", "label": "A"}, {"value": "b", "label": "B", "not_applicable": "no"}]), "fields[0].choices[1].not_applicable"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": "a", "label": "A"}, {"value": "b", "label": "B", "not_applicable": True}]), "fields[0].choices"),
        (minimal(kind="ordinal", min=None, max=None, choices=[{"value": "a", "label": "A"}, {"value": "b", "label": "B"}], anchors=[{"value": "c", "example": "x"}]), "fields[0].anchors[0].value"),
        ({"name": "t", "fields": [{"key": "f"}]}, "fields[0].label"),
        ({"name": 5, "fields": []}, "name"),
        ({"name": "t", "description": 5, "fields": []}, "description"),
        ({"name": "t", "feilds": []}, "schema"),
    ],
)
def test_wrong_json_types_give_a_clean_error_naming_the_location(data, location):
    errors = schema_errors(data)
    assert any(e.startswith(location + ":") for e in errors), errors


def test_a_key_that_belongs_to_another_kind_is_named_as_not_allowed():
    assert "fields[0].step: not allowed for an integer field" in schema_errors(minimal(step=1))


def test_a_wrong_type_message_says_what_was_expected_and_what_came():
    errors = schema_errors(minimal(min="1", required="yes"))
    assert "fields[0].min: must be a whole number, not a string ('1')" in errors
    assert "fields[0].required: must be true or false, not 'yes'" in errors


def test_an_explicit_null_for_an_optional_key_means_the_default():
    spec = parse_schema(minimal(help=None, required=None, measurement=None, reason=None, anchors=None))
    field = spec.field("f")
    assert (field.help, field.required, field.measurement, field.reason, field.anchors) == ("", True, "interval", None, ())


def test_a_continuous_step_must_divide_the_range():
    parse_schema(minimal(kind="continuous", min=0, max=1, step=0.05))
    parse_schema(minimal(kind="continuous", min=1, max=10, step=0.1))
    errors = schema_errors(minimal(kind="continuous", min=1, max=10, step=0.4))
    assert any(e.startswith("fields[0].step: (max - min) / step must be a whole number") for e in errors)


# ----------------------------------------------------------------- schema files


def test_invalid_json_in_a_schema_file_is_reported_with_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "t",\n  "fields": [\n    {"key": "a"}\n    {"key": "b"}\n  ]\n}\n')
    with pytest.raises(SchemaError) as caught:
        load_schema_file(path)
    assert str(caught.value) == f"{path}: not valid JSON: Expecting ',' delimiter at line 5 column 5"


def test_a_missing_schema_file_is_reported_clearly(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(SchemaError, match="file not found") as caught:
        load_schema_file(path)
    assert str(path) in str(caught.value)


def test_schema_file_errors_are_prefixed_with_the_file_name(tmp_path, one_of_each_data):
    one_of_each_data["fields"][3]["kind"] = "ordnial"
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(one_of_each_data))
    with pytest.raises(SchemaError) as caught:
        load_schema_file(str(path))
    assert any(e.startswith(f"{path}: fields[3].kind: 'ordnial'") for e in caught.value.errors)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "t", "fields": [{"key": "f", "label": "F", "level": "low", "kind": "integer", "min": NaN, "max": 5}]}',
        '{"name": "t", "name": "u", "fields": []}',
    ],
)
def test_schema_files_with_nan_or_repeated_keys_are_rejected(tmp_path, text):
    path = tmp_path / "schema.json"
    path.write_text(text)
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_schema_file(path)


# ---------------------------------------------------------------- label validation


def test_a_valid_submission_of_each_kind_is_cleaned(one_of_each):
    cleaned = one_of_each.clean_labels(valid_one_of_each_labels())
    assert isinstance(cleaned, CleanedLabels)
    assert cleaned.values == {"sharpness": "soft", "clutter": "cluttered", "appeal": 7, "overall": 6.3, "notes": "fine"}
    assert cleaned.reasons == {"appeal": "nice light"}


def test_a_body_that_is_not_an_object_is_rejected_as_a_whole(one_of_each):
    assert set(label_errors(one_of_each, ["soft"])) == {"__all__"}
    assert set(label_errors(one_of_each, None)) == {"__all__"}


def test_every_required_field_must_be_answered(one_of_each):
    errors = label_errors(one_of_each, {})
    assert errors == {key: "this field is required" for key in ("sharpness", "clutter", "appeal", "overall")}
    labels = valid_one_of_each_labels()
    labels["clutter"] = None
    assert label_errors(one_of_each, labels) == {"clutter": "this field is required"}


def test_optional_fields_can_be_left_out_null_or_blank(one_of_each):
    for notes in ("missing", None, "   "):
        labels = valid_one_of_each_labels()
        if notes == "missing":
            del labels["notes"]
        else:
            labels["notes"] = notes
        assert "notes" not in one_of_each.clean_labels(labels).values


def test_an_unknown_field_is_rejected_with_a_suggestion(one_of_each):
    labels = valid_one_of_each_labels()
    labels["sharpnes"] = "soft"
    labels["zzz"] = 1
    errors = label_errors(one_of_each, labels)
    assert errors["sharpnes"] == "unknown field (did you mean 'sharpness'?)"
    assert errors["zzz"] == "unknown field"


def test_a_choice_must_be_one_of_the_listed_values(one_of_each):
    for bad in ("Soft", "blury", 1, True, ["soft"], {"value": ["soft"]}):
        labels = valid_one_of_each_labels()
        labels["sharpness"] = bad
        message = label_errors(one_of_each, labels)["sharpness"]
        assert message.startswith("must be one of blurry, soft, sharp, cannot_tell"), message


def test_a_not_applicable_choice_is_accepted_and_has_no_rank(one_of_each):
    labels = valid_one_of_each_labels()
    labels["sharpness"] = "cannot_tell"
    assert one_of_each.clean_labels(labels).values["sharpness"] == "cannot_tell"
    assert one_of_each.field("sharpness").ordinal_rank("cannot_tell") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (10, 10), (7.0, 7)],
)
def test_an_integer_score_accepts_whole_numbers_in_range(one_of_each, value, expected):
    labels = valid_one_of_each_labels()
    labels["appeal"] = {"value": value, "reason": "ok"}
    cleaned = one_of_each.clean_labels(labels).values["appeal"]
    assert cleaned == expected and type(cleaned) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "must be a whole number (got true)"),
        ("7", "must be a whole number (got '7')"),
        (7.5, "must be a whole number (got 7.5)"),
        (float("nan"), "must be a whole number (got NaN)"),
        (float("inf"), "must be a whole number (got Infinity)"),
        (0, "must be between 1 and 10 (got 0)"),
        (11, "must be between 1 and 10 (got 11)"),
        (10**100, "must be between 1 and 10"),
    ],
)
def test_an_integer_score_rejects_bools_strings_fractions_and_out_of_range(one_of_each, value, message):
    labels = valid_one_of_each_labels()
    labels["appeal"] = {"value": value, "reason": "ok"}
    assert label_errors(one_of_each, labels)["appeal"].startswith(message)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6.3, 6.3), (6.30000001, 6.3), (1, 1.0), (10.0, 10.0), (5.999999999, 6.0), (0.1 * 3 + 1, 1.3)],
)
def test_a_continuous_score_is_snapped_to_the_step(one_of_each, value, expected):
    labels = valid_one_of_each_labels()
    labels["overall"] = value
    cleaned = one_of_each.clean_labels(labels).values["overall"]
    assert cleaned == expected and type(cleaned) is float
    assert repr(cleaned) == repr(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (6.35, "must be a multiple of 0.1 from 1"),
        (True, "must be a number (got true)"),
        (False, "must be a number (got false)"),
        ("6.3", "must be a number (got '6.3')"),
        (float("nan"), "must be a finite number (got NaN)"),
        (float("-inf"), "must be a finite number (got -Infinity)"),
        (0.9, "must be between 1 and 10 (got 0.9)"),
        (10.1, "must be between 1 and 10 (got 10.1)"),
        ([6.3], "must be a number (got a list)"),
    ],
)
def test_a_continuous_score_rejects_off_grid_values_bools_nan_inf_and_strings(one_of_each, value, message):
    labels = valid_one_of_each_labels()
    labels["overall"] = value
    assert label_errors(one_of_each, labels)["overall"].startswith(message)


def test_text_is_stripped_and_limited_to_its_max_length(one_of_each):
    labels = valid_one_of_each_labels()
    labels["notes"] = "  a" + " " * 30
    assert one_of_each.clean_labels(labels).values["notes"] == "a"
    labels["notes"] = "x" * 21
    assert label_errors(one_of_each, labels) == {"notes": "must be at most 20 characters (got 21)"}
    labels["notes"] = 5
    assert label_errors(one_of_each, labels)["notes"].startswith("must be text")


def test_a_required_reason_must_be_sent_in_the_object_form(one_of_each):
    labels = valid_one_of_each_labels()
    labels["appeal"] = 7
    assert "a reason is required" in label_errors(one_of_each, labels)["appeal"]
    labels["appeal"] = {"value": 7, "reason": "   "}
    assert label_errors(one_of_each, labels) == {"appeal": "a reason is required"}
    labels["appeal"] = {"value": 7}
    assert label_errors(one_of_each, labels) == {"appeal": "a reason is required"}


def test_a_reason_is_stripped_checked_for_type_and_length(one_of_each):
    labels = valid_one_of_each_labels()
    labels["appeal"] = {"value": 7, "reason": "  strong colour \n"}
    assert one_of_each.clean_labels(labels).reasons == {"appeal": "strong colour"}
    labels["appeal"] = {"value": 7, "reason": 12}
    assert label_errors(one_of_each, labels)["appeal"].startswith("the reason must be text")
    labels["appeal"] = {"value": 7, "reason": "x" * 51}
    assert label_errors(one_of_each, labels)["appeal"] == "the reason must be at most 50 characters (got 51)"


def test_a_reason_for_a_field_without_one_is_rejected(one_of_each):
    labels = valid_one_of_each_labels()
    labels["clutter"] = {"value": "cluttered", "reason": "lots of stuff"}
    assert label_errors(one_of_each, labels) == {"clutter": "this field takes no reason"}
    labels["clutter"] = {"value": "cluttered"}
    assert one_of_each.clean_labels(labels).values["clutter"] == "cluttered"


def test_an_unexpected_key_in_the_object_form_is_rejected(one_of_each):
    labels = valid_one_of_each_labels()
    labels["appeal"] = {"value": 7, "reasn": "x"}
    message = label_errors(one_of_each, labels)["appeal"]
    assert "unexpected key 'reasn'" in message and "did you mean 'reason'" in message


def test_a_bad_value_and_a_missing_reason_are_both_reported(one_of_each):
    labels = valid_one_of_each_labels()
    labels["appeal"] = {"value": 11}
    message = label_errors(one_of_each, labels)["appeal"]
    assert "must be between 1 and 10" in message and "a reason is required" in message


def test_all_field_errors_are_collected(one_of_each):
    errors = label_errors(
        one_of_each,
        {"sharpness": "x", "clutter": 1, "appeal": True, "overall": "5", "notes": 3, "extra": 1},
    )
    assert set(errors) == {"sharpness", "clutter", "appeal", "overall", "notes", "extra"}
    with pytest.raises(LabelError) as caught:
        one_of_each.clean_labels({"extra": 1, **valid_one_of_each_labels()})
    assert str(caught.value) == "extra: unknown field"


def test_label_errors_are_value_errors_and_schema_errors_too():
    assert issubclass(LabelError, ValueError)
    assert issubclass(SchemaError, ValueError)


# ------------------------------------------------------------------- properties

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_like = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELD_KEYS = ["key", "label", "level", "kind", "measurement", "required", "help", "anchors",
              "choices", "min", "max", "step", "max_length", "reason"]


@st.composite
def mutated_schemas(draw):
    """The test schema with a few keys set to arbitrary JSON-like values: near-valid data."""
    data = json.loads(ONE_OF_EACH_PATH.read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        field = data["fields"][draw(st.integers(0, len(data["fields"]) - 1))]
        target = draw(st.sampled_from(["field", "choice", "reason", "anchor"]))
        value = draw(json_like)
        choices = [c for c in field.get("choices") or [] if isinstance(c, dict)] if isinstance(field.get("choices"), list) else []
        anchors = [a for a in field.get("anchors") or [] if isinstance(a, dict)] if isinstance(field.get("anchors"), list) else []
        if target == "choice" and choices:
            choice = draw(st.sampled_from(choices))
            choice[draw(st.sampled_from(["value", "label", "help", "not_applicable", "extra"]))] = value
        elif target == "reason" and isinstance(field.get("reason"), dict):
            field["reason"][draw(st.sampled_from(["label", "required", "max_length"]))] = value
        elif target == "anchor" and anchors:
            draw(st.sampled_from(anchors))[draw(st.sampled_from(["value", "example"]))] = value
        else:
            field[draw(st.sampled_from(FIELD_KEYS))] = value
    return data


def assert_only_schema_error(data) -> None:
    try:
        spec = parse_schema(data)
    except SchemaError as exc:
        assert exc.errors and all(isinstance(e, str) for e in exc.errors)
    else:
        assert parse_schema(spec.to_dict()) == spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_parse_schema_raises_nothing_but_schema_error_on_arbitrary_data(data):
    assert_only_schema_error(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_schemas())
def test_parse_schema_raises_nothing_but_schema_error_on_near_valid_schemas(data):
    assert_only_schema_error(data)


_LABEL_SPEC = parse_schema(json.loads(ONE_OF_EACH_PATH.read_text(encoding="utf-8")))
label_entries = json_like | st.fixed_dictionaries(
    {"value": json_like}, optional={"reason": json_like, "other": json_like}
)


@settings(max_examples=300, deadline=None)
@given(
    json_like
    | st.dictionaries(
        st.sampled_from(list(_LABEL_SPEC.keys)) | st.text(max_size=10), label_entries, max_size=7
    )
)
def test_clean_labels_raises_nothing_but_label_error_on_arbitrary_input(raw):
    try:
        cleaned = _LABEL_SPEC.clean_labels(raw)
    except LabelError as exc:
        assert exc.errors and all(isinstance(k, str) and isinstance(v, str) for k, v in exc.errors.items())
    else:
        assert set(cleaned.values) <= set(_LABEL_SPEC.keys)
        for key, value in cleaned.values.items():
            field: FieldSpec = _LABEL_SPEC.field(key)
            if field.is_score:
                assert not isinstance(value, bool) and math.isfinite(value)
                assert field.min <= value <= field.max
