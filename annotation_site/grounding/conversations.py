"""Conversations in the formats of DepictQA-Wild and Grounding-IQA, from plain values. No Django.

DepictQA's records (XPixelGroup/DepictQA build_datasets/scripts/gen_json_*.py) are
{"id", "image_ref", "image_A", "image_B", "task_type", "conversations": [{"from": "human", ...}, {"from": "gpt",
...}]}; without a reference image the task types are quality_single_A_noref and quality_compare_noref. The
question wording is the first of each of their question pools; the brief answer is their
"The primary degradation in the evaluated image is ..." with the rater's severity before each distortion (their
identification answers carry no severity; ours do because raters give one)."""

from __future__ import annotations

from typing import Sequence

from .geometry import box_to_cells, grid_encode
from .taxonomy import distortion_phrase

ASSESSMENT_BRIEF_QUESTION = "What are the primary degradation(s) observed in the evaluated image?"
ASSESSMENT_DETAIL_QUESTION = "Could you assess the overall quality of the image and elaborate on your evaluation?"
BRIEF_GOOD = "The quality of the evaluated image is quite good without any distortion."
SINGLE = "quality_single_A_noref"
COMPARE = "quality_compare_noref"
# Grounding-IQA's GIQA-DES prompt (papers.md section 4.1).
GROUNDED_DESCRIPTION_QUESTION = (
    "Explore the quality factors of the image and offer an evaluation based on your insights. "
    "Note positions as [label](<x, y>)."
)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def brief_answer(brief: Sequence[tuple[str, str]], *, severities: Sequence[str]) -> str:
    """A brief identification answer: the distortions worst first, each with its severity.
    brief: (distortion key, severity name) pairs; severities: the names from mildest to worst."""
    if not brief:
        return BRIEF_GOOD
    rank = {name: index for index, name in enumerate(severities)}
    ordered = sorted(brief, key=lambda item: -rank.get(item[1], 0))  # stable: ties keep the rater's order
    parts = [f"{severity} {distortion_phrase(key)}" for key, severity in ordered]
    if len(parts) == 1:
        return f"The primary degradation in the evaluated image is {parts[0]}."
    return f"The primary degradations in the evaluated image are {_join(parts)}."


def assessment_records(
    *,
    record_id: str,
    image: str,
    brief: Sequence[tuple[str, str]],
    detail: str,
    severities: Sequence[str],
) -> list[dict]:
    """The brief (identification) and, when there is text, the detailed (reasoning) assessment of one image."""
    records = [_single(f"{record_id}-brief", image, ASSESSMENT_BRIEF_QUESTION, brief_answer(brief, severities=severities))]
    if detail.strip():
        records.append(_single(f"{record_id}-detail", image, ASSESSMENT_DETAIL_QUESTION, detail.strip()))
    return records


def _single(record_id: str, image: str, question: str, answer: str) -> dict:
    return {
        "id": record_id,
        "image_ref": None,
        "image_A": image,
        "image_B": None,
        "task_type": SINGLE,
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}],
    }


def comparison_record(
    *,
    record_id: str,
    image_a: str,
    image_b: str,
    distortion: str,
    severity_a: str | None,
    severity_b: str | None,
    a_has_more: bool,
    ask_for_less: bool,
) -> dict:
    """Which of two images has more (or less) of one distortion. severity_*: the consensus severity name, or
    None when the raters saw none of it."""
    phrase = distortion_phrase(distortion)
    word = "less" if ask_for_less else "more"
    question = f"Which image has {word} {phrase}: Image A or Image B?"
    winner, loser = ("A", "B") if a_has_more != ask_for_less else ("B", "A")
    seen = {"A": severity_a or "none", "B": severity_b or "none"}
    answer = f"Image {winner} has {word} {phrase} than Image {loser} ({seen['A']} in Image A, {seen['B']} in Image B)."
    return {
        "id": record_id,
        "image_ref": None,
        "image_A": image_a,
        "image_B": image_b,
        "task_type": COMPARE,
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}],
    }


def grounded_description(boxes: Sequence[dict]) -> str:
    """A rater's boxes as one Grounding-IQA-style description: `[tag](<tl, br>): note.` per box."""
    sentences = []
    for entry in boxes:
        tl, br = box_to_cells(entry["box"])
        note = (entry.get("note") or "").strip().rstrip(".")
        sentences.append(f"[{entry['tag']}](<{tl}, {br}>)" + (f": {note}." if note else "."))
    return " ".join(sentences)


def region_vqa(questions: Sequence[dict], answers: dict, boxes: Sequence[dict]) -> list[dict]:
    """Answered region questions as Grounding-IQA VQA turns: yes/no questions answer "Yes."/"No.", region
    questions answer with the chosen box in grid form ("The [tag](<tl, br>).") or "None."."""
    turns = []
    for question in questions:
        if question["key"] not in answers:
            continue
        answer = answers[question["key"]]
        if question["kind"] == "yes_no":
            text = "Yes." if answer == "yes" else "No."
        elif answer is None:
            text = "None."
        else:
            entry = boxes[answer]
            text = f"The {grid_encode([(entry['tag'], entry['box'])])}."
        turns.append({"from": "human", "value": question["text"]})
        turns.append({"from": "gpt", "value": text})
    return turns
