"""The default pre-scorer, "cpu-multihead": a small deep ensemble over hand-crafted image features.

    from realqa_model import cpu_scorer, features, registry

    X = features.extract_many(paths)                                   # (N, D), cacheable per image
    scorer = cpu_scorer.train(schema, X, labels, cpu_scorer.CpuScorerConfig(epochs=200))
    predictions = scorer.score_features(X_new)                         # list[ImagePrediction]
    scorer.save("var/models/realqa/3");  same = registry.load("var/models/realqa/3")

Architecture: features standardised with the training set's statistics feed a shared MLP trunk and one
output head per schema field: a softmax over the choices for ``ordinal`` and ``nominal`` fields, one
regression output for ``integer`` and ``continuous`` fields (trained on the label standardised per field,
predicted clipped to the field's min..max). ``text`` fields are not predicted. ``ensemble_size`` members
with their own seeds (initialisation, batch order, dropout) are trained side by side as one batched
network; their disagreement is the uncertainty:

* choice field: value = the most probable choice of the members' mean distribution; confidence = its
  probability; uncertainty = 1 - confidence; normalised uncertainty = uncertainty / (1 - 1/choices).
* score field: value = mean of the members (rounded to an int for ``integer`` fields, to ``step`` for
  ``continuous`` ones); uncertainty = standard deviation of the members, in score units; normalised
  uncertainty = min(1, sd / sd of the training labels); confidence = 1 - normalised uncertainty.

``ImagePrediction.uncertainty`` is the mean normalised uncertainty over the predicted fields (0..1), and
``ImagePrediction.embedding`` the first member's last hidden layer (``hidden_size`` floats, at most 64).
Labels are consensus values per image, any field may be missing (losses are masked); a field with fewer
than ``min_labels_per_field`` labels is not predicted at all rather than guessed.

An untrained scorer (``registry.create("cpu-multihead", schema=...)``) predicts nothing: ``score`` raises
UntrainedScorerError. :meth:`CpuScorer.embed_features` works before training (features standardised with
:data:`realqa_model.features.NOMINAL_CENTER`/``NOMINAL_SCALE`` and projected to 64 dimensions), for
diverse cold-start batches.

A checkpoint is a folder: ``config.json`` (scorer name, schema, configuration, feature statistics,
FEATURES_VERSION, training summary, version) and ``model.safetensors``. Loading reads JSON and
safetensors only; nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import numbers
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from realqa_model import features as feature_module
from realqa_model import registry
from realqa_model.scoring import FieldPrediction, ImageInput, ImagePrediction

__all__ = [
    "CHECKPOINT_FORMAT",
    "CONFIG_FILE",
    "NAME",
    "WEIGHTS_FILE",
    "CheckpointError",
    "CpuScorer",
    "CpuScorerConfig",
    "LabelError",
    "UntrainedScorerError",
    "collect_labels",
    "create",
    "heads_from_schema",
    "load",
    "train",
]

NAME = "cpu-multihead"
CONFIG_FILE = registry.CONFIG_FILE
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_FORMAT = 1
EMBEDDING_MAX = 64

CHOICE_KINDS = frozenset({"ordinal", "nominal"})
SCORE_KINDS = frozenset({"integer", "continuous"})
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")


class CheckpointError(ValueError):
    """A checkpoint folder that is not a valid cpu-multihead checkpoint; the message says what is wrong."""


class LabelError(ValueError):
    """Training labels that do not fit the schema; the message names the image index and the field."""


class UntrainedScorerError(RuntimeError):
    """Raised by score/score_features of a scorer that has not been trained."""


@dataclass(frozen=True)
class CpuScorerConfig:
    hidden_size: int = 64  # width of the trunk; the embedding is this long (capped at 64)
    layers: int = 2  # hidden layers in the trunk
    dropout: float = 0.1
    ensemble_size: int = 5
    epochs: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05  # keeps choice probabilities from saturating, so confidence means something
    feature_clip: float = 10.0  # standardised features are clipped to +-this, so one wild value cannot explode
    min_labels_per_field: int = 5  # a field with fewer labels is not predicted
    seed: int = 0

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("hidden_size", _is_int(self.hidden_size) and self.hidden_size >= 1, "an int >= 1"),
            ("layers", _is_int(self.layers) and self.layers >= 1, "an int >= 1"),
            ("dropout", _is_real(self.dropout) and 0.0 <= self.dropout < 1.0, "a number in [0, 1)"),
            ("ensemble_size", _is_int(self.ensemble_size) and self.ensemble_size >= 1, "an int >= 1"),
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "an int >= 1"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("lr", _is_real(self.lr) and self.lr > 0, "a number > 0"),
            ("weight_decay", _is_real(self.weight_decay) and self.weight_decay >= 0, "a number >= 0"),
            ("label_smoothing", _is_real(self.label_smoothing) and 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("feature_clip", _is_real(self.feature_clip) and self.feature_clip > 0, "a number > 0"),
            (
                "min_labels_per_field",
                _is_int(self.min_labels_per_field) and self.min_labels_per_field >= 1,
                "an int >= 1",
            ),
            ("seed", _is_int(self.seed) and self.seed >= 0, "an int >= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"CpuScorerConfig.{name} must be {expected}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CpuScorerConfig:
        if not isinstance(data, Mapping):
            raise ValueError(f"a scorer config must be an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown CpuScorerConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# --- schema ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    """What the model predicts for one schema field."""

    key: str
    kind: str
    choices: tuple[Any, ...] = ()  # choice values, in schema order
    applicable: tuple[bool, ...] = ()  # False for not_applicable choices (off the ordinal scale)
    minimum: float = 0.0
    maximum: float = 1.0
    step: float | None = None

    @property
    def is_choice(self) -> bool:
        return self.kind in CHOICE_KINDS

    @property
    def width(self) -> int:
        return len(self.choices) if self.is_choice else 1

    def to_json(self) -> dict[str, Any]:
        if self.is_choice:
            return {
                "key": self.key,
                "kind": self.kind,
                "choices": list(self.choices),
                "applicable": list(self.applicable),
            }
        return {"key": self.key, "kind": self.kind, "min": self.minimum, "max": self.maximum, "step": self.step}


def heads_from_schema(schema: Mapping[str, Any]) -> list[_Head]:
    """The predicted fields of a schema (every field but ``text``), checked as far as the model needs."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), list):
        raise ValueError("schema: expected an object with a 'fields' list")
    heads: list[_Head] = []
    seen: set[str] = set()
    for index, field in enumerate(schema["fields"]):
        where = f"schema.fields[{index}]"
        if not isinstance(field, Mapping):
            raise ValueError(f"{where}: expected an object")
        key, kind = field.get("key"), field.get("kind")
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}.key: expected a non-empty string, got {key!r}")
        where = f"schema field {key!r}"
        if key in seen:
            raise ValueError(f"{where}: duplicate key")
        seen.add(key)
        if kind == "text":
            continue
        if kind in CHOICE_KINDS:
            choices = field.get("choices")
            if not isinstance(choices, list) or len(choices) < 2:
                raise ValueError(f"{where}.choices: a {kind} field needs at least two choices")
            values = []
            for choice_index, choice in enumerate(choices):
                if not isinstance(choice, Mapping) or "value" not in choice:
                    raise ValueError(f"{where}.choices[{choice_index}]: expected an object with a 'value'")
                values.append(choice["value"])
            if len({json.dumps(v) for v in values}) != len(values):
                raise ValueError(f"{where}.choices: duplicate values")
            applicable = tuple(not bool(choice.get("not_applicable", False)) for choice in choices)
            heads.append(_Head(key=key, kind=kind, choices=tuple(values), applicable=applicable))
        elif kind in SCORE_KINDS:
            minimum, maximum, step = field.get("min"), field.get("max"), field.get("step")
            if not (_is_real(minimum) and _is_real(maximum)) or not minimum < maximum:
                raise ValueError(
                    f"{where}: a {kind} field needs numbers min < max, got min={minimum!r} max={maximum!r}"
                )
            if step is not None and not (_is_real(step) and step > 0):
                raise ValueError(f"{where}.step: expected a number > 0, got {step!r}")
            if step is None and kind == "integer":
                step = 1
            heads.append(
                _Head(
                    key=key,
                    kind=kind,
                    minimum=float(minimum),
                    maximum=float(maximum),
                    step=None if step is None else float(step),
                )
            )
        else:
            raise ValueError(f"{where}.kind: {kind!r} is not one of ordinal, nominal, integer, continuous, text")
    if not heads:
        raise ValueError("schema: no field the model can predict (only text fields)")
    return heads


def _label_value(head: _Head, value: Any, where: str) -> float | int | None:
    """A label as the model trains on it: the choice index, or the score; None when missing."""
    if isinstance(value, Mapping):  # the API's form for a field with a reason: {"value": ..., "reason": ...}
        value = value.get("value")
    if value is None:
        return None
    if head.is_choice:
        for index, choice in enumerate(head.choices):
            if value == choice and type(value) is not bool:
                return index
        offered = ", ".join(str(choice) for choice in head.choices)
        raise LabelError(f"{where}: {value!r} is not one of {offered}")
    if not _is_real(value):
        raise LabelError(f"{where}: expected a number from {head.minimum:g} to {head.maximum:g}, got {value!r}")
    tolerance = 1e-9 * (head.maximum - head.minimum)
    if not head.minimum - tolerance <= value <= head.maximum + tolerance:
        raise LabelError(f"{where}: {value!r} is outside {head.minimum:g}..{head.maximum:g}")
    return float(value)


def collect_labels(schema: Mapping[str, Any], labels: Sequence[Mapping[str, Any] | None]) -> dict[str, dict[int, Any]]:
    """Labels checked against the schema, per predicted field: image index -> choice index or score.

    Text fields are ignored, missing keys and None values are unlabelled; an unknown key or a value the
    field does not allow raises LabelError naming the image index and the field."""
    heads = {head.key: head for head in heads_from_schema(schema)}
    text_keys = {f.get("key") for f in schema["fields"] if isinstance(f, Mapping) and f.get("kind") == "text"}
    collected: dict[str, dict[int, Any]] = {key: {} for key in heads}
    for index, row in enumerate(labels):
        if row is None:
            continue
        if not isinstance(row, Mapping):
            raise LabelError(f"labels[{index}]: expected a mapping of field key to value, got {type(row).__name__}")
        for key, value in row.items():
            if key in text_keys:
                continue
            head = heads.get(key)
            if head is None:
                raise LabelError(f"labels[{index}]: unknown field {key!r}; the schema has {', '.join(heads)}")
            label = _label_value(head, value, f"labels[{index}][{key!r}]")
            if label is not None:
                collected[key][index] = label
    return collected


# --- network --------------------------------------------------------------------------------------------


class _EnsembleLinear(nn.Module):
    """K independent linear layers applied as one batched matmul: x (K, B, in) -> (K, B, out)."""

    def __init__(self, members: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(members, fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(members, 1, fan_out))

    def reset(self, generators: Sequence[torch.Generator]) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        with torch.no_grad():
            for member, generator in enumerate(generators):
                self.weight[member].uniform_(-math.sqrt(3.0) * bound, math.sqrt(3.0) * bound, generator=generator)
                self.bias[member].uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class _Ensemble(nn.Module):
    def __init__(self, config: CpuScorerConfig, inputs: int, outputs: int) -> None:
        super().__init__()
        sizes = [inputs] + [config.hidden_size] * config.layers
        self.trunk = nn.ModuleList(_EnsembleLinear(config.ensemble_size, a, b) for a, b in itertools.pairwise(sizes))
        self.head = _EnsembleLinear(config.ensemble_size, config.hidden_size, outputs)
        self.dropout = nn.Dropout(config.dropout)

    def reset(self, seed: int) -> None:
        # Member k draws from its own generator (seed, k), so members differ and each is reproducible.
        generators = [
            torch.Generator().manual_seed(seed * 1_000_003 + 7919 * member + 1)
            for member in range(self.head.weight.shape[0])
        ]
        for layer in [*self.trunk, self.head]:
            layer.reset(generators)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (K, B, D) -> (outputs (K, B, O), last hidden layer (K, B, H))."""
        hidden = x
        for layer in self.trunk:
            hidden = F.gelu(layer(hidden))
            hidden = self.dropout(hidden)
        return self.head(hidden), hidden


# --- the scorer -----------------------------------------------------------------------------------------


class CpuScorer:
    """A cpu-multihead scorer; make one with :func:`create`, :func:`train` or :func:`load`."""

    name = NAME

    def __init__(
        self,
        schema: Mapping[str, Any],
        config: CpuScorerConfig | None = None,
        *,
        _state: Mapping[str, Any] | None = None,
        _weights: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.schema: dict = json.loads(json.dumps(schema))  # a private, JSON-clean copy
        self.config = config or CpuScorerConfig()
        self._heads = heads_from_schema(self.schema)
        self._slices: dict[str, slice] = {}
        offset = 0
        for head in self._heads:
            self._slices[head.key] = slice(offset, offset + head.width)
            offset += head.width
        self._network = _Ensemble(self.config, feature_module.DIM, offset)
        state = dict(_state or {})
        self._feature_mean = np.asarray(state.get("feature_mean", feature_module.NOMINAL_CENTER), dtype=np.float32)
        self._feature_std = np.asarray(state.get("feature_std", feature_module.NOMINAL_SCALE), dtype=np.float32)
        # Per score field: the label mean and sd the regression output is scaled by (mid-range until trained).
        self._targets: dict[str, dict[str, float]] = {
            head.key: {"mean": (head.minimum + head.maximum) / 2, "std": (head.maximum - head.minimum) / 4}
            for head in self._heads
            if not head.is_choice
        }
        self._targets.update({key: dict(value) for key, value in state.get("targets", {}).items()})
        self.training_summary: dict[str, Any] | None = state.get("training")
        if _weights is None:
            self._network.reset(self.config.seed)
        else:
            self._network.load_state_dict(dict(_weights), strict=True)
        self._network.eval()
        self.version = self._compute_version()

    # -- public properties

    @property
    def trained(self) -> bool:
        return self.training_summary is not None

    @property
    def features_version(self) -> str:
        return feature_module.FEATURES_VERSION

    @property
    def predicted_fields(self) -> list[str]:
        """Keys of the fields predictions carry: every non-text field with enough training labels."""
        if not self.trained:
            return []
        fields = self.training_summary.get("fields", {})  # type: ignore[union-attr]
        return [head.key for head in self._heads if fields.get(head.key, {}).get("predicted", False)]

    def heads(self) -> list[dict[str, Any]]:
        """Description of every non-text field the network has an output for."""
        return [head.to_json() for head in self._heads]

    # -- inference

    def score(
        self, images: Sequence[ImageInput], *, batch_size: int = 16, workers: int | None = 1
    ) -> list[ImagePrediction]:
        """Extract features of ``images`` (paths, bytes or PIL images) and predict, ``batch_size`` at a time."""
        self._require_trained()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        predictions: list[ImagePrediction] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            predictions.extend(self.score_features(feature_module.extract_many(chunk, workers=workers)))
        return predictions

    def score_features(self, features: np.ndarray) -> list[ImagePrediction]:
        """Predictions from feature vectors (N, D) made by ``realqa_model.features`` of the same
        FEATURES_VERSION (``scorer.features_version``)."""
        self._require_trained()
        members, hidden = self._forward(features)
        return self._predictions(members, hidden)

    def predict_members(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Raw per-member outputs for analysis: choice field -> probabilities (K, N, choices); score field
        -> values in score units, clipped to min..max (K, N). All non-text fields, trained or not."""
        return self._forward(features)[0]

    def embed_features(self, features: np.ndarray) -> np.ndarray:
        """A small embedding (N, <= 64) for diverse batches. Trained: the first member's last hidden layer.
        Untrained: features standardised with the nominal statistics, projected to 64 dimensions."""
        x = self._check_features(features)
        if not self.trained:
            z = np.clip((x - feature_module.NOMINAL_CENTER) / feature_module.NOMINAL_SCALE, -5.0, 5.0)
            return (z @ _projection(z.shape[1], EMBEDDING_MAX)).astype(np.float32)
        return self._forward(x)[1]

    # -- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write config.json and model.safetensors into the folder ``path`` (created if needed). Files are
        written under temporary names and renamed, so a crash never leaves half a checkpoint."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        document = self._document()
        document["version"] = self.version
        weights = {name: tensor.detach().contiguous() for name, tensor in self._network.state_dict().items()}
        descriptor, temporary_weights = tempfile.mkstemp(dir=folder, prefix=".model.", suffix=".tmp")
        os.close(descriptor)
        descriptor, temporary_config = tempfile.mkstemp(dir=folder, prefix=".config.", suffix=".tmp")
        os.close(descriptor)
        try:
            save_file(weights, temporary_weights, metadata={"scorer": NAME, "version": self.version})
            Path(temporary_config).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
            os.replace(temporary_weights, folder / WEIGHTS_FILE)
            os.replace(temporary_config, folder / CONFIG_FILE)
        finally:
            for leftover in (temporary_weights, temporary_config):
                if os.path.exists(leftover):
                    os.unlink(leftover)

    # -- internals

    def _require_trained(self) -> None:
        if not self.trained:
            raise UntrainedScorerError(
                f"this {NAME} scorer has not been trained, so it has no predictions to give; train it "
                "(realqa_model.cpu_scorer.train or `python -m realqa_model train`) or load a trained checkpoint. "
                "embed_features() works without training."
            )

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != feature_module.DIM:
            raise ValueError(
                f"features must have shape (N, {feature_module.DIM}) from realqa_model.features "
                f"{feature_module.FEATURES_VERSION}, got {tuple(np.shape(features))}"
            )
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            raise ValueError(f"features row {int(bad[0])} holds NaN or infinity ({bad.size} rows in all)")
        return x

    def _standardise(self, x: np.ndarray) -> torch.Tensor:
        z = (x - self._feature_mean) / self._feature_std
        clip = self.config.feature_clip
        return torch.from_numpy(np.clip(z, -clip, clip).astype(np.float32))

    def _forward(self, features: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = self._check_features(features)
        members = self.config.ensemble_size
        self._network.eval()
        with torch.inference_mode(), _one_thread():
            z = self._standardise(x).unsqueeze(0).expand(members, -1, -1)
            outputs, hidden = self._network(z)
        outputs_np = outputs.numpy()
        result: dict[str, np.ndarray] = {}
        for head in self._heads:
            out = outputs_np[:, :, self._slices[head.key]]
            if head.is_choice:
                shifted = out - out.max(axis=2, keepdims=True)
                exp = np.exp(shifted)
                result[head.key] = exp / exp.sum(axis=2, keepdims=True)
            else:
                target = self._targets[head.key]
                values = out[:, :, 0].astype(np.float64) * target["std"] + target["mean"]
                result[head.key] = np.clip(values, head.minimum, head.maximum)
        embedding = hidden[0].numpy()
        if embedding.shape[1] > EMBEDDING_MAX:
            embedding = embedding @ _projection(embedding.shape[1], EMBEDDING_MAX)
        return result, embedding.astype(np.float32)

    def _predictions(self, members: dict[str, np.ndarray], embedding: np.ndarray) -> list[ImagePrediction]:
        count = embedding.shape[0]
        per_field: dict[str, list[FieldPrediction]] = {}
        normalised = np.zeros((count, 0))
        predicted = set(self.predicted_fields)
        for head in self._heads:
            if head.key not in predicted:
                continue
            if head.is_choice:
                probabilities = members[head.key].mean(axis=0)  # (N, C)
                best = probabilities.argmax(axis=1)
                confidence = probabilities[np.arange(count), best]
                uncertainty = 1.0 - confidence
                share = uncertainty / (1.0 - 1.0 / len(head.choices))
                per_field[head.key] = [
                    FieldPrediction(value=head.choices[int(b)], confidence=float(c), uncertainty=float(u))
                    for b, c, u in zip(best, confidence, uncertainty)
                ]
            else:
                values = members[head.key]  # (K, N)
                mean, spread = values.mean(axis=0), values.std(axis=0)
                share = np.minimum(1.0, spread / self._targets[head.key]["label_std"])
                per_field[head.key] = [
                    FieldPrediction(value=_rounded(head, float(m)), confidence=float(1.0 - s), uncertainty=float(u))
                    for m, s, u in zip(mean, share, spread)
                ]
            normalised = np.column_stack([normalised, share])
        overall = normalised.mean(axis=1) if normalised.shape[1] else np.zeros(count)
        return [
            ImagePrediction(
                fields={key: predictions[index] for key, predictions in per_field.items()},
                uncertainty=float(overall[index]),
                embedding=[float(v) for v in embedding[index]],
            )
            for index in range(count)
        ]

    def _document(self) -> dict[str, Any]:
        """Everything config.json holds except the version (which is a digest of this and the weights)."""
        return {
            "scorer": NAME,
            "format": CHECKPOINT_FORMAT,
            "features_version": feature_module.FEATURES_VERSION,
            "feature_names": list(feature_module.FEATURE_NAMES),
            "config": self.config.to_dict(),
            "schema": self.schema,
            "heads": [head.to_json() for head in self._heads],
            "feature_mean": [float(v) for v in self._feature_mean],
            "feature_std": [float(v) for v in self._feature_std],
            "targets": self._targets,
            "training": self.training_summary,
        }

    def _compute_version(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self._document(), sort_keys=True, separators=(",", ":")).encode())
        for name, tensor in sorted(self._network.state_dict().items()):
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(array.tobytes())
        return f"{NAME}:{digest.hexdigest()[:12]}"

    def __repr__(self) -> str:
        state = "trained" if self.trained else "untrained"
        return f"<CpuScorer {self.version} {state}, {len(self._heads)} heads>"


def _rounded(head: _Head, value: float) -> float | int:
    if head.kind == "integer":
        return int(round(value))
    if head.step:
        value = head.minimum + round((value - head.minimum) / head.step) * head.step
        # round() again drops float noise such as 6.700000000000001
        return round(min(max(value, head.minimum), head.maximum), 10)
    return value


_PROJECTIONS: dict[tuple[int, int], np.ndarray] = {}


def _projection(inputs: int, outputs: int) -> np.ndarray:
    """A fixed orthonormal projection (inputs -> outputs); identity when inputs <= outputs."""
    key = (inputs, outputs)
    if key not in _PROJECTIONS:
        if inputs <= outputs:
            _PROJECTIONS[key] = np.eye(inputs, dtype=np.float32)
        else:
            q, _ = np.linalg.qr(np.random.default_rng(20250311).standard_normal((inputs, outputs)))
            _PROJECTIONS[key] = q.astype(np.float32)
    return _PROJECTIONS[key]


# --- training -------------------------------------------------------------------------------------------


def train(
    schema: Mapping[str, Any],
    features: np.ndarray,
    labels: Sequence[Mapping[str, Any] | None],
    config: CpuScorerConfig | None = None,
    *,
    progress: Callable[[int, int, float], None] | None = None,
) -> CpuScorer:
    """Train a new scorer on features (N, D) and ``labels[i]``: image i's consensus values, field key ->
    choice value or number (or ``{"value": ...}``); missing keys and None are unlabelled. Text fields in
    labels are ignored; an unknown key or a value the schema does not allow raises LabelError naming
    the image index and field. ``progress(epochs done, epochs, last loss)`` is called after every epoch."""
    config = config or CpuScorerConfig()
    scorer = CpuScorer(schema, config)
    x = scorer._check_features(features)
    count = x.shape[0]
    if len(labels) != count:
        raise LabelError(f"{count} feature rows but {len(labels)} label rows")
    if count < 2:
        raise LabelError("training needs at least two labelled images")

    heads = scorer._heads
    collected = collect_labels(scorer.schema, labels)
    targets = {}
    for head in heads:
        column = np.full(count, -1 if head.is_choice else np.nan, dtype=np.int64 if head.is_choice else np.float64)
        for index, value in collected[head.key].items():
            column[index] = value
        targets[head.key] = column

    summary_fields: dict[str, dict[str, Any]] = {}
    target_stats: dict[str, dict[str, float]] = {}
    for head in heads:
        known = targets[head.key] >= 0 if head.is_choice else ~np.isnan(targets[head.key])
        n = int(known.sum())
        entry: dict[str, Any] = {"n": n, "predicted": n >= config.min_labels_per_field}
        if not entry["predicted"]:
            entry["reason"] = f"only {n} labels (needs {config.min_labels_per_field})"
        if head.is_choice:
            entry["counts"] = {str(c): int((targets[head.key] == i).sum()) for i, c in enumerate(head.choices)}
        else:
            values = targets[head.key][known]
            span = head.maximum - head.minimum
            mean = float(values.mean()) if n else (head.minimum + head.maximum) / 2
            label_std = float(values.std()) if n > 1 else 0.0
            # A floor, so a field where (nearly) every label agrees does not turn every wobble into "uncertain".
            std = max(label_std, 0.02 * span)
            target_stats[head.key] = {"mean": mean, "std": std, "label_std": max(label_std, 0.02 * span)}
            entry.update({"mean": round(mean, 6), "std": round(label_std, 6)})
        summary_fields[head.key] = entry
    if not any(entry["predicted"] for entry in summary_fields.values()):
        raise LabelError(
            f"no field has {config.min_labels_per_field} or more labels: "
            + ", ".join(f"{key} {entry['n']}" for key, entry in summary_fields.items())
        )

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    scorer._feature_mean, scorer._feature_std = mean.astype(np.float32), std
    scorer._targets = target_stats
    z = scorer._standardise(x)

    choice_targets = {
        h.key: torch.from_numpy(targets[h.key]) for h in heads if h.is_choice and summary_fields[h.key]["predicted"]
    }
    score_targets = {
        h.key: torch.from_numpy((targets[h.key] - target_stats[h.key]["mean"]) / target_stats[h.key]["std"]).float()
        for h in heads
        if not h.is_choice and summary_fields[h.key]["predicted"]
    }
    loss_value = _fit(scorer, z, choice_targets, score_targets, progress)

    scorer.training_summary = {
        "n_images": count,
        "epochs": config.epochs,
        "final_loss": round(loss_value, 6),
        "fields": summary_fields,
    }
    scorer._network.eval()
    scorer.version = scorer._compute_version()
    return scorer


def _fit(
    scorer: CpuScorer,
    z: torch.Tensor,
    choice_targets: dict[str, torch.Tensor],
    score_targets: dict[str, torch.Tensor],
    progress: Callable[[int, int, float], None] | None,
) -> float:
    config = scorer.config
    network = scorer._network
    members, count = config.ensemble_size, z.shape[0]
    batch = min(config.batch_size, count)
    steps_per_epoch = math.ceil(count / batch)
    optimiser = _AdamW(list(network.parameters()), weight_decay=config.weight_decay)
    total_steps = config.epochs * steps_per_epoch
    generators = [
        torch.Generator().manual_seed(config.seed * 1_000_003 + 104729 * member + 2) for member in range(members)
    ]
    loss_value = float("nan")
    # Dropout draws from the global generator: fork it so training is reproducible and leaves callers' RNG alone.
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(config.seed)
        network.train()
        for epoch in range(config.epochs):
            # Each member sees the data in its own order.
            order = torch.stack([torch.randperm(count, generator=g) for g in generators])  # (K, N)
            total, batches = 0.0, 0
            for start in range(0, count, batch):
                index = order[:, start : start + batch]  # (K, B)
                outputs, _ = network(z[index])
                loss = _loss(scorer, outputs, index, choice_targets, score_targets)
                if loss is None:
                    continue
                optimiser.zero_grad()
                # Summing over members keeps each member's gradient its own mean loss.
                (loss * members).backward()
                # Cosine decay from lr to 5% of it over the whole run.
                progress_share = optimiser.steps / max(1, total_steps - 1)
                optimiser.step(config.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_share)))))
                total += float(loss.detach())
                batches += 1
            if batches:
                loss_value = total / batches
            if progress is not None:
                progress(epoch + 1, config.epochs, loss_value)
        network.eval()
    return loss_value


class _AdamW:
    """AdamW (Loshchilov & Hutter), as torch.optim.AdamW with default betas. Written out because
    constructing any torch.optim optimiser imports torch._dynamo, which costs seconds in every fresh
    worker process, for a model whose whole training takes about that long."""

    def __init__(
        self,
        parameters: list[nn.Parameter],
        *,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameters = parameters
        self.weight_decay = weight_decay
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.steps += 1
        correction1 = 1.0 - self.beta1**self.steps
        correction2 = 1.0 - self.beta2**self.steps
        for parameter, first, second in zip(self.parameters, self.first, self.second):
            if parameter.grad is None:
                continue
            grad = parameter.grad
            parameter.mul_(1.0 - lr * self.weight_decay)
            first.mul_(self.beta1).add_(grad, alpha=1.0 - self.beta1)
            second.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
            denominator = (second / correction2).sqrt_().add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-lr / correction1)


class _one_thread:
    """Run torch single-threaded for the block: these matrices are tiny, so threads only add
    synchronisation (and spin-waiting against every other process on a busy machine)."""

    def __enter__(self) -> None:
        self._previous = torch.get_num_threads()
        if self._previous != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        if self._previous != 1:
            torch.set_num_threads(self._previous)


def _loss(
    scorer: CpuScorer,
    outputs: torch.Tensor,
    index: torch.Tensor,
    choice_targets: dict[str, torch.Tensor],
    score_targets: dict[str, torch.Tensor],
) -> torch.Tensor | None:
    """Sum over fields of each field's mean loss over the labelled images in the batch (masked)."""
    terms: list[torch.Tensor] = []
    for key, target in choice_targets.items():
        t = target[index]  # (K, B)
        mask = t >= 0
        if bool(mask.any()):
            logits = outputs[:, :, scorer._slices[key]][mask]
            terms.append(F.cross_entropy(logits, t[mask], label_smoothing=scorer.config.label_smoothing))
    for key, target in score_targets.items():
        t = target[index]
        mask = ~torch.isnan(t)
        if bool(mask.any()):
            prediction = outputs[:, :, scorer._slices[key].start][mask]
            terms.append(F.mse_loss(prediction, t[mask]))
    if not terms:
        return None
    return torch.stack(terms).sum()


# --- registry hooks -------------------------------------------------------------------------------------


def create(*, schema: Mapping[str, Any], config: CpuScorerConfig | Mapping[str, Any] | None = None) -> CpuScorer:
    """A new, untrained scorer for ``schema`` (registry.create("cpu-multihead", schema=..., config=...))."""
    if config is not None and not isinstance(config, CpuScorerConfig):
        config = CpuScorerConfig.from_dict(config)
    return CpuScorer(schema, config)


def load(path: str | os.PathLike[str]) -> CpuScorer:
    """A saved scorer. Reads config.json and model.safetensors only; never unpickles anything.

    Raises CheckpointError naming the file and what is wrong with it."""
    folder = Path(path)
    config_file = folder / CONFIG_FILE
    weights_file = folder / WEIGHTS_FILE
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG_FILE}; not a saved scorer")
    if not weights_file.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{folder}: holds {', '.join(pickles)} but no {WEIGHTS_FILE}; {NAME} reads weights only from "
                "safetensors and never unpickles a file"
            )
        raise CheckpointError(f"{folder}: no {WEIGHTS_FILE}")
    try:
        document = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object")
    problem = _document_problem(document)
    if problem:
        raise CheckpointError(f"{config_file}: {problem}")
    head = weights_file.read_bytes()[:8]
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise CheckpointError(
            f"{weights_file}: is a pickle or torch.save archive, not safetensors; {NAME} never unpickles a file"
        )
    try:
        weights = load_file(weights_file)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_file}: not a readable safetensors file: {exc}") from exc
    try:
        config = CpuScorerConfig.from_dict(document["config"])
        state = {
            "feature_mean": document["feature_mean"],
            "feature_std": document["feature_std"],
            "targets": document["targets"],
            "training": document["training"],
        }
        scorer = CpuScorer(
            document["schema"], config, _state=state, _weights=_checked_weights(weights, config, document)
        )
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{folder}: {exc}") from exc
    if [h.to_json() for h in scorer._heads] != document["heads"]:
        raise CheckpointError(f"{config_file}: 'heads' do not match the fields of its schema")
    recorded = document.get("version")
    if recorded is not None and recorded != scorer.version:
        raise CheckpointError(
            f"{folder}: config.json records version {recorded} but its contents digest to {scorer.version}; "
            "the files were changed after saving"
        )
    return scorer


def _document_problem(document: dict[str, Any]) -> str | None:
    if document.get("scorer") != NAME:
        return f"'scorer' is {document.get('scorer')!r}, not {NAME!r}"
    if document.get("format") != CHECKPOINT_FORMAT:
        return f"checkpoint format {document.get('format')!r} is not the supported {CHECKPOINT_FORMAT}"
    if document.get("features_version") != feature_module.FEATURES_VERSION:
        return (
            f"trained on features {document.get('features_version')!r}, but this code computes "
            f"{feature_module.FEATURES_VERSION!r}; retrain the scorer"
        )
    if document.get("feature_names") != list(feature_module.FEATURE_NAMES):
        return "'feature_names' differ from the features this code computes; retrain the scorer"
    for key, kind in (("config", dict), ("schema", dict), ("heads", list), ("targets", dict)):
        if not isinstance(document.get(key), kind):
            return f"{key!r} missing or not a JSON {kind.__name__}"
    for key in ("feature_mean", "feature_std"):
        values = document.get(key)
        if not isinstance(values, list) or len(values) != feature_module.DIM or not all(_is_real(v) for v in values):
            return f"{key!r} must be a list of {feature_module.DIM} finite numbers"
    if not all(v > 0 for v in document["feature_std"]):
        return "'feature_std' must be positive"
    if "training" not in document or not (document["training"] is None or isinstance(document["training"], dict)):
        return "'training' missing (null for an untrained scorer, else the training summary)"
    for key, stats in document["targets"].items():
        if not isinstance(stats, dict) or not all(_is_real(stats.get(s)) for s in ("mean", "std")) or stats["std"] <= 0:
            return f"targets[{key!r}] needs numbers mean and std > 0"
        if document["training"] is not None and not (_is_real(stats.get("label_std")) and stats["label_std"] > 0):
            return f"targets[{key!r}] needs a number label_std > 0"
    return None


def _checked_weights(
    weights: dict[str, torch.Tensor], config: CpuScorerConfig, document: dict
) -> dict[str, torch.Tensor]:
    expected = _Ensemble(
        config, feature_module.DIM, sum(len(h["choices"]) if "choices" in h else 1 for h in document["heads"])
    ).state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{WEIGHTS_FILE}: tensors missing {missing}, unexpected {unexpected}")
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape or weights[name].dtype != torch.float32:
            raise CheckpointError(
                f"{WEIGHTS_FILE}: {name} is {weights[name].dtype} {tuple(weights[name].shape)}, "
                f"expected float32 {tuple(tensor.shape)} for this config"
            )
        if not bool(torch.isfinite(weights[name]).all()):
            raise CheckpointError(f"{WEIGHTS_FILE}: {name} holds NaN or infinity")
    return weights


registry.register(NAME, create=create, load=load)
