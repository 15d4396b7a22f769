"""What every scorer returns: per image, a value per schema field with a confidence, one overall
uncertainty for ranking images, and an embedding for diversity. Pure Python, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence


@dataclass(frozen=True)
class FieldPrediction:
    value: Any  # a choice value, a number, or text, as the schema field expects
    confidence: float  # 0..1: the probability of the predicted choice / of the score's digits
    uncertainty: float  # >= 0: ensemble spread (scores, in score units) or 1 - confidence (choices)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(float(self.confidence), 6), "uncertainty": round(float(self.uncertainty), 6)}


@dataclass(frozen=True)
class ImagePrediction:
    fields: dict[str, FieldPrediction]
    uncertainty: float  # one number to rank images by (mean normalised field uncertainty)
    embedding: list[float] = field(default_factory=list)  # small (<= 64 floats), for diverse batches
    errors: dict[str, str] = field(default_factory=dict)  # field key -> why its value is None (an unreadable answer)

    def values_json(self) -> dict[str, dict[str, Any]]:
        return {key: prediction.to_json() for key, prediction in self.fields.items()}


ImageInput = Any  # a path, bytes, or a PIL image


class Scorer(Protocol):
    version: str  # stable for the same weights: "<scorer name>:<short digest of config and weights>"
    schema: dict

    def score(self, images: Sequence[ImageInput], *, batch_size: int = 16) -> list[ImagePrediction]: ...

    def save(self, path: Any) -> None: ...
