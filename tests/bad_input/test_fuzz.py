"""Fuzzing with Hypothesis: the schema validator and the label validator take any JSON and either accept
it or raise their own error naming the problem; the submit endpoint answers any body with 2xx or 4xx,
never 5xx, and stores nothing when it refuses."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from annotation_site.labeling.assignments import assignment_next
from annotation_site.labeling.models import Annotation, Assignment
from annotation_site.projects.services import project_create
from annotation_site.raters.services import rater_create
from annotation_site.schemas.spec import LabelError, SchemaError, SchemaSpec, parse_schema
from tests.annotation_site.labels import REALQA_LABELS
from tests.conftest import api_client_for, make_images

REPO = Path(__file__).resolve().parents[2]
REALQA_SCHEMA = json.loads((REPO / "fixtures" / "realqa_schema.json").read_text())

_text = st.text(max_size=12) | st.sampled_from(["", " ", "\x00", "\ud800", "ordinal", "good", "value", "reason", "NaN"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_KEYS_OF_A_FIELD = ["key", "label", "level", "kind", "measurement", "required", "help", "anchors", "choices", "min",
                    "max", "step", "max_length", "reason", "value", "not_applicable"]


@st.composite
def mutated_schemas(draw: st.DrawFn) -> object:
    """The RealQA schema with a few keys of its fields (or the top level) replaced, added or removed."""
    schema = json.loads(json.dumps(REALQA_SCHEMA))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "field", "choice"]))
        if where == "top":
            target = schema
            key = draw(st.sampled_from(["name", "description", "fields", "extra"]))
        else:
            field = draw(st.sampled_from(schema["fields"])) if isinstance(schema.get("fields"), list) and schema["fields"] else None
            if not isinstance(field, dict):
                continue
            target = field
            if where == "choice" and isinstance(field.get("choices"), list) and field["choices"] and isinstance(field["choices"][0], dict):
                target = draw(st.sampled_from(field["choices"]))
            key = draw(st.sampled_from(_KEYS_OF_A_FIELD))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return schema


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, mutated_schemas()))
def test_any_json_is_either_a_valid_schema_or_a_schema_error_naming_the_problems(data: object) -> None:
    try:
        spec = parse_schema(data)
    except SchemaError as error:
        assert error.errors and all(isinstance(message, str) and message for message in error.errors)
        return
    assert isinstance(spec, SchemaSpec)
    # A valid schema round-trips through its canonical form, which any database can store.
    assert parse_schema(spec.to_dict()) == spec
    json.dumps(spec.to_dict(), allow_nan=False).encode("utf-8")


_REALQA_SPEC = parse_schema(REALQA_SCHEMA)


@st.composite
def mutated_labels(draw: st.DrawFn) -> object:
    labels = json.loads(json.dumps(REALQA_LABELS))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*labels.keys(), "unknown_field"]))
        if draw(st.booleans()):
            labels.pop(key, None)
        elif isinstance(labels.get(key), dict) and draw(st.booleans()):
            labels[key][draw(st.sampled_from(["value", "reason", "extra"]))] = draw(json_values)
        else:
            labels[key] = draw(json_values)
    return labels


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, mutated_labels()))
def test_any_json_as_labels_is_either_clean_or_a_label_error_per_field(labels: object) -> None:
    try:
        cleaned = _REALQA_SPEC.clean_labels(labels)
    except LabelError as error:
        assert error.errors and all(isinstance(message, str) and message for message in error.errors.values())
        return
    json.dumps({"values": cleaned.values, "reasons": cleaned.reasons}, allow_nan=False).encode("utf-8")


@st.composite
def submit_bodies(draw: st.DrawFn) -> str:
    """Raw request bodies: anything JSON (NaN and Infinity included), valid bodies with hostile parts,
    and text that is not JSON at all."""
    kind = draw(st.sampled_from(["json", "labels", "body", "text"]))
    if kind == "text":
        return draw(st.text(max_size=40))
    if kind == "json":
        body: object = draw(json_values)
    elif kind == "labels":
        body = {"labels": draw(mutated_labels())}
    else:
        body = {"labels": REALQA_LABELS}
        for key in draw(st.lists(st.sampled_from(["idempotency_key", "seconds_spent", "client", "labels", "extra"]), max_size=3)):
            body[key] = draw(json_values)
    return json.dumps(body, allow_nan=True)


class SubmitFuzzTest(TestCase):
    """Each example runs in its own transaction, rolled back afterwards, against one leased assignment."""

    @classmethod
    def setUpTestData(cls) -> None:
        cls.project = project_create(slug="fuzz", name="Fuzz", schema_definition=REALQA_SCHEMA)
        cls.project.gold_rate = 0
        cls.project.save()
        make_images(cls.project, 2)
        cls.rater = rater_create(username="fuzzer", password="fuzz-pass-123")
        cls.assignment = assignment_next(project=cls.project, rater=cls.rater)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=submit_bodies())
    def test_any_body_gets_2xx_or_4xx_and_a_refusal_stores_nothing(self, body: str) -> None:
        from annotation_site.core import authentication

        authentication._cache.clear()  # the token cache must not outlive the rolled-back token row
        client = api_client_for(self.rater)

        response = client.generic(
            "POST", f"/api/v1/assignments/{self.assignment.pk}/submit", body, content_type="application/json"
        )

        assert response.status_code < 500, (body[:200], response.content[:300])
        if response.status_code >= 400:
            assert response.json(), "a refusal says why"
            assert not Annotation.objects.exists()
            assert Assignment.objects.get(pk=self.assignment.pk).status == "leased"
        else:
            assert response.status_code == 201 and Annotation.objects.count() == 1
