"""Scores as RealQA writes them: format, parse, and the digit-by-digit expectation.

RealQA ("Next Token Is Enough", arXiv 2503.06141) trains a multimodal LLM to *write* its score
as text with "two extra significant digits": one integer digit, a point and two decimals, as in
``The quality score of this image is 6.59.``. A chain-of-thought answer ends with
``The final score is <6.59>.`` instead. With the Qwen2 tokenizer every digit is its own token,
so the score is three next-token predictions over the ten digit tokens; RealQA's numeric
consistency metric (NCM, in the reference repository's ``modeling_qwen2_vl.py``) reads a score
back out of those three distributions as E[int] + 0.1 E[d1] + 0.01 E[d2].

This module is pure Python (numpy is imported lazily, only by :func:`digit_expectation`) so
``import realqa_model`` stays cheap.

Public names:

* :func:`format_score` -- a number to the answer form, ``6.587 -> "6.59"``.
* :func:`parse_score` -- the number back out of a plain or chain-of-thought answer.
* :func:`digit_expectation` -- (expected score, confidence) from per-digit probabilities.
* :data:`SCORE_MIN`, :data:`SCORE_MAX` -- the range the answer form can hold, [0, 10].
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

__all__ = ["SCORE_MIN", "SCORE_MAX", "format_score", "parse_score", "digit_expectation"]

#: Lowest score the answer form holds.
SCORE_MIN = 0.0
#: Highest score accepted as input. ``format_score`` writes it as 9.99 (see there); ``parse_score``
#: accepts a written ``10.00``.
SCORE_MAX = 10.0

# A written score: optional sign (so "-1.5" is reported as out of range, not as "not a number"),
# ASCII digits, optionally a point and more digits. No exponents, no "nan", no ".5".
_NUMBER_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
# A complete pair of angle brackets and what is between them.
_BRACKETS_RE = re.compile(r"<([^<>]*)>")
# The plain answer form; the group is the whitespace-delimited word after the phrase, if any.
_PLAIN_RE = re.compile(r"score of this image is(?:\s+(\S+))?", re.IGNORECASE)
# Punctuation that may end the sentence right after the score ("is 3.47." / "is 3.47,").
_TRAILING_PUNCTUATION = ".,;:!?"


def format_score(value: float, digits: int = 2) -> str:
    """Write ``value`` in the RealQA answer form: one integer digit, a point, ``digits`` decimals.

    >>> format_score(6.587)
    '6.59'
    >>> format_score(3)
    '3.00'
    >>> format_score(10)
    '9.99'

    Rounding is Python's own (``round(value, digits)``: correctly rounded from the binary value,
    exact ties to even), so ``float(format_score(x)) == round(x, 2)`` for every x in [0, 9.995).

    **10 is written as 9.99** (``10 - 10**-digits`` in general), and so is anything that rounds
    to 10. The answer form has exactly one integer digit: RealQA's numeric-consistency code
    finds the score by its first '.' token and takes the single digit before it, so "10.00"
    would be read as 0.00, and a two-digit integer part would also give the model a fourth
    score token that no other answer has. Clamping moves the top score by at most
    ``10**-digits`` (0.01), a tenth of the schema's 0.1 step and far below rater disagreement,
    and keeps 10 (the top of the 1-10 scale, a legitimate label) representable. Raising
    instead would make every image rated 10 unexportable.

    Values are rounded first and then range-checked, so float noise such as
    10.000000000000002 or -1e-12 is accepted (as 9.99 and 0.00). Anything that does not round
    into [0, 10] raises ValueError: a score like 85.06 means the data is on another scale (for
    example KonIQ's 0-100 MOS) and must be rescaled by the caller, not silently clamped.

    Raises:
        TypeError: ``value`` is not a real number (a bool, a string, a tensor: use ``.item()``).
        ValueError: ``value`` is NaN or infinite, falls outside [0, 10], or ``digits`` is not
            a non-negative int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"score must be a real number, not {type(value).__name__} (use .item() for a tensor)")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative int, got {digits!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"score must be a finite number, got {number!r}")
    text = f"{number:.{digits}f}"
    rounded = float(text)
    if not SCORE_MIN <= rounded <= SCORE_MAX:
        raise ValueError(
            f"score {number!r} is outside [0, 10]: the RealQA answer form holds one integer digit; "
            "rescale the score to the 1-10 scale first"
        )
    if rounded >= SCORE_MAX:
        return "9." + "9" * digits if digits else "9"
    return text.lstrip("-")  # "-0.00" (from -0.0 or -1e-12) -> "0.00"


def parse_score(text: str) -> float:
    """Read the score out of a RealQA answer.

    Two answer forms are accepted:

    * chain of thought, ending ``... The final score is <6.59>.``: when the text holds a complete
      ``<...>`` pair, the score is what stands between the **last** pair (stripped of spaces).
      The last pair is the final answer even if a reason earlier in the text used brackets.
    * plain, ``The quality score of this image is 3.47.``: the word after the last
      ``score of this image is`` (case-insensitive), with trailing sentence punctuation removed.

    Pass the answer only: a question starts with ``<image>``, which would count as a bracket pair.

    The score must be written as digits with an optional decimal part (``6``, ``6.5``,
    ``6.59``); exponents, ``nan``, ``inf`` and thousands separators are rejected. It must lie in
    [0, 10]; ``10.00`` is accepted (a model may write it although :func:`format_score` never
    does), anything outside is rejected because it cannot be a score on the RealQA scale and
    usually means the output is garbled or on another scale.

    Differences from the reference evaluation script (``metric/aesthetic/eval_koniq10k.py``):
    it takes the *first* ``<`` and ``>`` and the *first* "score of this image is", and skips
    failures silently. Here the last occurrence wins and every failure raises with a reason,
    so the caller can count and report them.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: no score found, the score is not a number, or it is outside [0, 10].
            The message says which.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    pairs = _BRACKETS_RE.findall(text)
    if pairs:
        written = pairs[-1].strip()
        where = "between the last '<' and '>'"
    else:
        matches = list(_PLAIN_RE.finditer(text))
        if not matches:
            raise ValueError(
                f"no score found in {_preview(text)}: expected '... score of this image is X.XX.' "
                "or '... The final score is <X.XX>.'"
            )
        word = matches[-1].group(1)
        if word is None:
            raise ValueError(f"no score found in {_preview(text)}: the text ends after 'score of this image is'")
        written = word.rstrip(_TRAILING_PUNCTUATION)
        where = "after 'score of this image is'"
    if not written:
        raise ValueError(f"no score found in {_preview(text)}: nothing {where}")
    if not _NUMBER_RE.fullmatch(written):
        raise ValueError(f"score {written!r} is not a number (read {where})")
    score = float(written)
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise ValueError(f"score {written} is outside [0, 10], the range of the RealQA answer form")
    return score


def digit_expectation(digit_probs: Any) -> tuple[float, float]:
    """Expected score and confidence from the probabilities of each written digit.

    ``digit_probs`` has shape ``(positions, 10)``: row k holds the probabilities of the digits
    0-9 at the k-th digit of the score, row 0 being the integer digit and row k the k-th
    decimal (so three rows for the ``X.XX`` form). It may be a nested list, a numpy array or a
    CPU/GPU torch tensor (any dtype; it is detached and converted without importing torch).
    Rows are normalised to sum to 1, so they may be the softmax over the whole vocabulary
    restricted to the ten digit tokens; RealQA itself takes the softmax over the ten digit
    logits only. Pass probabilities, not logits.

    **Expected value** (RealQA's numeric-consistency expectation, generalised to any number of
    decimals): ``E = sum_k 10**-k * E[d_k]`` with ``E[d_k] = sum_d d * p_k(d)``. For three rows
    this is E[int] + 0.1 E[d1] + 0.01 E[d2].

    **Confidence** ``= 1 - sigma / sigma_max``, in [0, 1]. ``sigma`` is the standard deviation,
    in score units, of the score the digits imply when each position is drawn from its row
    independently: ``sigma**2 = sum_k 10**(-2k) * Var(d_k)``. ``sigma_max = 4.5 * sqrt(sum_k
    10**(-2k))`` is the largest sigma any input can reach (a digit's variance is at most 4.5**2,
    all mass split evenly between 0 and 9). Why this definition:

    * it measures spread of the *score*, so the positions count by their weight: doubt between
      6 and 7 matters, doubt between 6.58 and 6.59 barely does. (The probability of the greedy
      string, a product of per-row maxima, would call both equally uncertain.)
    * it is 1 exactly when every row is one-hot (the model is sure of the written score), 0
      exactly when every row is split evenly between 0 and 9, and strictly decreasing in sigma,
      so ranking outputs by confidence ranks them by spread; ``sigma = (1 - confidence) *
      sigma_max`` recovers the spread in score units.
    * for a sense of scale (three rows, sure decimals): an even split of the integer digit
      between two neighbours (6 and 7) gives sigma = 0.5 and a confidence of about 0.89; an
      integer digit uniform over 0-9 gives about 0.37.

    Only sigma treats the positions as independent. Rows read under teacher forcing (each
    decimal conditioned on the reference digits before it, as RealQA does) are not, so sigma
    is an approximation there; the expected value is RealQA's formula as it stands.

    Returns:
        ``(expected_score, confidence)`` as Python floats.

    Raises:
        ValueError: wrong shape, NaN/infinite or negative entries, or a row with no mass.
    """
    import numpy as np

    if hasattr(digit_probs, "detach"):  # a torch tensor; detach/cpu/double work for every dtype
        digit_probs = digit_probs.detach().cpu().double().numpy()
    try:
        probs = np.asarray(digit_probs, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"digit_probs must be an array of numbers of shape (positions, 10): {error}") from None
    if probs.ndim != 2 or probs.shape[0] < 1 or probs.shape[1] != 10:
        raise ValueError(f"digit_probs must have shape (positions, 10) with positions >= 1, got {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("digit_probs holds NaN or infinite values")
    if (probs < 0).any():
        raise ValueError("digit_probs holds negative values: pass probabilities (a softmax), not logits")
    totals = probs.sum(axis=1)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        raise ValueError(f"row {int(empty[0])} of digit_probs has no probability mass (all zeros)")

    probs = probs / totals[:, None]
    digits = np.arange(10, dtype=np.float64)
    means = probs @ digits
    variances = (probs * (digits[None, :] - means[:, None]) ** 2).sum(axis=1)
    weights = 10.0 ** -np.arange(probs.shape[0], dtype=np.float64)
    expected = float(weights @ means)
    sigma = math.sqrt(float((weights**2) @ variances))
    sigma_max = 4.5 * math.sqrt(float(weights @ weights))
    confidence = min(1.0, max(0.0, 1.0 - sigma / sigma_max))
    return expected, confidence


def _preview(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, shortened to its last ``limit`` characters."""
    if len(text) <= limit:
        return repr(text)
    return repr("..." + text[-limit:])
