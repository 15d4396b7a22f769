"""The RealQA scorer on a multimodal LLM: a local Qwen2-VL (or Qwen2.5-VL) checkpoint asked about each image.

    from realqa_model.mllm_scorer import MllmScorer, MllmScorerConfig
    scorer = MllmScorer.from_pretrained("var/models/qwen2-vl-realqa", MllmScorerConfig(schema=schema))
    predictions = scorer.score(["a.jpg", "b.jpg"])          # list[ImagePrediction], one per image
    registry.create("qwen2-vl", path=..., schema=schema)    # the same, by name

The checkpoint is read from a folder with ``local_files_only=True`` (never from a hub) and its weights as
safetensors. Two ways of asking, as in RealQA ("Next Token Is Enough", arXiv 2503.06141):

* ``mode="fields"`` (default): one question per schema field, :func:`~realqa_model.prompts.field_question`,
  in Qwen2-VL's chat format with the image where the question's ``<image>`` stands (as LLaMA-Factory, which
  RealQA trained with, places it).

  - **score fields** (integer, continuous): the answer sentence of
    :func:`~realqa_model.prompts.answer_text` is given up to the number ("The overall quality score of this
    image is ") and the model writes the number greedily. With ``constrained=True`` (default) only digits
    that can still make a number of the answer form inside the field's range are allowed (``X.XX`` for
    continuous fields, a whole number for integer ones), so a score always comes back; with
    ``constrained=False`` the model answers freely and the number is found in its text. Either way the
    value is RealQA's numeric-consistency expectation: at every written digit the softmax over the ten
    digit tokens' *raw* logits, E[int] + 0.1 E[d1] + 0.01 E[d2] (:func:`~realqa_model.numeric.
    digit_expectation`), with its confidence; integer fields round it. The expectation is clamped into
    the field's range (a confident "1.00" can expect 0.98).
  - **choice fields** (ordinal, nominal): the model's likelihood of each choice's whole answer
    continuation (" good." after "The image clarity of this image is"), normalised over the choices: the
    most likely choice is the value and its probability the confidence.
  - **text fields**: the greedy answer; confidence = the geometric mean probability of its tokens.

* ``mode="cot"``: :func:`~realqa_model.prompts.cot_question` once per image, the answer read with
  :func:`~realqa_model.prompts.parse_cot_answer`. The final score ("The final score is <6.59>.") goes to
  ``final_key`` with its digit expectation; the attribute items to their fields (scores by digit
  expectation, choices with the probability of the written label's tokens, text with the geometric mean).

A malformed answer never fails the batch: the field's value is None, its confidence 0, and
``ImagePrediction.errors[key]`` says why. Unreadable images and a bad checkpoint or schema raise at once,
naming the problem.

Implementation notes (transformers 5.23): every request passes ``mm_token_type_ids`` (1 at image tokens),
without which ``generate`` silently gives the image tokens 1-D positions instead of Qwen2-VL's M-RoPE
ones; the vision tower runs once per image and its output is reused by every question
(``mm_encoder_outputs``). The prompt is built here (Qwen2-VL's ``<|im_start|>`` format with the default
system prompt) from the tokenizer and image processor, so a checkpoint whose ``AutoProcessor`` does not
load (it needs torchvision for the video part) works the same.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutputWithPooling

from realqa_model import registry
from realqa_model.numeric import digit_expectation
from realqa_model.prompts import IMAGE_TOKEN, answer_text, cot_question, field_question, parse_cot_answer
from realqa_model.scoring import FieldPrediction, ImagePrediction

__all__ = ["NAME", "MllmScorer", "MllmScorerConfig"]

logger = logging.getLogger(__name__)

#: The registry name, and the prefix of every version string.
NAME = "qwen2-vl"
#: Marker written by :meth:`MllmScorer.save` (and read by ``registry.load``).
MARKER_FILE = registry.MARKER_FILE
#: transformers ``model_type`` -> the class that loads it.
MODEL_CLASSES = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
#: Qwen2-VL's default system prompt, which LLaMA-Factory's qwen2_vl template (RealQA's) also uses.
SYSTEM_PROMPT = "You are a helpful assistant."
#: Length of ``ImagePrediction.embedding``.
EMBEDDING_SIZE = 64

_MODES = ("fields", "cot")
_DEVICES = ("auto", "cpu", "cuda")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_CHOICE_KINDS = ("ordinal", "nominal")
_SCORE_KINDS = ("integer", "continuous")
_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>")
# Files whose content decides the answers; the version digests them (not README, not our marker).
_VERSIONED_FILES = (
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
)
_NUMBER_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_BRACKETS_RE = re.compile(r"<([^<>]*)>")
_PLAIN_RE = re.compile(r"score of this image is\s+(\S+)", re.IGNORECASE)
_FINAL_RE = re.compile(r"The final score is\s*<[^<>]*>\s*\.?\s*\Z", re.IGNORECASE)
# An item of the chain-of-thought template: "2.1 Subject Integrity: " (see prompts.cot_answer).
_ITEM_RE = re.compile(r"(?:^|,\s+|\s*\n\s*)[0-9]+\.[0-9]+\s+([^:\n]+?)\s*:\s*")


@dataclass
class MllmScorerConfig:
    """How to load and ask the model. Every field has a default except the schema, which must come from
    here or from the ``schema`` argument of :meth:`MllmScorer.from_pretrained`."""

    path: str | None = None  # the checkpoint folder (or pass it to from_pretrained)
    schema: dict | None = None  # the platform schema dict (fixtures/realqa_schema.json's shape)
    device: str = "auto"  # "auto" and "cuda" use CUDA when there is one, else the CPU; "cpu"
    dtype: str = "auto"  # "auto" (float32 on CPU, bfloat16/float16 on CUDA), "float32", "bfloat16", "float16"
    batch_size: int = 8  # images per model call
    max_new_tokens: int | None = None  # free answers (text fields, unconstrained scores, CoT); None: 64 / 1024
    digits: int = 2  # decimals of a continuous score (RealQA's "two extra significant digits")
    mode: str = "fields"  # "fields": a question per field; "cot": one chain-of-thought question
    constrained: bool = True  # fields mode: write only well-formed in-range numbers
    final_key: str | None = None  # cot mode: the field of "The final score"; None: the last overall continuous
    min_pixels: int = 32 * 32  # image size bounds, as LLaMA-Factory's image_min_pixels / image_max_pixels
    max_pixels: int = 768 * 768

    def __post_init__(self) -> None:
        if self.device not in _DEVICES:
            raise ValueError(f"device must be one of {', '.join(_DEVICES)}, got {self.device!r}")
        if self.dtype != "auto" and self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be auto or one of {', '.join(_DTYPES)}, got {self.dtype!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {self.mode!r}")
        for name, low, high in (("batch_size", 1, 4096), ("digits", 0, 4), ("max_new_tokens", 1, 65536)):
            value = getattr(self, name)
            if value is None and name == "max_new_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an int from {low} to {high}, got {value!r}")
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 28 * 28:
                raise ValueError(f"{name} must be an int of at least {28 * 28} (one 28x28 patch), got {value!r}")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels {self.min_pixels} is above max_pixels {self.max_pixels}")
        if not isinstance(self.constrained, bool):
            raise ValueError(f"constrained must be true or false, got {self.constrained!r}")

    def settings(self) -> dict[str, Any]:
        """Everything but the path and the schema, as JSON-able values (what :meth:`MllmScorer.save` keeps)."""
        return {key: value for key, value in asdict(self).items() if key not in ("path", "schema")}


@dataclass(frozen=True)
class _FieldPlan:
    """How one schema field is asked and read; built once, so a bad schema fails at load."""

    key: str
    kind: str
    question: str
    prefill: str = ""  # the start of the answer sentence, given to the model (score and choice fields)
    choices: tuple[tuple[str, str], ...] = ()  # (value, continuation) for choice fields
    low: float = 0.0
    high: float = 0.0


@dataclass
class _Answer:
    """One generated answer with what the scorer needs to read it."""

    text: str  # prefill + generated text
    offsets: list[tuple[int, int]]  # character span in ``text`` of each generated token
    token_ids: list[int]  # generated tokens, without the end token
    logprobs: list[float]  # the model's (unconstrained) log-probability of each generated token
    digit_logits: torch.Tensor  # (tokens, 10): raw logits of the ten digit tokens at each generated token


@dataclass
class _Batch:
    images: int
    grid: torch.Tensor  # (images, 3) image_grid_thw
    features: tuple[torch.Tensor, ...]  # per image: the vision tower's output, (visual tokens, hidden)
    pads: list[int]  # visual tokens per image


class MllmScorer:
    """A RealQA scorer over a local Qwen2-VL checkpoint. Make one with :meth:`from_pretrained` (or
    ``registry.create("qwen2-vl", path=..., schema=...)``), then call :meth:`score`.

    Attributes: ``schema`` (the dict), ``config`` (:class:`MllmScorerConfig`), ``path`` (the checkpoint
    folder), ``device`` (torch.device), ``version`` ("qwen2-vl:" + 12 hex digits: a digest of the
    checkpoint's config, tokenizer and image-processor files, its weights, and the questions and settings
    that shape the answers; the same for the same checkpoint and settings, on any machine).
    """

    def __init__(self, *, model: Any, tokenizer: Any, image_processor: Any, path: Path, config: MllmScorerConfig,
                 schema: Mapping[str, Any], device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.path = path
        self.config = config
        self.schema = dict(schema)
        self.device = device
        self._plans = _plan_fields(self.schema)
        self._final_key = _final_key(self.schema, config.final_key) if config.mode == "cot" else None
        self._token_ids(model.config)
        self._merge = int(model.config.vision_config.spatial_merge_size)
        self._projection: torch.Tensor | None = None
        self.version = f"{NAME}:{_digest(path, self._prompt_identity())}"

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, config: MllmScorerConfig | None = None, *,
                        schema: Mapping[str, Any] | None = None) -> MllmScorer:
        """Load the checkpoint in the folder ``path`` (or ``config.path``); never touches the network.

        Raises:
            FileNotFoundError: the folder, its config.json or its safetensors weights are missing.
            ValueError: the folder is not a Qwen2-VL / Qwen2.5-VL checkpoint, its tokenizer lacks the
                Qwen2-VL special tokens or single-token digits, no schema was given, or the schema is
                malformed.
        """
        config = config if config is not None else MllmScorerConfig()
        if path is None:
            path = config.path
        if path is None:
            raise ValueError("no checkpoint path: pass path or set MllmScorerConfig.path")
        path = Path(path).expanduser().resolve()
        schema = schema if schema is not None else config.schema
        if schema is None:
            raise ValueError("no schema: pass schema= or set MllmScorerConfig.schema (the platform's schema dict)")
        model_class = _checkpoint_class(path)

        import transformers

        if not hasattr(transformers, model_class):
            raise ValueError(f"{path}: this transformers {transformers.__version__} has no {model_class}")
        device = _pick_device(config.device)
        dtype = _pick_dtype(config.dtype, device)
        tokenizer, image_processor = _load_processing(path)
        try:
            model = getattr(transformers, model_class).from_pretrained(
                path, local_files_only=True, use_safetensors=True, dtype=dtype
            )
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: the {model_class} weights do not load: {error}") from error
        model.to(device).eval()
        # generate() fills unset options from the checkpoint's generation_config (Qwen2-VL-Instruct's has a
        # repetition penalty and sampling settings); this scorer decides them all, and reads raw logits.
        model.generation_config = GenerationConfig()
        return cls(model=model, tokenizer=tokenizer, image_processor=image_processor, path=path,
                   config=config, schema=schema, device=device)

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> MllmScorer:
        """A scorer saved with :meth:`save`: ``path/realqa_scorer.json`` names the checkpoint (relative to
        ``path``), the schema and the settings; ``overrides`` replace settings (e.g. device="cpu")."""
        path = Path(path)
        marker = path / MARKER_FILE
        if not marker.is_file():
            if (path / "config.json").is_file():
                raise ValueError(
                    f"{path} is a model checkpoint without {MARKER_FILE}: a {NAME} scorer also needs the "
                    f"schema to ask about. Create it with registry.create({NAME!r}, path=..., schema=...) "
                    "and keep it with scorer.save(folder)"
                )
            raise FileNotFoundError(f"{path} holds no {MARKER_FILE}; it is not a saved {NAME} scorer")
        try:
            saved = json.loads(marker.read_text())
            checkpoint = (path / saved["checkpoint"]).resolve()
            settings = {**saved.get("settings", {}), **overrides}
            config = MllmScorerConfig(**settings)
            schema = saved["schema"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{marker}: not a {NAME} scorer file: {error}") from error
        return cls.from_pretrained(checkpoint, config, schema=schema)

    def save(self, path: str | Path) -> None:
        """Keep this scorer in the folder ``path`` (created): ``realqa_scorer.json`` holds the checkpoint
        folder (relative to ``path``), the schema, the settings and the version. The checkpoint is not
        copied; ``registry.load(path)`` and :meth:`load` read it back."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        content = {
            "scorer": NAME,
            "checkpoint": os.path.relpath(self.path, path.resolve()),
            "version": self.version,
            "settings": self.config.settings(),
            "schema": self.schema,
        }
        temporary = path / f".{MARKER_FILE}.tmp"
        temporary.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
        temporary.replace(path / MARKER_FILE)  # all or nothing

    # ------------------------------------------------------------------------------------------ scoring

    def score(self, images: Sequence[Any], *, batch_size: int | None = None) -> list[ImagePrediction]:
        """One :class:`ImagePrediction` per image, in order. An image is a path, bytes, or a PIL image.

        ``fields`` holds every schema field in schema order; ``uncertainty`` is the mean normalised
        uncertainty of the non-text fields (as the CPU scorer's), a failed field counting 1; ``embedding`` is a
        64-float unit vector (a fixed random projection of the mean visual token), for picking diverse
        images; ``errors`` names the fields whose answer could not be read, with the reason.

        Raises:
            ValueError: an image cannot be read (the message gives its position) or batch_size is bad.
        """
        size = self.config.batch_size if batch_size is None else batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a positive int, got {size!r}")
        predictions: list[ImagePrediction] = []
        with torch.inference_mode():
            for start in range(0, len(images), size):
                chunk = [self._open(image, start + offset) for offset, image in enumerate(images[start:start + size])]
                predictions.extend(self._score_chunk(chunk))
        return predictions

    def _score_chunk(self, images: list[Any]) -> list[ImagePrediction]:
        batch = self._encode_images(images)
        per_image: list[dict[str, FieldPrediction]] = [{} for _ in images]
        errors: list[dict[str, str]] = [{} for _ in images]
        if self.config.mode == "cot":
            self._ask_cot(batch, per_image, errors)
        else:
            for plan in self._plans:
                if plan.kind in _CHOICE_KINDS:
                    results = self._ask_choice(plan, batch)
                elif plan.kind in _SCORE_KINDS:
                    results = self._ask_score(plan, batch)
                else:
                    results = self._ask_text(plan, batch)
                for index, (prediction, error) in enumerate(results):
                    per_image[index][plan.key] = prediction
                    if error:
                        errors[index][plan.key] = error
        embeddings = self._embeddings(batch)
        out = []
        for index in range(len(images)):
            ordered = {plan.key: per_image[index][plan.key] for plan in self._plans}
            spread = [
                _normalised_uncertainty(plan, ordered[plan.key], failed=plan.key in errors[index])
                for plan in self._plans
                if plan.kind != "text"
            ]
            uncertainty = sum(spread) / len(spread) if spread else 0.0
            out.append(ImagePrediction(fields=ordered, uncertainty=uncertainty, embedding=embeddings[index],
                                       errors=errors[index]))
        return out

    # -- the three kinds of question (fields mode)

    def _ask_score(self, plan: _FieldPlan, batch: _Batch) -> list[tuple[FieldPrediction, str | None]]:
        constrained = self.config.constrained
        prefill = plan.prefill if constrained else ""
        constraint = _NumberFormat(self, plan) if constrained else None
        max_new = constraint.max_tokens if constraint else self._max_new_tokens()
        answers = self._generate(plan.question, prefill, batch, max_new, constraint)
        results = []
        for answer in answers:
            try:
                if constrained:
                    span = (len(prefill), len(answer.text))
                    if span[0] == span[1]:
                        raise ValueError("the model wrote no number")
                else:
                    span = _score_span(answer.text)
                results.append((self._score_value(plan, answer, span, check_written=not constrained), None))
            except ValueError as error:
                results.append((_failed(plan), f"{plan.key}: {error}"))
        return results

    def _ask_choice(self, plan: _FieldPlan, batch: _Batch) -> list[tuple[FieldPrediction, str | None]]:
        rows, images, continuations = [], [], []
        for image in range(batch.images):
            prompt = self._prompt_ids(plan.question, plan.prefill, batch.pads[image])
            for _value, continuation in plan.choices:
                ids = self._encode(continuation)
                rows.append(prompt + ids)
                images.append(image)
                continuations.append(ids)
        keep = max(len(ids) for ids in continuations) + 1
        inputs = self._inputs(rows, images, batch)
        logits = self.model(**inputs, logits_to_keep=keep).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()  # small: only the last few positions
        totals = []
        for row, ids in enumerate(continuations):
            # the tokens sit at the end of the row (left padding); logits at i predict token i + 1
            positions = torch.arange(keep - 1 - len(ids), keep - 1)
            totals.append(logprobs[row, positions, torch.tensor(ids)].sum())
        totals_t = torch.stack(totals).view(batch.images, len(plan.choices))
        probabilities = torch.softmax(totals_t.double(), dim=-1)
        results = []
        for image in range(batch.images):
            best = int(torch.argmax(probabilities[image]))
            confidence = float(probabilities[image, best])
            results.append((FieldPrediction(plan.choices[best][0], confidence, 1.0 - confidence), None))
        return results

    def _ask_text(self, plan: _FieldPlan, batch: _Batch) -> list[tuple[FieldPrediction, str | None]]:
        results = []
        for answer in self._generate(plan.question, "", batch, self._max_new_tokens(), None):
            text = " ".join(answer.text.split())
            if not text:
                results.append((_failed(plan), f"{plan.key}: the answer is empty"))
                continue
            confidence = _mean_probability(answer.logprobs)
            results.append((FieldPrediction(text, confidence, 1.0 - confidence), None))
        return results

    # -- chain of thought

    def _ask_cot(self, batch: _Batch, per_image: list[dict[str, FieldPrediction]],
                 errors: list[dict[str, str]]) -> None:
        by_key = {plan.key: plan for plan in self._plans}
        answers = self._generate(cot_question(), "", batch, self._max_new_tokens(), None)
        for index, answer in enumerate(answers):
            found, problems = self._read_cot(answer, by_key)
            for plan in self._plans:
                if plan.key in found:
                    per_image[index][plan.key] = found[plan.key]
                else:
                    per_image[index][plan.key] = _failed(plan)
                    errors[index][plan.key] = problems.get(plan.key, f"{plan.key}: not in the chain-of-thought answer")

    def _read_cot(self, answer: _Answer, by_key: dict[str, _FieldPlan]) -> tuple[dict[str, FieldPrediction], dict[str, str]]:
        text = answer.text
        try:
            parsed = parse_cot_answer(self.schema, text)
        except ValueError as error:
            reason = f"the chain-of-thought answer was not understood: {error}"
            return {}, {key: f"{key}: {reason}" for key in by_key}
        found: dict[str, FieldPrediction] = {}
        problems: dict[str, str] = {}
        final = by_key[self._final_key]
        pair = list(_BRACKETS_RE.finditer(text))[-1]
        try:
            found[final.key] = self._score_value(final, answer, _stripped_span(text, pair.start(1), pair.end(1)),
                                                 check_written=True)
        except ValueError as error:
            problems[final.key] = f"{final.key}: {error}"

        body_end = _FINAL_RE.search(text).start()
        items = [(is_reason, start, end) for is_reason, start, end in _cot_items(text, body_end)]
        value_spans = [(start, end) for is_reason, start, end in items if not is_reason]
        # the items in the text and the parsed values are in the same order; when the two counts differ
        # (an item this simple reading splits differently) confidences fall back to the whole answer's
        spans = dict(zip(parsed["values"], value_spans)) if len(value_spans) == len(parsed["values"]) else {}
        for key in [key for key in parsed["values"] if key != final.key]:
            plan, value = by_key[key], parsed["values"][key]
            span = spans.get(key)
            try:
                if plan.kind in _SCORE_KINDS and span is not None:
                    found[key] = self._score_value(plan, answer, span, check_written=True)
                    continue
                tokens = _tokens_in(answer, span) if span is not None else list(range(len(answer.token_ids)))
                picked = [answer.logprobs[i] for i in tokens]
                if plan.kind in _CHOICE_KINDS and span is not None:
                    confidence = math.exp(sum(picked)) if picked else 0.0
                else:
                    confidence = _mean_probability(picked)
                if plan.kind in _SCORE_KINDS:  # no span: the written number, with the answer's mean probability
                    found[key] = _score_prediction(plan, float(value), confidence)
                else:
                    found[key] = FieldPrediction(value, confidence, 1.0 - confidence)
            except ValueError as error:
                problems[key] = f"{key}: {error}"
        return found, problems

    # -- reading a number

    def _score_value(self, plan: _FieldPlan, answer: _Answer, span: tuple[int, int], *,
                     check_written: bool) -> FieldPrediction:
        """The field's prediction from the number written at ``span`` of the answer text."""
        start, end = span
        written = answer.text[start:end]
        if not _NUMBER_RE.fullmatch(written):
            raise ValueError(f"{written!r} is not a number")
        if check_written and not plan.low <= float(written) <= plan.high:
            raise ValueError(f"the model wrote {written}, outside {_bound(plan.low)}-{_bound(plan.high)}")
        tokens = _tokens_in(answer, span)
        pieces = [self.tokenizer.convert_ids_to_tokens(answer.token_ids[i]) for i in tokens]
        ids = [answer.token_ids[i] for i in tokens]
        if tokens and "".join(pieces) == written and all(i in self._digit_set or i == self._dot_id for i in ids):
            dot = ids.index(self._dot_id) if self._dot_id in ids else len(ids)
            rows = [i for i in tokens[:dot]] + [i for i in tokens[dot + 1:dot + 1 + self.config.digits]]
            probabilities = torch.softmax(answer.digit_logits[rows].double(), dim=-1)
            expected, confidence = digit_expectation(probabilities)
            scale = 10.0 ** (dot - 1)
            return _score_prediction(plan, expected * scale, confidence, rows=len(rows), scale=scale)
        # digits are not single tokens here: the written number, with the probability of its tokens
        confidence = math.exp(sum(answer.logprobs[i] for i in tokens)) if tokens else 0.0
        return _score_prediction(plan, float(written), confidence)

    # ------------------------------------------------------------------------------------------ model calls

    def _generate(self, question: str, prefill: str, batch: _Batch, max_new_tokens: int,
                  constraint: _NumberFormat | None) -> list[_Answer]:
        rows = [self._prompt_ids(question, prefill, pads) for pads in batch.pads]
        inputs = self._inputs(rows, list(range(batch.images)), batch)
        width = inputs["input_ids"].shape[1]
        recorder = _Recorder(self._digit_ids)
        processors = LogitsProcessorList([recorder])
        if constraint is not None:
            constraint.width = width
            processors.append(constraint)
        generation = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(self._stop_ids),
            pad_token_id=self._pad_id,
            return_dict_in_generate=True,
        )
        output = self.model.generate(**inputs, generation_config=generation, logits_processor=processors)
        new = output.sequences[:, width:].cpu()
        logprobs, digit_logits = recorder.finish(new)
        answers = []
        for row in range(len(rows)):
            ids = new[row].tolist()
            length = next((i for i, token in enumerate(ids) if token in self._stop_ids), len(ids))
            ids = ids[:length]
            offsets, previous = [], len(prefill)
            for i in range(length):
                decoded = len(prefill) + len(self._decode(ids[: i + 1]))
                offsets.append((previous, decoded))
                previous = decoded
            answers.append(_Answer(
                text=prefill + self._decode(ids),
                offsets=offsets,
                token_ids=ids,
                logprobs=logprobs[row, :length].tolist(),
                digit_logits=digit_logits[row, :length],
            ))
        return answers

    def _inputs(self, rows: list[list[int]], images: list[int], batch: _Batch) -> dict[str, Any]:
        """Left-padded model inputs for token rows, each with the image ``images[row]`` of the batch."""
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, width - len(row):] = torch.tensor(row, dtype=torch.long)
            attention[index, width - len(row):] = 1
        return {
            "input_ids": input_ids.to(self.device),
            "attention_mask": attention.to(self.device),
            # without it generate gives image tokens plain 1-D positions instead of M-RoPE's (transformers 5)
            "mm_token_type_ids": (input_ids == self._image_id).int().to(self.device),
            "image_grid_thw": batch.grid[images].to(self.device),
            "mm_encoder_outputs": {"image": BaseModelOutputWithPooling(
                pooler_output=tuple(batch.features[i] for i in images))},
        }

    def _encode_images(self, images: list[Any]) -> _Batch:
        processed = self.image_processor(
            images=images,
            size={"shortest_edge": self.config.min_pixels, "longest_edge": self.config.max_pixels},
            return_tensors="pt",
        )
        grid = processed["image_grid_thw"].cpu()
        pixels = processed["pixel_values"].to(self.device, self.model.dtype)
        encoded = self.model.model.get_image_features(pixels, grid.to(self.device), return_dict=True)
        features = tuple(encoded.pooler_output)
        pads = [int(thw.prod()) // self._merge**2 for thw in grid]
        return _Batch(images=len(images), grid=grid, features=features, pads=pads)

    def _embeddings(self, batch: _Batch) -> list[list[float]]:
        means = torch.stack([features.float().mean(dim=0) for features in batch.features]).cpu()
        if self._projection is None or self._projection.shape[0] != means.shape[1]:
            generator = torch.Generator().manual_seed(0)  # fixed: the same image always lands in the same place
            self._projection = torch.randn(means.shape[1], EMBEDDING_SIZE, generator=generator)
        projected = torch.nn.functional.normalize(means @ self._projection, dim=-1)
        return [[round(float(x), 6) for x in row] for row in projected]

    # ------------------------------------------------------------------------------------------ text

    def _prompt_ids(self, question: str, prefill: str, pads: int) -> list[int]:
        body = question[len(IMAGE_TOKEN):] if question.startswith(IMAGE_TOKEN) else question
        vision = "<|vision_start|>" + "<|image_pad|>" * pads + "<|vision_end|>"
        text = (
            f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
            f"<|im_start|>user\n{vision}{body}<|im_end|>\n"
            f"<|im_start|>assistant\n{prefill}"
        )
        return self._encode(text)

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _max_new_tokens(self) -> int:
        if self.config.max_new_tokens is not None:
            return self.config.max_new_tokens
        return 1024 if self.config.mode == "cot" else 64

    def _token_ids(self, model_config: Any) -> None:
        """Check the tokenizer against what the scorer relies on; keep the ids."""
        vocab = self.tokenizer.get_vocab()
        missing = [token for token in _SPECIALS if token not in vocab]
        if missing:
            raise ValueError(f"{self.path}: the tokenizer lacks the Qwen2-VL tokens {', '.join(missing)}")
        self._image_id = vocab["<|image_pad|>"]
        if self._image_id != model_config.image_token_id:
            raise ValueError(f"{self.path}: the tokenizer's <|image_pad|> is {self._image_id}, the model's image "
                             f"token is {model_config.image_token_id}")
        single = {}
        for character in "0123456789.":
            ids = self._encode(character)
            if len(ids) != 1:
                raise ValueError(f"{self.path}: the tokenizer writes {character!r} as {len(ids)} tokens; RealQA's "
                                 "digit expectation needs every digit and '.' as one token")
            single[character] = ids[0]
        self._digit_ids = [single[str(d)] for d in range(10)]
        self._digit_set = frozenset(self._digit_ids)
        self._dot_id = single["."]
        self._end_id = vocab["<|im_end|>"]
        stops = {self._end_id}
        for token in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id):
            if token is not None:
                stops.add(int(token))
        self._stop_ids = frozenset(stops)
        self._pad_id = int(self.tokenizer.pad_token_id) if self.tokenizer.pad_token_id is not None else self._end_id

    def _prompt_identity(self) -> dict[str, Any]:
        """What, besides the checkpoint, decides the answers: the questions and the settings that shape them."""
        settings = self.config.settings()
        for key in ("device", "dtype", "batch_size"):  # how fast, not what
            settings.pop(key)
        return {"plans": [asdict(plan) for plan in self._plans], "final_key": self._final_key, "settings": settings}

    def _open(self, image: Any, index: int) -> Any:
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            if isinstance(image, Image.Image):
                opened = image
            elif isinstance(image, (bytes, bytearray, memoryview)):
                opened = Image.open(io.BytesIO(bytes(image)))
            elif isinstance(image, (str, os.PathLike)):
                opened = Image.open(image)
            else:
                raise ValueError(f"expected a path, bytes or a PIL image, not {type(image).__name__}")
            if opened.format == "JPEG":  # decode at a reduced size (DCT scaling) when the file is much larger
                side = math.isqrt(self.config.max_pixels) + 1
                opened.draft("RGB", (side, side))
            opened = ImageOps.exif_transpose(opened)
            return opened.convert("RGB")
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as error:
            raise ValueError(f"image {index} ({_describe(image)}) cannot be read: {error}") from error


# ---------------------------------------------------------------------------------------------- generation hooks


class _Recorder(LogitsProcessor):
    """Keeps, per step, the raw logits of the ten digit tokens and the log-probability of the token the
    step chose (known only at the next step), without keeping a whole vocabulary per step."""

    def __init__(self, digit_ids: list[int]) -> None:
        self.digit_ids = torch.tensor(digit_ids)
        self.digits: list[torch.Tensor] = []
        self.chosen: list[torch.Tensor] = []
        self._previous: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._previous is not None:
            self.chosen.append(self._previous.gather(1, input_ids[:, -1:]).squeeze(1).cpu())
        self._previous = torch.log_softmax(scores.float(), dim=-1)
        self.digits.append(scores[:, self.digit_ids.to(scores.device)].float().cpu())
        return scores

    def finish(self, new_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities (rows, steps), digit logits (rows, steps, 10)) once generation is over."""
        if self._previous is not None and len(self.chosen) < len(self.digits):
            last = new_tokens[:, len(self.chosen):len(self.chosen) + 1].to(self._previous.device)
            self.chosen.append(self._previous.gather(1, last).squeeze(1).cpu())
        self._previous = None
        rows = new_tokens.shape[0]
        if not self.digits:
            return torch.zeros(rows, 0), torch.zeros(rows, 0, 10)
        return torch.stack(self.chosen, dim=1), torch.stack(self.digits, dim=1)


class _NumberFormat(LogitsProcessor):
    """Lets the model write only a number of the field's answer form that can still end inside the field's
    range, then the end token: ``D.DD`` (``digits`` decimals) for continuous fields, a whole number
    without leading zeros for integer fields."""

    def __init__(self, scorer: MllmScorer, plan: _FieldPlan) -> None:
        self.digit_ids = scorer._digit_ids
        self.dot_id = scorer._dot_id
        self.end_id = scorer._end_id
        self.low, self.high = plan.low, plan.high
        self.decimals = scorer.config.digits if plan.kind == "continuous" else None
        if self.decimals is None:
            self.length = len(str(int(max(abs(self.low), abs(self.high)))))
            self.max_tokens = self.length + 1
        else:
            self.length = 1 + (1 + self.decimals if self.decimals else 0)
            self.max_tokens = self.length + 1
        self.width = 0  # the prompt width, set before each generate
        self._by_id = {token: str(digit) for digit, token in enumerate(self.digit_ids)} | {self.dot_id: "."}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for row, generated in enumerate(input_ids[:, self.width:].tolist()):
            written = "".join(self._by_id.get(token, "") for token in generated)
            mask[row, self._allowed(written)] = 0.0
        return scores + mask

    def _allowed(self, written: str) -> list[int]:
        if self.decimals is not None:
            if len(written) >= self.length:
                return [self.end_id]
            if len(written) == 1:
                return [self.dot_id]
            candidates = [d for d in range(10) if self._continuous_fits(written + str(d))]
        else:
            candidates = [] if written == "0" or len(written) >= self.length else [
                d for d in range(10) if (written or d or self.low == 0) and self._integer_fits(written + str(d))]
            if written and self.low <= int(written) <= self.high:
                return [self.digit_ids[d] for d in candidates] + [self.end_id]
        return [self.digit_ids[d] for d in candidates] or self.digit_ids  # an impossible range: any digit

    def _continuous_fits(self, prefix: str) -> bool:
        form = "0." + "0" * self.decimals if self.decimals else "0"
        smallest = float(prefix + form[len(prefix):])
        largest = float(prefix + form[len(prefix):].replace("0", "9"))
        return largest >= self.low and smallest <= self.high

    def _integer_fits(self, prefix: str) -> bool:
        return any(
            int(prefix + "9" * extra) >= self.low and int(prefix + "0" * extra) <= self.high
            for extra in range(self.length - len(prefix) + 1)
        )


# ---------------------------------------------------------------------------------------------- helpers


def _plan_fields(schema: Mapping[str, Any]) -> list[_FieldPlan]:
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), Sequence) or not schema["fields"]:
        raise ValueError("schema must be a dict with a non-empty 'fields' list")
    plans = []
    for field in schema["fields"]:
        question = field_question(field)  # checks the field
        key, kind = field["key"], field["kind"]
        if kind in _SCORE_KINDS:
            low, high = float(field["min"]), float(field["max"])
            if kind == "continuous" and not (0.0 <= low and high <= 10.0):
                raise ValueError(f"{key}: a continuous field must lie within 0-10 (one integer digit), not "
                                 f"{_bound(low)}-{_bound(high)}")
            if kind == "integer" and low < 0:
                raise ValueError(f"{key}: an integer field must not go below 0, got {_bound(low)}")
            sample = answer_text(field, low if kind == "continuous" else int(math.ceil(low)))
            number = _NUMBER_RE.search(sample.rsplit(" ", 1)[-1]).group(0)
            prefill = sample[: sample.rindex(number)]
            plans.append(_FieldPlan(key, kind, question, prefill=prefill, low=low, high=high))
        elif kind in _CHOICE_KINDS:
            texts = [(choice["value"], answer_text(field, choice["value"])) for choice in field["choices"]]
            common = os.path.commonprefix([text for _value, text in texts])
            # cut at a word boundary and leave the space to the choice (" good" is one token with Qwen2's BPE)
            prefill = common[: common.rfind(" ")] if " " in common else ""
            choices = tuple((value, text[len(prefill):]) for value, text in texts)
            plans.append(_FieldPlan(key, kind, question, prefill=prefill, choices=choices))
        else:
            plans.append(_FieldPlan(key, kind, question))
    keys = [plan.key for plan in plans]
    if len(set(keys)) != len(keys):
        raise ValueError("schema has two fields with the same key")
    return plans


def _final_key(schema: Mapping[str, Any], asked: str | None) -> str:
    score_fields = [field for field in schema["fields"] if field["kind"] in _SCORE_KINDS]
    if asked is not None:
        if asked not in {field["key"] for field in schema["fields"]}:
            raise ValueError(f"final_key {asked!r} is not a field of the schema")
        if asked not in {field["key"] for field in score_fields}:
            raise ValueError(f"final_key {asked!r} is not an integer or continuous field")
        return asked
    for wanted in (
        lambda f: f["kind"] == "continuous" and f.get("level") == "overall",
        lambda f: f["kind"] == "continuous",
        lambda f: True,
    ):
        matching = [field for field in score_fields if wanted(field)]
        if matching:
            return matching[-1]["key"]
    raise ValueError("cot mode needs a score field for 'The final score'; the schema has none")


def _checkpoint_class(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"checkpoint folder {path} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder; give the folder of a Qwen2-VL checkpoint")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} holds no config.json: it is not a transformers checkpoint")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{config_file} is not a model config: {error}") from error
    if model_type not in MODEL_CLASSES:
        raise ValueError(f"{path} holds a {model_type!r} checkpoint, not Qwen2-VL or Qwen2.5-VL "
                         f"(model_type {' or '.join(MODEL_CLASSES)})")
    if not any(path.glob("*.safetensors")):
        raise FileNotFoundError(f"{path} holds no *.safetensors weights")
    return MODEL_CLASSES[model_type]


def _load_processing(path: Path) -> tuple[Any, Any]:
    """The checkpoint's tokenizer and image processor: from its processor when that loads, otherwise
    (no torchvision for the video part, or a checkpoint without processor files) the two parts alone."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    try:
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        tokenizer, image_processor = processor.tokenizer, processor.image_processor
    except Exception:  # noqa: BLE001 - any failure here only means "use the parts"
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: the tokenizer does not load: {error}") from error
        try:
            image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: the image processor does not load: {error}") from error
    return tokenizer, image_processor


def _pick_device(asked: str) -> torch.device:
    if asked != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    if asked == "cuda":
        logger.warning("CUDA was asked for but is not available; the scorer runs on the CPU")
    return torch.device("cpu")


def _pick_dtype(asked: str, device: torch.device) -> torch.dtype:
    if asked != "auto":
        return _DTYPES[asked]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _digest(path: Path, identity: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(NAME.encode() + b"\0")
    files = [path / name for name in _VERSIONED_FILES if (path / name).is_file()]
    files += sorted(path.glob("*.safetensors")) + sorted(path.glob("*.safetensors.index.json"))
    for file in files:
        content = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 23), b""):
                content.update(block)
        digest.update(f"{file.name}\0{content.hexdigest()}\0".encode())
    digest.update(json.dumps(identity, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _score_span(text: str) -> tuple[int, int]:
    """Where the score stands in a free answer: between the last '<' '>' pair, after the last "score of
    this image is", or the whole answer when it is just a number. ValueError when there is none."""
    pairs = list(_BRACKETS_RE.finditer(text))
    if pairs:
        return _stripped_span(text, pairs[-1].start(1), pairs[-1].end(1))
    plain = list(_PLAIN_RE.finditer(text))
    if plain:
        start, end = plain[-1].span(1)
        while end > start and text[end - 1] in ".,;:!?":
            end -= 1
        return start, end
    start, end = _stripped_span(text, 0, len(text))
    if end > start and text[end - 1] == ".":
        end -= 1
    if _NUMBER_RE.fullmatch(text[start:end]):
        return start, end
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise ValueError(f"no score found in the answer {shown!r}")


def _stripped_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cot_items(text: str, body_end: int) -> list[tuple[bool, int, int]]:
    """(is a reason item, start, end) of each item value in a chain-of-thought answer, in order."""
    body = text[:body_end].rstrip()
    if body.endswith("."):
        body = body[:-1]
    matches = list(_ITEM_RE.finditer(body))
    items = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        start, end = _stripped_span(body, match.end(), end)
        while end > start and body[end - 1] in ".,;":
            end -= 1
        items.append((match.group(1).casefold().startswith("reason for "), start, end))
    return items


def _tokens_in(answer: _Answer, span: tuple[int, int] | None) -> list[int]:
    if span is None:
        return []
    start, end = span
    return [i for i, (a, b) in enumerate(answer.offsets) if a < end and b > start]


def _score_prediction(plan: _FieldPlan, expected: float, confidence: float, *, rows: int = 3,
                      scale: float = 1.0) -> FieldPrediction:
    """Clamp into the field's range (round for integers); the uncertainty is the spread in score units,
    sigma = (1 - confidence) * sigma_max, as ``digit_expectation`` defines its confidence."""
    value: float | int = min(plan.high, max(plan.low, expected))
    if plan.kind == "integer":
        value = int(min(plan.high, max(plan.low, round(value))))
    sigma_max = 4.5 * math.sqrt(sum(100.0 ** -k for k in range(rows))) * scale
    confidence = min(1.0, max(0.0, confidence))
    return FieldPrediction(value, confidence, (1.0 - confidence) * sigma_max)


def _failed(plan: _FieldPlan) -> FieldPrediction:
    # no value: the largest uncertainty there is (for scores, the largest spread within the range)
    return FieldPrediction(None, 0.0, (plan.high - plan.low) / 2 if plan.kind in _SCORE_KINDS else 1.0)


def _normalised_uncertainty(plan: _FieldPlan, prediction: FieldPrediction, *, failed: bool) -> float:
    """0..1, as the CPU scorer counts it: a choice's 1 - confidence over its largest value (1 - 1/choices),
    a score's 1 - confidence (its spread over the largest spread); a failed field 1."""
    if failed:
        return 1.0
    if plan.kind in _CHOICE_KINDS:
        if len(plan.choices) < 2:
            return 0.0
        return min(1.0, (1.0 - prediction.confidence) / (1.0 - 1.0 / len(plan.choices)))
    return min(1.0, max(0.0, 1.0 - prediction.confidence))


def _mean_probability(logprobs: Sequence[float]) -> float:
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0


def _bound(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _describe(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"{len(image)} bytes"
    return type(image).__name__


def _create(*, path: str | Path, schema: Mapping[str, Any], **settings: Any) -> MllmScorer:
    known = {f.name for f in fields(MllmScorerConfig)} - {"path", "schema"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"unknown {NAME} settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return MllmScorer.from_pretrained(path, MllmScorerConfig(**settings), schema=schema)


registry.register(NAME, create=_create, load=MllmScorer.load)
