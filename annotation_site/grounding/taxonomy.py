"""The region tags and the DepictQA-Wild distortion taxonomy, with the checks of a project's setup lists.
No Django: the exports and a notebook share it.

DepictQA-Wild (arXiv 2405.18842; XPixelGroup/DepictQA build_datasets/x_distortion/__init__.py): 35 distortion
functions in 12 categories, severities 1-5 named slight / moderate / obvious / serious / catastrophic
(build_datasets/scripts/gen_resp_gpt4v_*.py). The phrases a distortion takes in a brief answer are those of
build_datasets/scripts/gen_json_A_brief_md.py (degradation_rename): "overly high brightness", "color
quantization", ..."""

from __future__ import annotations

import re

DEFAULT_TAGS = ["blur", "noise", "over-exposure", "under-exposure", "artifact", "clutter"]

# key -> (label shown to raters, DepictQA's phrase in a brief answer)
DEPICTQA_DISTORTIONS: dict[str, tuple[str, str]] = {
    "blur": ("Blur", "blur"),
    "noise": ("Noise", "noise"),
    "compression": ("Compression", "compression"),
    "brighten": ("Brighten (too bright)", "overly high brightness"),
    "darken": ("Darken (too dark)", "insufficient brightness"),
    "contrast_strengthen": ("Contrast strengthen", "overly high contrast"),
    "contrast_weaken": ("Contrast weaken", "insufficient contrast"),
    "saturate_strengthen": ("Saturate strengthen", "overly high saturation"),
    "saturate_weaken": ("Saturate weaken", "insufficient saturation"),
    "oversharpen": ("Oversharpen", "oversharpening"),
    "pixelate": ("Pixelate", "pixelation"),
    "quantization": ("Quantization", "color quantization"),
}
DEFAULT_DISTORTIONS = list(DEPICTQA_DISTORTIONS)
DEFAULT_SEVERITIES = ["slight", "moderate", "obvious", "serious", "catastrophic"]

# Number keys pick a tag or a severity: 1-9 and 0 for the tenth.
MAX_KEYED_CHOICES = 10
MAX_DISTORTIONS = 40
MAX_QUESTIONS = 10
QUESTION_KINDS = ("yes_no", "region")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FORBIDDEN_IN_TAG = re.compile(r"[\[\]()<>\n\r]")
MAX_TAG_CHARS = 40
MAX_QUESTION_CHARS = 300


class SetupError(ValueError):
    """A setup list that cannot be used; `errors` maps the place (e.g. "tags[2]") to the problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))


def distortion_label(key: str) -> str:
    return DEPICTQA_DISTORTIONS[key][0] if key in DEPICTQA_DISTORTIONS else key.replace("_", " ").capitalize()


def distortion_phrase(key: str) -> str:
    """How a distortion is named in a DepictQA-style answer (a project's own key: its words)."""
    return DEPICTQA_DISTORTIONS[key][1] if key in DEPICTQA_DISTORTIONS else key.replace("_", " ")


def _unique_list(value: object, name: str, *, minimum: int, maximum: int, errors: dict[str, str]) -> list:
    if not isinstance(value, list):
        errors[name] = f"must be a list, not {type(value).__name__}"
        return []
    if not minimum <= len(value) <= maximum:
        errors[name] = f"must have {minimum} to {maximum} entries, has {len(value)}"
    return value


def tags_clean(value: object) -> list[str]:
    """Region tags: 1 to 10 distinct short names (number keys pick them) that Grounding-IQA's text form can
    carry, i.e. without brackets, parentheses, angle brackets or line breaks."""
    errors: dict[str, str] = {}
    tags = _unique_list(value, "tags", minimum=1, maximum=MAX_KEYED_CHOICES, errors=errors)
    seen: set[str] = set()
    for index, tag in enumerate(tags):
        place = f"tags[{index}]"
        if not isinstance(tag, str) or not tag.strip():
            errors[place] = f"must be a non-blank name, not {tag!r}"
        elif tag != tag.strip() or len(tag) > MAX_TAG_CHARS:
            errors[place] = f"{tag!r}: at most {MAX_TAG_CHARS} characters, no spaces around it"
        elif _FORBIDDEN_IN_TAG.search(tag):
            errors[place] = f"{tag!r} may not contain [ ] ( ) < > or line breaks"
        elif tag in seen:
            errors[place] = f"{tag!r} is listed twice"
        else:
            seen.add(tag)
    if errors:
        raise SetupError(errors)
    return list(tags)


def questions_clean(value: object) -> list[dict]:
    """Region questions: [{"key": "subject_sharp", "text": "Is the main subject sharp?", "kind": "yes_no"}].
    kind "yes_no" is answered yes or no; kind "region" by pointing at one of the rater's boxes (or none),
    Grounding-IQA's two VQA modes (a box in the question, a box in the answer)."""
    errors: dict[str, str] = {}
    questions = _unique_list(value, "region_questions", minimum=0, maximum=MAX_QUESTIONS, errors=errors)
    clean: list[dict] = []
    keys: set[str] = set()
    for index, question in enumerate(questions):
        place = f"region_questions[{index}]"
        if not isinstance(question, dict):
            errors[place] = f"must be an object with key, text and kind, not {question!r}"
            continue
        unknown = sorted(set(question) - {"key", "text", "kind"})
        if unknown:
            errors[place] = f"unknown field(s) {', '.join(unknown)}"
            continue
        key, text, kind = question.get("key"), question.get("text"), question.get("kind", "yes_no")
        if not isinstance(key, str) or not _KEY.match(key):
            errors[f"{place}.key"] = f"{key!r}: lower-case letters, digits and _, starting with a letter"
        elif key in keys:
            errors[f"{place}.key"] = f"{key!r} is used twice"
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_QUESTION_CHARS:
            errors[f"{place}.text"] = f"must be 1 to {MAX_QUESTION_CHARS} characters of text"
        if kind not in QUESTION_KINDS:
            errors[f"{place}.kind"] = f"{kind!r} is not one of {', '.join(QUESTION_KINDS)}"
        if not any(k.startswith(place) for k in errors):
            keys.add(key)
            clean.append({"key": key, "text": text.strip(), "kind": kind})
    if errors:
        raise SetupError(errors)
    return clean


def distortions_clean(value: object) -> list[str]:
    """Distortion keys (DepictQA-Wild's twelve by default; a project may add its own snake_case keys)."""
    errors: dict[str, str] = {}
    keys = _unique_list(value, "distortions", minimum=1, maximum=MAX_DISTORTIONS, errors=errors)
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not _KEY.match(key):
            errors[f"distortions[{index}]"] = f"{key!r}: lower-case letters, digits and _, starting with a letter"
        elif key in seen:
            errors[f"distortions[{index}]"] = f"{key!r} is listed twice"
        else:
            seen.add(key)
    if errors:
        raise SetupError(errors)
    return list(keys)


def severities_clean(value: object) -> list[str]:
    """Severity names from the mildest to the worst, 2 to 10 of them (number keys pick them)."""
    errors: dict[str, str] = {}
    names = _unique_list(value, "severities", minimum=2, maximum=MAX_KEYED_CHOICES, errors=errors)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str) or not re.match(r"^[a-z][a-z -]{0,29}$", name):
            errors[f"severities[{index}]"] = f"{name!r}: a lower-case word of at most 30 letters"
        elif name in seen:
            errors[f"severities[{index}]"] = f"{name!r} is listed twice"
        else:
            seen.add(name)
    if errors:
        raise SetupError(errors)
    return list(names)
