"""The Qwen2-VL scorer, end to end on real transformers: tiny checkpoints are built here (random, or
scripted to write a known answer with known probabilities), saved to a folder, and loaded through the
scorer from that folder, with the network blocked for the whole module."""

from __future__ import annotations

import io
import json
import math
import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from realqa_model import registry  # noqa: E402
from realqa_model.mllm_scorer import MllmScorer, MllmScorerConfig  # noqa: E402
from realqa_model.numeric import digit_expectation  # noqa: E402
from realqa_model.prompts import cot_answer  # noqa: E402
from realqa_model.tiny import build_tiny_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "fixtures" / "realqa_schema.json").read_text())
SCORE_KEYS = ("eye_catching", "composition", "quality", "aesthetics")
CHOICE_VALUES = {
    field["key"]: {choice["value"] for choice in field["choices"]} for field in SCHEMA["fields"] if "choices" in field
}
END = "<|im_end|>"
# After the answer's "... score of this image is " (last token " ") or after "assistant\n" (an answer
# written freely), write 6.59 and stop. Each entry: after this token, these next-token logits.
WRITES_6_59 = {" ": {"6": 30}, "\n": {"6": 30}, "6": {".": 30}, ".": {"5": 30}, "5": {"9": 30}, "9": {END: 30}}
# The same answer, but with doubt at every digit, so the expectation differs from the written number.
DOUBTS_6_59 = {
    " ": {"6": 5.0, "5": 4.0, "7": 3.5, "2": 1.0, "9": 0.5},
    "6": {".": 30},
    ".": {"5": 3.0, "4": 2.5, "8": 1.0},
    "5": {"9": 2.0, "0": 1.5, "3": 0.0},
    "9": {END: 30},
}
FINAL_PHRASE = "The final score is"
WRITES_FINAL_6_59 = {
    "\n": {FINAL_PHRASE: 30},
    FINAL_PHRASE: {" ": 30},
    " ": {"<": 30},
    "<": {"6": 30},
    "6": {".": 30},
    ".": {"5": 30},
    "5": {"9": 30},
    "9": {">.": 30},
    ">.": {END: 30},
}


@pytest.fixture(scope="module", autouse=True)
def no_network_and_one_thread():
    """Every test here runs offline (any TCP connection fails) and on one thread: the tiny model's ops
    are so small that two threads on a busy shared 2-core machine are many times slower than one."""

    def refuse(self, address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access attempted: {address!r}")
        return original_connect(self, address, *args, **kwargs)

    original_connect = socket.socket.connect
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, no_network_and_one_thread) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "random": build_tiny_checkpoint(root / "random", seed=1),
        "other": build_tiny_checkpoint(root / "other", seed=2),
        "six": build_tiny_checkpoint(root / "six", script=WRITES_6_59),
        "doubt": build_tiny_checkpoint(root / "doubt", script=DOUBTS_6_59),
        "final": build_tiny_checkpoint(root / "final", script=WRITES_FINAL_6_59, extra_tokens=[FINAL_PHRASE, ">."]),
        "eighty_five": build_tiny_checkpoint(root / "85", script={"\n": {"8": 30}, "8": {"5": 30}, "5": {END: 30}}),
    }


def load(path: Path, **settings) -> MllmScorer:  # type: ignore[no-untyped-def]
    return MllmScorer.from_pretrained(path, MllmScorerConfig(schema=SCHEMA, max_new_tokens=16, **settings))


def photo(seed: int, width: int, height: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(height, width, 3, generator=generator) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ end to end


def test_it_predicts_every_field_in_range_for_images_given_as_pil_bytes_and_paths(checkpoints, tmp_path) -> None:
    scorer = load(checkpoints["random"])
    path = tmp_path / "wide.png"
    photo(3, 200, 100).save(path)
    predictions = scorer.score([photo(1, 120, 90), jpeg(photo(2, 60, 60)), str(path)], batch_size=2)

    assert len(predictions) == 3
    for prediction in predictions:
        assert list(prediction.fields) == [field["key"] for field in SCHEMA["fields"]]
        assert prediction.errors == {}
        for key, field in prediction.fields.items():
            assert 0.0 <= field.confidence <= 1.0 and field.uncertainty >= 0.0, key
            if key in CHOICE_VALUES:
                assert field.value in CHOICE_VALUES[key]
            elif key in ("eye_catching", "composition"):
                assert isinstance(field.value, int) and 1 <= field.value <= 10
            elif key in ("quality", "aesthetics"):
                assert isinstance(field.value, float) and 1.0 <= field.value <= 10.0
            else:
                assert isinstance(field.value, str) and field.value
        assert 0.0 <= prediction.uncertainty <= 1.0
        assert len(prediction.embedding) == 64
        assert math.isclose(sum(x * x for x in prediction.embedding), 1.0, rel_tol=1e-4)
        json.dumps(prediction.values_json())  # storable as it is
    assert predictions[0].embedding != predictions[1].embedding


def test_it_reads_6_59_off_a_model_that_writes_6_59(checkpoints) -> None:
    constrained, = load(checkpoints["six"]).score([photo(1, 120, 90)])
    free, = load(checkpoints["six"], constrained=False).score([photo(1, 120, 90)])

    for prediction in (constrained, free):
        for key in ("quality", "aesthetics"):
            assert prediction.fields[key].value == pytest.approx(6.59, abs=1e-9)
            assert prediction.fields[key].confidence == pytest.approx(1.0, abs=1e-9)
        assert prediction.fields["subject_background"].value == "6.59"  # the text field: the same bigram answer
    # the integer answer form is a whole number: 6, then the end
    assert constrained.fields["eye_catching"].value == 6
    assert constrained.fields["composition"].value == 6


def test_a_score_is_the_digit_expectation_of_the_models_own_logits(checkpoints) -> None:
    scorer = load(checkpoints["doubt"])
    prediction, = scorer.score([photo(1, 120, 90)])

    # By hand: the model's logits after " " (the integer digit), "." (first decimal) and "5" (second
    # decimal, after the greedy 6.5), softmax over the ten digit tokens, E = sum of 10^-k * E[d_k].
    tokens = scorer.tokenizer.convert_tokens_to_ids([" ", "6", ".", "5"])
    digit_ids = scorer.tokenizer.convert_tokens_to_ids([str(d) for d in range(10)])
    with torch.inference_mode():
        logits = scorer.model(input_ids=torch.tensor([tokens])).logits[0].double()
    expected, variance = 0.0, 0.0
    for weight, position in ((1.0, 0), (0.1, 2), (0.01, 3)):
        probabilities = torch.softmax(logits[position, digit_ids], dim=0).tolist()
        mean = sum(digit * p for digit, p in enumerate(probabilities))
        expected += weight * mean
        variance += weight**2 * sum((digit - mean) ** 2 * p for digit, p in enumerate(probabilities))
    confidence = 1 - math.sqrt(variance) / (4.5 * math.sqrt(1 + 0.01 + 0.0001))

    quality = prediction.fields["quality"]
    assert quality.value == pytest.approx(expected, abs=1e-6)
    assert quality.confidence == pytest.approx(confidence, abs=1e-6)
    assert abs(quality.value - 6.59) > 0.1  # the expectation, not the written number
    assert quality.uncertainty == pytest.approx((1 - confidence) * 4.5 * math.sqrt(1.0101), abs=1e-6)
    assert digit_expectation(torch.softmax(logits[[0, 2, 3]][:, digit_ids], dim=-1))[0] == pytest.approx(expected)


def test_the_same_image_gets_the_same_prediction_alone_and_in_a_padded_batch(checkpoints) -> None:
    scorer = load(checkpoints["random"])
    image, other = photo(1, 120, 90), photo(2, 60, 60)  # different sizes: the batch is left-padded

    alone, = scorer.score([image])
    first, _, again = scorer.score([image, other, image], batch_size=3)

    for prediction in (first, again):
        for key, field in prediction.fields.items():
            if isinstance(field.value, float):  # an expectation: padding moves it by float noise only
                assert field.value == pytest.approx(alone.fields[key].value, abs=1e-5), key
            else:
                assert field.value == alone.fields[key].value, key
            assert field.confidence == pytest.approx(alone.fields[key].confidence, abs=1e-5), key
        assert prediction.embedding == pytest.approx(alone.embedding, abs=1e-5)
    assert scorer.score([image]) == [alone]  # and run to run, exactly


def test_the_version_is_stable_across_loads_and_follows_the_weights(checkpoints) -> None:
    first, second = load(checkpoints["random"]), load(checkpoints["random"])

    assert first.version == second.version
    assert first.version.startswith("qwen2-vl:") and len(first.version) == len("qwen2-vl:") + 12
    assert load(checkpoints["other"]).version != first.version
    assert load(checkpoints["random"], mode="cot").version != first.version  # other questions, other answers


# ------------------------------------------------------------------------------------------------ bad answers


def test_an_answer_without_a_score_costs_only_that_field(checkpoints) -> None:
    prediction, = load(checkpoints["random"], constrained=False).score([photo(1, 120, 90)])

    for key in SCORE_KEYS:
        assert prediction.fields[key].value is None
        assert prediction.fields[key].confidence == 0.0
        assert prediction.errors[key].startswith(f"{key}: no score found in the answer")
    for key, choices in CHOICE_VALUES.items():
        assert prediction.fields[key].value in choices
    assert prediction.uncertainty > 0.3  # four failed fields count fully


def test_a_free_answer_outside_the_fields_range_is_refused_not_clamped(checkpoints) -> None:
    prediction, = load(checkpoints["eighty_five"], constrained=False).score([photo(1, 120, 90)])

    assert prediction.fields["quality"].value is None
    assert prediction.errors["quality"] == "quality: the model wrote 85, outside 1-10"


def test_the_constrained_answer_form_keeps_a_number_inside_the_range(checkpoints) -> None:
    prediction, = load(checkpoints["eighty_five"]).score([photo(1, 120, 90)])

    assert prediction.errors == {}
    assert prediction.fields["quality"].value <= 10.0 and prediction.fields["eye_catching"].value <= 10


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [("integer", 1, 10), ("integer", 0, 5), ("integer", 3, 120), ("continuous", 1, 10), ("continuous", 0, 2.5)],
)
def test_the_constrained_form_can_write_every_number_of_the_range_and_nothing_else(checkpoints, kind, low, high) -> None:
    from realqa_model.mllm_scorer import _FieldPlan, _NumberFormat

    scorer = load(checkpoints["random"])
    rule = _NumberFormat(scorer, _FieldPlan("x", kind, "?", low=low, high=high))
    by_id = {token: str(digit) for digit, token in enumerate(scorer._digit_ids)} | {scorer._dot_id: "."}
    finished, pending = set(), [""]
    while pending:  # every path the rule allows
        written = pending.pop()
        for token in rule._allowed(written):
            if token == scorer._end_id:
                finished.add(written)
            else:
                pending.append(written + by_id[token])

    if kind == "integer":
        assert finished == {str(n) for n in range(low, high + 1)}
    else:  # D.DD, 10 itself written as 9.99 as format_score does
        expected = {f"{n / 100:.2f}" for n in range(round(low * 100), round(min(high, 9.99) * 100) + 1)}
        assert finished == expected


# ------------------------------------------------------------------------------------------------ chain of thought


def test_cot_mode_puts_the_final_score_on_the_last_overall_score(checkpoints) -> None:
    prediction, = load(checkpoints["final"], mode="cot").score([photo(1, 120, 90)])

    assert prediction.fields["aesthetics"].value == pytest.approx(6.59, abs=1e-9)
    assert prediction.fields["aesthetics"].confidence == pytest.approx(1.0, abs=1e-9)
    assert set(prediction.errors) == {field["key"] for field in SCHEMA["fields"]} - {"aesthetics"}
    assert prediction.errors["clarity"] == "clarity: not in the chain-of-thought answer"
    assert load(checkpoints["final"], mode="cot", final_key="quality").score([photo(1, 120, 90)])[0].fields[
        "quality"].value == pytest.approx(6.59, abs=1e-9)


def test_cot_mode_survives_an_answer_that_is_not_a_chain_of_thought(checkpoints) -> None:
    predictions = load(checkpoints["random"], mode="cot").score([photo(1, 120, 90), photo(2, 60, 60)])

    for prediction in predictions:
        assert all(field.value is None and field.confidence == 0.0 for field in prediction.fields.values())
        assert "the chain-of-thought answer was not understood" in prediction.errors["quality"]
        assert prediction.uncertainty == 1.0


def test_cot_reading_takes_each_items_value_and_the_digits_of_its_scores(checkpoints) -> None:
    # No tiny model writes a whole template, so the answer is fed to the reader as if generated.
    from realqa_model.mllm_scorer import _Answer

    scorer = load(checkpoints["random"], mode="cot")
    text = cot_answer(
        SCHEMA,
        {"clarity": "good", "composition": 7, "subject_background": "Subject: bed; background: hotel room"},
        {"composition": "Centred, calm"},
        "aesthetics",
        6.59,
    )
    ids = scorer._encode(text)
    digits = torch.full((len(ids), 10), -30.0)
    for row, token in enumerate(ids):
        piece = scorer.tokenizer.convert_ids_to_tokens(token)
        if piece.isdigit():
            digits[row, int(piece)] = 30.0
    composition = text.index("Composition Score: 7") + len("Composition Score: ")
    digits[composition, 7], digits[composition, 8] = 2.0, 1.0  # doubt between 7 and 8
    answer = _Answer(text=text, offsets=[(i, i + 1) for i in range(len(ids))], token_ids=ids,
                     logprobs=[math.log(0.5)] * len(ids), digit_logits=digits)

    found, problems = scorer._read_cot(answer, {plan.key: plan for plan in scorer._plans})

    assert problems == {}
    assert found["aesthetics"].value == pytest.approx(6.59, abs=1e-9)
    assert found["clarity"].value == "good" and found["clarity"].confidence == pytest.approx(0.5**4)
    seven = 1 / (1 + math.exp(-1.0))  # p(7); the expectation 7 + (1 - p(7)) = 7.27 rounds to 7
    assert found["composition"].value == 7
    assert found["composition"].confidence == pytest.approx(1 - math.sqrt(seven * (1 - seven)) / 4.5)
    assert found["subject_background"].value == "Subject: bed; background: hotel room"
    assert found["subject_background"].confidence == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------------ loading


def test_a_qwen2_5_vl_checkpoint_is_read_the_same_way(tmp_path) -> None:
    scorer = load(build_tiny_checkpoint(tmp_path / "q25", family="qwen2_5_vl", script=WRITES_6_59))

    prediction, = scorer.score([photo(1, 120, 90)])

    assert type(scorer.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert prediction.fields["aesthetics"].value == pytest.approx(6.59, abs=1e-9)
    assert prediction.errors == {}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda root: root / "nowhere", FileNotFoundError, "does not exist"),
        (lambda root: root, FileNotFoundError, "holds no config.json: it is not a transformers checkpoint"),
        (lambda root: _config(root, {"model_type": "bert"}), ValueError, "holds a 'bert' checkpoint, not Qwen2-VL"),
        (lambda root: _config(root, {"model_type": "qwen2_vl"}), FileNotFoundError, "holds no *.safetensors weights"),
    ],
    ids=["missing", "empty", "not-qwen", "no-weights"],
)
def test_a_folder_that_is_not_a_qwen2_vl_checkpoint_is_refused_by_name(tmp_path, make, error, message) -> None:
    path = make(tmp_path)
    with pytest.raises(error, match=message.replace("*", r"\*")) as caught:
        load(path)
    assert str(path) in str(caught.value)


def _config(root: Path, content: dict) -> Path:
    (root / "config.json").write_text(json.dumps(content))
    return root


def test_it_needs_a_schema_and_a_readable_image(checkpoints) -> None:
    with pytest.raises(ValueError, match="no schema"):
        MllmScorer.from_pretrained(checkpoints["random"])
    scorer = load(checkpoints["random"])
    with pytest.raises(ValueError, match=r"image 1 \(9 bytes\) cannot be read"):
        scorer.score([photo(1, 120, 90), b"not a jpg"])
    with pytest.raises(ValueError, match="mode must be one of fields, cot"):
        MllmScorerConfig(mode="chat")


def test_the_registry_creates_saves_and_loads_it_offline(checkpoints, tmp_path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(OSError, match="network access attempted"):  # the guard is really on
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    scorer = registry.create("qwen2-vl", path=checkpoints["random"], schema=SCHEMA, max_new_tokens=16)
    image = photo(1, 120, 90)
    scorer.save(tmp_path / "scorer")

    again = registry.load(tmp_path / "scorer")

    assert isinstance(again, MllmScorer)
    assert again.version == scorer.version and again.schema == SCHEMA
    assert again.score([image]) == scorer.score([image])
    with pytest.raises(ValueError, match="without realqa_scorer.json"):
        registry.load(checkpoints["random"])  # a bare checkpoint: no schema to ask about
