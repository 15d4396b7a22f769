"""Questions, answers and the chain-of-thought template built from the shipped RealQA schema."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realqa_model.numeric import format_score, parse_score
from realqa_model.prompts import (
    answer_text,
    cot_answer,
    cot_question,
    field_question,
    parse_cot_answer,
    prepare_schema,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "fixtures" / "realqa_schema.json").read_text())
ONE_OF_EACH: dict[str, Any] = json.loads((REPO / "tests" / "data" / "one_of_each_schema.json").read_text())
FIELDS = {field["key"]: field for field in SCHEMA["fields"]}

VALUES: dict[str, Any] = {
    "eye_catching": 8,
    "composition": 7,
    "subject_background": "Subject: bed; background: hotel room",
    "subject_integrity": "partial",
    "subject_clutter": "uncluttered",
    "background_clutter": "cluttered",
    "level_shot": "level",
    "clarity": "good",
    "exposure": "well",
    "saturation": "natural",
    "quality": 6.2,
    "aesthetics": 6.5,
}
REASONS = {
    "eye_catching": "A plain bed under flat light; nothing pulls the eye.",
    "composition": "The bed is centred,\nbut the frame cuts the headboard.",
}
EXPECTED_COT = (
    "1.1 Reason for Eye-Catching Score: A plain bed under flat light; nothing pulls the eye, "
    "1.2 Eye-Catching Score: 8, "
    "1.3 Reason for Composition Score: The bed is centred, but the frame cuts the headboard, "
    "1.4 Composition Score: 7, "
    "2.1 Subject and Background: Subject: bed; background: hotel room, "
    "2.2 Subject Integrity: partially complete (slightly cut off or slightly obscured), "
    "2.3 Subject Clutter: uncluttered, "
    "2.4 Background Clutter: cluttered, "
    "2.5 Level Shot: level, "
    "3.1 Image Clarity: good, "
    "3.2 Exposure: well exposed, "
    "3.3 Saturation: natural, "
    "4.1 Overall Quality Score: 6.20. "
    "The final score is <6.59>."
)


# --------------------------------------------------------------------------- questions


def test_every_field_of_the_shipped_schema_gets_one_question() -> None:
    assert [field_question(field) for field in SCHEMA["fields"]] == [
        "<image>How would you rate the image clarity of this image? "
        "Answer with one of: bad, poor, fair, good, excellent.",
        "<image>How would you rate the exposure of this image? Answer with one of: severely underexposed, "
        "underexposed, well exposed, overexposed, severely overexposed.",
        "<image>How would you rate the saturation of this image? "
        "Answer with one of: undersaturated, natural, oversaturated.",
        "<image>Describe the subject and background of this image in a few words.",
        "<image>How would you rate the subject integrity of this image? Answer with one of: incomplete (severely cut "
        "off or obscured), partially complete (slightly cut off or slightly obscured), complete, no clear subject.",
        "<image>How would you describe the subject clutter of this image? Answer with one of: uncluttered, cluttered.",
        "<image>How would you describe the background clutter of this image? "
        "Answer with one of: uncluttered, cluttered.",
        "<image>How would you rate the level shot of this image? Answer with one of: level, slightly tilted, "
        "clearly tilted, no horizon or vertical reference.",
        "<image>What is the eye-catching score of this image? Answer with a score from 1 to 10.",
        "<image>What is the composition score of this image? Answer with a score from 1 to 10.",
        "<image>What is the overall quality score of this image? "
        "Answer with a score from 1 to 10 with two decimals.",
        "<image>What is the overall aesthetics score of this image? "
        "Answer with a score from 1 to 10 with two decimals.",
    ]


def test_asking_for_a_reason_adds_the_request_to_the_question() -> None:
    assert field_question(FIELDS["composition"], with_reason=True) == (
        "<image>What is the composition score of this image? Answer with a score from 1 to 10. "
        "Give a short reason first, then your answer."
    )
    with pytest.raises(ValueError, match="a text field takes no reason"):
        field_question(FIELDS["subject_background"], with_reason=True)


def test_choice_labels_holding_commas_are_offered_separated_by_semicolons() -> None:
    field = {
        "key": "mood",
        "label": "Mood",
        "level": "high",
        "kind": "nominal",
        "choices": [{"value": "calm", "label": "Calm, quiet"}, {"value": "busy", "label": "Busy"}],
    }
    assert field_question(field).endswith("Answer with one of: calm, quiet; busy.")


def test_labels_starting_with_an_acronym_keep_their_capitals() -> None:
    field = {"key": "jpeg", "label": "JPEG artefacts", "level": "low", "kind": "nominal",
             "choices": [{"value": "none", "label": "None"}, {"value": "visible", "label": "Visible"}]}
    assert field_question(field).startswith("<image>How would you describe the JPEG artefacts of this image?")


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("key", "value", "answer"),
    [
        ("clarity", "good", "The image clarity of this image is good."),
        ("exposure", "severely_under", "The exposure of this image is severely underexposed."),
        ("subject_integrity", "partial",
         "The subject integrity of this image is partially complete (slightly cut off or slightly obscured)."),
        ("subject_integrity", "no_subject", "The subject integrity of this image is no clear subject."),
        ("subject_clutter", "cluttered", "The subject clutter of this image is cluttered."),
        ("eye_catching", 8, "The eye-catching score of this image is 8."),
        ("composition", 7.0, "The composition score of this image is 7."),
        ("quality", 6.587, "The overall quality score of this image is 6.59."),
        ("aesthetics", 10, "The overall aesthetics score of this image is 9.99."),
        ("subject_background", "  Subject: bed;\n background: hotel room ", "Subject: bed; background: hotel room."),
    ],
)
def test_each_kind_of_field_has_its_answer(key: str, value: Any, answer: str) -> None:
    assert answer_text(FIELDS[key], value) == answer


@given(st.floats(min_value=1, max_value=9.99))
def test_an_overall_score_answer_is_the_realqa_form_that_parse_score_reads_back(x: float) -> None:
    assert parse_score(answer_text(FIELDS["quality"], x)) == round(x, 2)


def test_a_reason_goes_first_as_its_own_sentence() -> None:
    assert answer_text(FIELDS["composition"], 4, reason="The subject is cut off at the edge") == (
        "The subject is cut off at the edge. The composition score of this image is 4."
    )
    assert answer_text(FIELDS["clarity"], "poor", reason="Motion blur everywhere!") == (
        "Motion blur everywhere! The image clarity of this image is poor."
    )
    assert answer_text(FIELDS["clarity"], "poor", reason="  ") == "The image clarity of this image is poor."


def test_a_label_already_ending_in_score_is_not_given_a_second_one() -> None:
    overall = next(field for field in ONE_OF_EACH["fields"] if field["key"] == "overall")
    assert field_question(overall).startswith("<image>What is the overall score of this image?")
    assert answer_text(overall, 6.587) == "The overall score of this image is 6.59."


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("clarity", "blurry", "'blurry' is not one of bad, poor, fair, good, excellent"),
        ("clarity", None, "None is not one of"),
        ("composition", 7.5, "must be a whole number"),
        ("composition", 11, "11 is outside 1-10"),
        ("composition", True, "must be a number, not bool"),
        ("composition", "7", "must be a number, not str"),
        ("quality", math.nan, "must be a finite number"),
        ("quality", 0.5, "0.5 is outside 1-10"),
        ("subject_background", 3, "must be text"),
        ("subject_background", "   ", "the text is blank"),
    ],
)
def test_an_answer_rejects_a_value_that_does_not_suit_the_field(key: str, value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        answer_text(FIELDS[key], value)


def test_a_continuous_field_on_another_scale_has_no_realqa_answer() -> None:
    mos = {"key": "mos", "label": "MOS", "level": "overall", "kind": "continuous", "min": 0, "max": 100}
    with pytest.raises(ValueError, match="range 0-100 does not fit the RealQA answer form"):
        answer_text(mos, 50)


def test_a_text_field_takes_no_reason() -> None:
    with pytest.raises(ValueError, match="a text field takes no reason"):
        answer_text(FIELDS["subject_background"], "Subject: bed", reason="because")


def test_a_reason_must_be_text() -> None:
    with pytest.raises(ValueError, match="the reason must be text, not int"):
        answer_text(FIELDS["composition"], 7, reason=7)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "slider"}, "kind 'slider' is not one of"),
        ({"level": "top"}, "level 'top' is not one of"),
        ({"label": ""}, "missing label"),
        ({"choices": []}, "needs choices"),
    ],
)
def test_a_malformed_field_is_rejected(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        field_question({**FIELDS["clarity"], **change})


# --------------------------------------------------------------------------- chain of thought


def test_the_chain_of_thought_questions_are_realqas() -> None:
    assert cot_question() == "<image>Rate the aesthetics and quality of this image step by step with the regular form."
    assert cot_question(regular_form=False) == "<image>Rate the aesthetics and quality of this image step by step."


def test_the_chain_of_thought_answer_follows_the_numbered_template() -> None:
    assert cot_answer(SCHEMA, VALUES, REASONS, "aesthetics", 6.587) == EXPECTED_COT


def test_the_final_score_of_a_chain_of_thought_is_what_parse_score_reads() -> None:
    assert parse_score(EXPECTED_COT) == 6.59


@given(st.floats(min_value=1, max_value=9.99))
def test_parse_score_reads_any_final_score_back_rounded_to_two_decimals(final: float) -> None:
    assert parse_score(cot_answer(SCHEMA, VALUES, REASONS, "aesthetics", final)) == round(final, 2)


def test_a_final_score_of_ten_is_written_as_nine_point_nine_nine() -> None:
    assert cot_answer(SCHEMA, {}, {}, "aesthetics", 10).endswith("The final score is <9.99>.")


def test_fields_without_a_value_are_left_out_and_the_numbering_closes_up() -> None:
    values = {"composition": 7, "clarity": "good", "subject_background": " ", "quality": None}
    assert cot_answer(SCHEMA, values, {}, "aesthetics", 6.59) == (
        "1.1 Composition Score: 7, 2.1 Image Clarity: good. The final score is <6.59>."
    )
    assert cot_answer(SCHEMA, {}, {}, "quality", 5) == "The final score is <5.00>."


def test_the_final_field_is_not_an_item_even_when_it_has_a_value() -> None:
    text = cot_answer(SCHEMA, {"aesthetics": 3.0, "quality": 4.0}, {"aesthetics": "ignored"}, "aesthetics", 6.59)
    assert text == "1.1 Overall Quality Score: 4.00. The final score is <6.59>."


@pytest.mark.parametrize(
    ("values", "reasons", "final_key", "final_value", "reason"),
    [
        ({"sharpness": 3}, {}, "aesthetics", 6.5, "values has keys that are not fields of the schema: sharpness"),
        ({}, {"sharpness": "x"}, "aesthetics", 6.5, "reasons has keys that are not fields of the schema"),
        ({}, {"composition": "x"}, "aesthetics", 6.5, "reasons has keys without a value: composition"),
        ({}, {}, "overall", 6.5, "final_key 'overall' is not a field"),
        ({}, {}, "clarity", 6.5, "final_key 'clarity' is an ordinal field, not an integer or continuous score"),
        ({}, {}, "aesthetics", 0.5, "final_value for aesthetics: 0.5 is outside 1-10"),
        ({}, {}, "aesthetics", math.inf, "final_value for aesthetics: must be a finite number"),
        ({"clarity": "blurry"}, {}, "aesthetics", 6.5, "clarity: 'blurry' is not one of"),
        ({"subject_background": "bed"}, {"subject_background": "x"}, "aesthetics", 6.5, "a text field takes no reason"),
        ({"composition": 7}, {"composition": 7}, "aesthetics", 6.5, "the reason must be text"),
        (
            {"composition": 7, "eye_catching": 8},
            {"eye_catching": "Striking, 1.4 Composition Score: 9 would be unfair"},
            "aesthetics",
            6.5,
            "eye_catching: the reason contains '1.4 Composition Score:', which would read as an item",
        ),
    ],
)
def test_a_chain_of_thought_that_cannot_be_written_is_rejected(
    values: dict[str, Any], reasons: dict[str, Any], final_key: str, final_value: float, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        cot_answer(SCHEMA, values, reasons, final_key, final_value)


def test_parsing_the_template_gives_back_the_values_the_normalised_reasons_and_the_final_score() -> None:
    assert parse_cot_answer(SCHEMA, EXPECTED_COT) == {
        "values": {key: value for key, value in VALUES.items() if key != "aesthetics"},
        "reasons": {
            "eye_catching": "A plain bed under flat light; nothing pulls the eye",
            "composition": "The bed is centred, but the frame cuts the headboard",
        },
        "final_score": 6.59,
    }


def _normalised(text: str) -> str:
    return " ".join(text.split()).rstrip(".,; ")


FREE_TEXT = st.text(alphabet=st.sampled_from("abcxyz ABC019.,;:()<>-'\n\t"), max_size=40)


@st.composite
def labels(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for field in SCHEMA["fields"]:
        if draw(st.booleans()):
            continue  # left out
        kind = field["kind"]
        if kind in ("ordinal", "nominal"):
            values[field["key"]] = draw(st.sampled_from([choice["value"] for choice in field["choices"]]))
        elif kind == "integer":
            values[field["key"]] = draw(st.integers(field["min"], field["max"]))
        elif kind == "continuous":
            values[field["key"]] = draw(st.floats(field["min"], field["max"]))
        else:
            values[field["key"]] = draw(FREE_TEXT)
        if kind != "text" and draw(st.booleans()):
            reasons[field["key"]] = draw(FREE_TEXT)
    return values, reasons


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(labels(), st.sampled_from(["quality", "aesthetics", "composition"]), st.floats(min_value=1, max_value=9.99))
def test_parse_cot_answer_inverts_cot_answer(
    drawn: tuple[dict[str, Any], dict[str, str]], final_key: str, final: float
) -> None:
    values, reasons = drawn
    text = cot_answer(SCHEMA, values, reasons, final_key, final)
    parsed = parse_cot_answer(SCHEMA, text)

    expected_values: dict[str, Any] = {}
    for key, value in values.items():
        field = FIELDS[key]
        if key == final_key:
            continue
        if field["kind"] == "continuous":
            expected_values[key] = float(format_score(value))
        elif field["kind"] == "text":
            if _normalised(value):
                expected_values[key] = _normalised(value)
        else:
            expected_values[key] = value
    expected_reasons = {
        key: _normalised(reason)
        for key, reason in reasons.items()
        if key != final_key and _normalised(reason)
    }
    assert parsed["values"] == expected_values
    assert parsed["reasons"] == expected_reasons
    assert parsed["final_score"] == round(final, 2) == parse_score(text)


def test_a_model_answer_may_vary_letter_case_line_breaks_and_write_stored_choice_values() -> None:
    text = (
        "1.1 composition score: 7\n"
        "2.1 SUBJECT INTEGRITY: Partially Complete (slightly cut off or slightly obscured)\n"
        "3.1 Image Clarity: excellent, 3.2 Exposure: severely_over\n"
        "The final score is <6.59>"
    )
    assert parse_cot_answer(SCHEMA, text) == {
        "values": {
            "composition": 7,
            "subject_integrity": "partial",
            "clarity": "excellent",
            "exposure": "severely_over",
        },
        "reasons": {},
        "final_score": 6.59,
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "does not end with 'The final score is <X.XX>.'"),
        ("1.1 Composition Score: 7.", "does not end with"),
        ("1.1 Composition Score: 7. The final score is <6.59>. Thanks!", "does not end with"),
        ("1.1 Composition Score: 7. The final score is <high>.", "final score: score 'high' is not a number"),
        ("1.1 Composition Score: 7. The final score is <12.5>.", r"final score: score 12.5 is outside \[0, 10\]"),
        (
            "Sure! 1.1 Composition Score: 7. The final score is <6.59>.",
            "unexpected text before the first item: 'Sure!'",
        ),
        ("The composition is fine. The final score is <6.59>.", "no numbered items before the final score"),
        ("1.1 Horizon: level. The final score is <6.59>.", "no numbered items before the final score"),
        ("1.2 Composition Score: 7. The final score is <6.59>.", "1.2 Composition Score: expected item number 1.1"),
        (
            "1.1 Eye-Catching Score: 8, 1.3 Composition Score: 7. The final score is <6.59>.",
            "1.3 Composition Score: expected item number 1.2",
        ),
        (
            "1.1 Composition Score: 7, 1.2 Image Clarity: good. The final score is <6.59>.",
            "1.2 Image Clarity: expected item number 2.1",
        ),
        (
            "1.1 Composition Score: 7, 2.1 Eye-Catching Score: 8. The final score is <6.59>.",
            "2.1 Eye-Catching Score: out of order or repeated",
        ),
        (
            "1.1 Image Clarity: good, 2.1 Composition Score: 7. The final score is <6.59>.",
            "2.1 Composition Score: out of order or repeated",
        ),
        (
            "1.1 Composition Score: 7, 1.2 Composition Score: 8. The final score is <6.59>.",
            "1.2 Composition Score: out of order or repeated",
        ),
        (
            "1.1 Composition Score: 7, 1.2 Reason for Composition Score: nice. The final score is <6.59>.",
            "1.2 Reason for Composition Score: out of order or repeated",
        ),
        (
            "1.1 Reason for Eye-Catching Score: dull, 1.2 Composition Score: 7. The final score is <6.59>.",
            "1.2 Composition Score: expected the value of eye_catching right after its reason",
        ),
        (
            "1.1 Reason for Composition Score: centred. The final score is <6.59>.",
            "the reason for composition is not followed by its value",
        ),
        (
            "1.1 Composition Score: , 2.1 Image Clarity: good. The final score is <6.59>.",
            "1.1 Composition Score: empty value",
        ),
        (
            "1.1 Composition Score: 7.5. The final score is <6.59>.",
            "1.1 Composition Score: '7.5' is not a whole number",
        ),
        ("1.1 Composition Score: 11. The final score is <6.59>.", "1.1 Composition Score: 11 is outside 1-10"),
        ("1.1 Composition Score: seven. The final score is <6.59>.", "'seven' is not a whole number"),
        ("1.1 Overall Quality Score: high. The final score is <6.59>.", "'high' is not a number"),
        (
            "1.1 Image Clarity: blurry. The final score is <6.59>.",
            "1.1 Image Clarity: 'blurry' is not one of bad, poor, fair, good, excellent",
        ),
        (
            "1.1 Image Clarity: good, 1.2 Horizon: level. The final score is <6.59>.",
            "'good, 1.2 Horizon: level' is not one of",
        ),
    ],
)
def test_a_malformed_chain_of_thought_is_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_cot_answer(SCHEMA, text)


def test_fields_whose_headers_collide_make_the_schema_unusable_for_the_template() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["fields"].append({**FIELDS["composition"], "key": "composition_2", "label": "COMPOSITION"})
    with pytest.raises(ValueError, match="fields composition and composition_2 have the same header"):
        cot_answer(schema, {}, {}, "aesthetics", 6.5)


def test_a_schema_without_fields_or_with_a_repeated_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="schema must be a dict with a 'fields' list"):
        parse_cot_answer({"name": "x"}, "The final score is <6.59>.")
    schema = {"fields": [FIELDS["clarity"], FIELDS["clarity"]]}
    with pytest.raises(ValueError, match="two fields with key 'clarity'"):
        parse_cot_answer(schema, "The final score is <6.59>.")


# --------------------------------------------------------------------------- prepared schemas

PREPARED = prepare_schema(SCHEMA)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(labels(), st.sampled_from(["quality", "aesthetics", "composition"]), st.floats(min_value=1, max_value=9.99))
def test_a_prepared_schema_writes_and_reads_the_same_answers_as_the_schema_dict(
    drawn: tuple[dict[str, Any], dict[str, str]], final_key: str, final: float
) -> None:
    values, reasons = drawn
    text = cot_answer(SCHEMA, values, reasons, final_key, final)
    assert cot_answer(PREPARED, values, reasons, final_key, final) == text
    assert parse_cot_answer(PREPARED, text) == parse_cot_answer(SCHEMA, text)


@pytest.mark.parametrize(
    "values, reasons, final_key, reason",
    [
        ({"clarity": "sharp"}, {}, "aesthetics", "clarity: 'sharp' is not one of bad, poor"),
        ({"clarity": ["good"]}, {}, "aesthetics", r"clarity: \['good'\] is not one of"),
        ({"composition": 7.5}, {}, "aesthetics", "composition: must be a whole number"),
        ({"nope": 1}, {}, "aesthetics", "values has keys that are not fields of the schema: nope"),
        ({"composition": 7}, {"composition": "ok, 2.1 Subject Integrity: x"}, "aesthetics", "would read as an item"),
        ({}, {}, "clarity", "not an integer or continuous score"),
    ],
)
def test_a_prepared_schema_rejects_what_the_schema_dict_rejects(
    values: dict[str, Any], reasons: dict[str, str], final_key: str, reason: str
) -> None:
    for schema in (SCHEMA, PREPARED):
        with pytest.raises(ValueError, match=reason):
            cot_answer(schema, values, reasons, final_key, 6.5)


def test_a_prepared_schema_is_a_snapshot_that_later_edits_of_the_dict_do_not_reach() -> None:
    schema = copy.deepcopy(SCHEMA)
    prepared = prepare_schema(schema)
    before = cot_answer(prepared, VALUES, REASONS, "aesthetics", 6.587)
    next(f for f in schema["fields"] if f["key"] == "clarity")["label"] = "Sharpness"
    assert cot_answer(prepared, VALUES, REASONS, "aesthetics", 6.587) == before == EXPECTED_COT
    assert "Sharpness: good" in cot_answer(schema, VALUES, REASONS, "aesthetics", 6.587)
    assert prepare_schema(prepared) is prepared


def test_preparing_a_malformed_schema_names_the_problem() -> None:
    with pytest.raises(ValueError, match="schema must be a dict with a 'fields' list"):
        prepare_schema({"name": "x"})
    schema = copy.deepcopy(SCHEMA)
    schema["fields"].append({**FIELDS["composition"], "key": "composition_2", "label": "COMPOSITION"})
    with pytest.raises(ValueError, match="fields composition and composition_2 have the same header"):
        prepare_schema(schema)
