"""Scores as RealQA writes them: format, parse, and the digit-by-digit expectation."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import realqa_model
from realqa_model.numeric import digit_expectation, format_score, parse_score

ONE_DIGIT_TWO_DECIMALS = re.compile(r"[0-9]\.[0-9]{2}")


def one_hot(*digits: int) -> list[list[float]]:
    return [[1.0 if d == digit else 0.0 for d in range(10)] for digit in digits]


# --------------------------------------------------------------------------- format_score


def test_the_package_exports_the_score_helpers() -> None:
    assert realqa_model.format_score(6.587) == "6.59"
    assert realqa_model.parse_score("The final score is <6.59>.") == 6.59
    assert realqa_model.digit_expectation(one_hot(6, 5, 9)) == pytest.approx((6.59, 1.0))


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (6.587, "6.59"),
        (3, "3.00"),
        (1, "1.00"),
        (0, "0.00"),
        (5.5, "5.50"),
        (9.99, "9.99"),
        (np.float64(7.125), "7.12"),  # an exact tie, rounded to even like round()
    ],
)
def test_a_score_is_written_with_one_integer_digit_and_two_decimals(value: float, written: str) -> None:
    assert format_score(value) == written


def test_digits_sets_the_number_of_decimals() -> None:
    assert format_score(6.587, digits=0) == "7"
    assert format_score(6.587, digits=1) == "6.6"
    assert format_score(6.587, digits=3) == "6.587"


@pytest.mark.parametrize("value", [10, 10.0, 9.995001, 9.999, 10.000000000000002])
def test_ten_and_scores_that_round_to_ten_are_written_as_nine_point_nine_nine(value: float) -> None:
    assert format_score(value) == "9.99"


def test_the_clamp_at_ten_follows_the_number_of_decimals() -> None:
    assert format_score(10, digits=0) == "9"
    assert format_score(10, digits=1) == "9.9"
    assert format_score(10, digits=3) == "9.999"


@pytest.mark.parametrize("value", [-0.0, -1e-12, -0.004])
def test_float_noise_just_below_zero_is_written_as_zero(value: float) -> None:
    assert format_score(value) == "0.00"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_score_is_rejected_by_name(value: float) -> None:
    with pytest.raises(ValueError, match="score must be a finite number, got (nan|inf|-inf)"):
        format_score(value)


@pytest.mark.parametrize("value", [10.01, 85.06, -0.5, -0.006])
def test_a_score_outside_zero_to_ten_is_rejected_not_clamped(value: float) -> None:
    with pytest.raises(ValueError, match=r"outside \[0, 10\].*rescale"):
        format_score(value)


@pytest.mark.parametrize("value", ["6.5", True, None, [6.5]])
def test_a_score_that_is_not_a_real_number_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="score must be a real number"):
        format_score(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("digits", [-1, 1.5, True, "2"])
def test_digits_must_be_a_non_negative_int(digits: object) -> None:
    with pytest.raises(ValueError, match="digits must be a non-negative int"):
        format_score(5, digits=digits)  # type: ignore[arg-type]


@given(st.floats(min_value=1, max_value=9.99))
def test_a_formatted_score_parses_back_to_the_score_rounded_to_two_decimals(x: float) -> None:
    assert parse_score("The quality score of this image is " + format_score(x) + ".") == round(x, 2)


@given(st.floats(min_value=0, max_value=10))
def test_every_score_from_zero_to_ten_is_one_digit_a_point_and_two_decimals_within_a_hundredth(x: float) -> None:
    written = format_score(x)
    assert ONE_DIGIT_TWO_DECIMALS.fullmatch(written)
    assert abs(float(written) - x) <= 0.01 + 1e-12


# --------------------------------------------------------------------------- parse_score


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("The quality score of this image is 3.47.", 3.47),
        ("The aesthetics score of this image is 6.5", 6.5),
        ("The composition score of this image is 7.", 7.0),
        ("THE QUALITY SCORE OF THIS IMAGE IS 5.12.", 5.12),
        ("The quality score of this image is\n4.00, which is average.", 4.0),
        ("The quality score of this image is 10.00.", 10.0),
        ("The quality score of this image is 0.00.", 0.0),
        ("First guess: the score of this image is 2.00. On reflection the score of this image is 3.25.", 3.25),
    ],
)
def test_the_plain_answer_form_is_parsed(text: str, score: float) -> None:
    assert parse_score(text) == score


COT = (
    "1.1 Reason for Composition Score: the bed is centred but the headboard is cut off, "
    "1.2 Composition Score: 7, 1.3 Reason for Eye-Catching Score: flat light, "
    "1.4 Eye-Catching Score: 8, 2.1 Subject Integrity: partially complete (slightly cut off or slightly obscured), "
    "3.1 Image Clarity: good. The final score is <6.59>."
)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("The final score is <6.59>.", 6.59),
        (COT, 6.59),
        ("The final score is < 6.59 >", 6.59),
        ("The sign reads <SALE> and the frame is level. The final score is <4.20>.", 4.2),
        ("The quality score of this image is 3.47. The final score is <6.59>.", 6.59),
    ],
)
def test_the_chain_of_thought_form_is_read_from_the_last_angle_brackets(text: str, score: float) -> None:
    assert parse_score(text) == score


def test_an_unclosed_bracket_falls_back_to_the_plain_form() -> None:
    assert parse_score("The quality score of this image is 5.12. The final score is <6.5") == 5.12


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no score found"),
        ("The image looks sharp and well exposed.", "no score found"),
        ("The final score is 6.59.", "no score found"),
        ("The quality score of this image is", "no score found.*ends after"),
        ("The quality score of this image is .", "no score found.*nothing after"),
        ("The final score is <>.", "no score found.*nothing between"),
        ("The quality score of this image is 6.5.9.", "score '6.5.9' is not a number"),
        ("The final score is <6.5.9>.", "score '6.5.9' is not a number"),
        ("The final score is <high>.", "score 'high' is not a number"),
        ("The quality score of this image is nan.", "score 'nan' is not a number"),
        ("The quality score of this image is 1e1.", "score '1e1' is not a number"),
        ("The quality score of this image is \uff16.\uff15.", "is not a number"),
        ("The final score is <12.3>.", r"score 12.3 is outside \[0, 10\]"),
        ("The quality score of this image is -1.50.", r"score -1.50 is outside \[0, 10\]"),
    ],
)
def test_a_malformed_answer_is_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_score(text)


def test_parsing_something_that_is_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="text must be a string"):
        parse_score(6.59)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- digit_expectation


def test_the_digit_expectation_matches_a_hand_computed_case() -> None:
    # integer digit: 6 or 7, half each  -> E = 6.5, Var = 0.25
    # first decimal: 4 for sure         -> E = 4,   Var = 0
    # second decimal: 0 (1/4) or 8 (3/4) -> E = 6,   Var = 1/4 * 36 + 3/4 * 4 = 12
    probs = [
        [0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0],
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
        [0.25, 0, 0, 0, 0, 0, 0, 0, 0.75, 0],
    ]
    value, confidence = digit_expectation(probs)
    # E = 6.5 + 0.1 * 4 + 0.01 * 6 = 6.96
    assert value == pytest.approx(6.96, abs=1e-12)
    # sigma^2 = 0.25 + 0.01 * 0 + 0.0001 * 12 = 0.2512           -> sigma = 0.5011986...
    # sigma_max = 4.5 * sqrt(1 + 0.01 + 0.0001) = 4.5 * 1.0050373 -> 4.5226680...
    # confidence = 1 - 0.5011986 / 4.5226680 = 0.8891816...
    assert confidence == pytest.approx(0.8891816, abs=1e-6)


def test_it_is_the_realqa_expectation_over_a_softmax_of_the_digit_logits() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    digits = np.arange(10)
    reference = probs[0] @ digits + 0.1 * (probs[1] @ digits) + 0.01 * (probs[2] @ digits)
    assert digit_expectation(probs)[0] == pytest.approx(reference, abs=1e-12)


def test_rows_are_normalised_before_the_expectation() -> None:
    probs = np.array([[0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0], one_hot(4)[0], [0.25, 0, 0, 0, 0, 0, 0, 0, 0.75, 0]])
    scaled = probs * np.array([[0.2], [3.0], [0.01]])
    assert digit_expectation(scaled) == pytest.approx(digit_expectation(probs))


def test_a_sure_answer_has_the_written_value_and_full_confidence() -> None:
    assert digit_expectation(one_hot(6, 5, 9)) == pytest.approx((6.59, 1.0))


def test_confidence_is_zero_when_every_digit_is_split_between_zero_and_nine() -> None:
    split = [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.5]
    assert digit_expectation([split, split, split]) == pytest.approx((4.995, 0.0), abs=1e-12)


def test_confidence_falls_as_the_integer_digit_spreads() -> None:
    confidences = []
    for spread in (0.0, 0.1, 0.3, 0.5):
        integer = [0.0] * 10
        integer[6], integer[7] = 1 - spread, spread
        confidences.append(digit_expectation([integer, *one_hot(0, 0)])[1])
    assert confidences[0] == 1.0
    assert confidences == sorted(confidences, reverse=True)
    assert len(set(confidences)) == 4
    assert confidences[-1] == pytest.approx(1 - 0.5 / (4.5 * math.sqrt(1.0101)))  # about 0.89


def test_doubt_in_the_last_decimal_costs_less_confidence_than_the_same_doubt_in_the_integer_digit() -> None:
    doubt = [0.0] * 10
    doubt[6] = doubt[7] = 0.5
    _, integer_doubt = digit_expectation([doubt, *one_hot(5, 9)])
    _, decimal_doubt = digit_expectation([*one_hot(6, 5), doubt])
    assert integer_doubt < decimal_doubt < 1.0


def test_any_number_of_decimal_positions_is_weighted_by_powers_of_ten() -> None:
    assert digit_expectation(one_hot(3)) == (3.0, 1.0)
    assert digit_expectation(one_hot(3, 1, 4, 1))[0] == pytest.approx(3.141)


@given(st.lists(st.lists(st.floats(min_value=0, max_value=1), min_size=10, max_size=10), min_size=1, max_size=4))
def test_the_expectation_stays_in_range_and_confidence_in_zero_to_one(rows: list[list[float]]) -> None:
    assume(all(sum(row) > 0 for row in rows))
    value, confidence = digit_expectation(rows)
    assert 0.0 <= value <= 10.0
    assert 0.0 <= confidence <= 1.0


def test_torch_tensors_of_any_dtype_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    logits = torch.randn(3, 10, generator=torch.Generator().manual_seed(3), requires_grad=True)
    probs = torch.softmax(logits, dim=-1)
    expected = digit_expectation(probs.detach().double().numpy())
    assert digit_expectation(probs) == pytest.approx(expected)
    assert digit_expectation(probs.to(torch.bfloat16)) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize(
    ("probs", "reason"),
    [
        ([[0.1] * 9] * 3, r"shape \(positions, 10\)"),
        ([0.1] * 10, r"shape \(positions, 10\)"),
        (np.zeros((0, 10)), r"shape \(positions, 10\)"),
        ([[0.1] * 10, ["a"] * 10], "array of numbers"),
        ([[math.nan] + [0.1] * 9], "NaN or infinite"),
        ([[-1.0] + [0.1] * 9], "negative values: pass probabilities"),
        ([[0.1] * 10, [0.0] * 10], "row 1 of digit_probs has no probability mass"),
    ],
)
def test_bad_digit_probabilities_are_rejected_with_a_reason(probs: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        digit_expectation(probs)
