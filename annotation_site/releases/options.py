"""What a release may be asked for, checked before anything is written."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from annotation_site.schemas.spec import SchemaSpec
from annotation_site.statistics.splits import validate_ratios

DEFAULT_RATIOS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
IMAGE_MODES = ("copy", "reference")
# Split names become file names (data/train.parquet, conversations/train_cot.json).
SPLIT_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_RESAMPLES = 100_000


class ReleaseError(ValueError):
    """A release cannot be made as asked; the message names the problem."""


@dataclass(frozen=True)
class ReleaseOptions:
    """seed: the splits and the bootstrap draw from it. ratios: split name -> share (summing to 1).
    resamples: bootstrap resamples of each alpha interval. images: "copy" the photos into the release or
    "reference" them where they are stored. reassign_splits: split afresh instead of keeping the splits of the
    project's previous release. score_field: the overall score that stratifies the splits, fills the pyiqa
    `mos` column and closes the chain-of-thought answer (default: the schema's first overall score field).
    split_half_splits: random halvings averaged in the split-half correlation."""

    seed: int = 0
    ratios: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATIOS))
    resamples: int = 1000
    images: str = "copy"
    reassign_splits: bool = False
    score_field: str = ""
    split_half_splits: int = 100

    def to_dict(self) -> dict:
        return asdict(self)


def parse_ratios(text: str) -> dict[str, float]:
    """"train=0.8,validation=0.1,test=0.1" as a dict; ReleaseError naming the bad part."""
    ratios: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ReleaseError(f"ratios: {part!r} is not name=share (e.g. train=0.8,validation=0.1,test=0.1)")
        try:
            ratios[name.strip()] = float(value)
        except ValueError:
            raise ReleaseError(f"ratios: the share of {name.strip()!r} must be a number, got {value.strip()!r}") from None
    if not ratios:
        raise ReleaseError("ratios: give at least one split, e.g. train=0.8,validation=0.1,test=0.1")
    return ratios


def _integer(raw: dict, key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReleaseError(f"{key} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ReleaseError(f"{key} must be between {low} and {high}, got {value}")
    return value


def release_options_clean(raw: dict | None, *, spec: SchemaSpec) -> ReleaseOptions:
    """Validate options given as a dict (from the command, the admin or a stored release) against the schema.

    Raises ReleaseError naming the first problem; unknown keys are refused so a typo never goes unnoticed."""
    raw = dict(raw or {})
    known = set(ReleaseOptions.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ReleaseError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    seed = _integer(raw, "seed", 0, 0, 2**32 - 1)
    resamples = _integer(raw, "resamples", 1000, 1, MAX_RESAMPLES)
    split_half_splits = _integer(raw, "split_half_splits", 100, 1, 10_000)

    ratios_raw = raw.get("ratios", DEFAULT_RATIOS)
    if isinstance(ratios_raw, str):
        ratios_raw = parse_ratios(ratios_raw)
    try:
        ratios = validate_ratios(ratios_raw)
    except ValueError as exc:
        raise ReleaseError(f"ratios: {exc}") from None
    for name in ratios:
        if not SPLIT_NAME_RE.fullmatch(name):
            raise ReleaseError(
                f"ratios: split name {name!r} must be lower-case letters, digits, _ or -, starting with a letter"
            )

    images = raw.get("images", "copy")
    if images not in IMAGE_MODES:
        raise ReleaseError(f"images must be one of {', '.join(IMAGE_MODES)}, got {images!r}")
    reassign = raw.get("reassign_splits", False)
    if not isinstance(reassign, bool):
        raise ReleaseError(f"reassign_splits must be true or false, got {reassign!r}")

    overall = [f.key for f in spec.fields if f.level == "overall" and f.is_score]
    scores = [f.key for f in spec.fields if f.is_score]
    score_field = raw.get("score_field") or ""
    if not score_field:
        # A schema without score fields still releases: its splits are unstratified and it has no pyiqa file or
        # chain-of-thought answers.
        score_field = overall[0] if overall else (scores[0] if scores else "")
    elif score_field not in scores:
        raise ReleaseError(
            f"score_field {score_field!r} is not a score field of the schema (score fields: {', '.join(scores) or 'none'})"
        )
    return ReleaseOptions(
        seed=seed,
        ratios=ratios,
        resamples=resamples,
        images=images,
        reassign_splits=reassign,
        score_field=score_field,
        split_half_splits=split_half_splits,
    )
