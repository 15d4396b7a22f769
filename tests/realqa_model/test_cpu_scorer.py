"""The cpu-multihead scorer: it learns the distortions raters label, knows when it is out of its depth,
survives a save and load unchanged, refuses doctored checkpoints, and does not pretend before training."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy import stats

from realqa_model import cpu_scorer, evaluation, features, registry
from realqa_model.cpu_scorer import CheckpointError, CpuScorerConfig, LabelError, UntrainedScorerError
from tests.realqa_model.synthetic import distorted_photos, unlike_training_photos

TINY = CpuScorerConfig(hidden_size=32, ensemble_size=5, epochs=150, batch_size=64, seed=3)
TRAIN, HELD_OUT = 180, 60


@pytest.fixture(scope="module")
def dataset() -> tuple[np.ndarray, list[dict]]:
    samples = distorted_photos(TRAIN + HELD_OUT, seed=11)
    return features.extract_many([s.jpeg for s in samples], workers=2), [s.labels for s in samples]


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "realqa_schema.json").read_text())


@pytest.fixture(scope="module")
def trained(schema, dataset) -> cpu_scorer.CpuScorer:
    matrix, labels = dataset
    return cpu_scorer.train(schema, matrix[:TRAIN], labels[:TRAIN], TINY)


def test_the_trained_scorer_ranks_quality_and_names_clarity_and_exposure_on_unseen_photos(trained, dataset) -> None:
    matrix, labels = dataset
    held_out, truth = matrix[TRAIN:], labels[TRAIN:]

    predictions = trained.score_features(held_out)

    quality = [p.fields["quality"].value for p in predictions]
    assert stats.spearmanr([t["quality"] for t in truth], quality)[0] > 0.8
    for key, chance in (("clarity", 1 / 3), ("exposure", 1 / 3), ("saturation", 1 / 3)):
        accuracy = np.mean([p.fields[key].value == t[key] for p, t in zip(predictions, truth)])
        assert accuracy > chance + 0.35, key


def test_evaluation_reports_the_same_agreement_per_field(trained, dataset) -> None:
    matrix, labels = dataset

    metrics = evaluation.evaluate(trained, matrix[TRAIN:], labels[TRAIN:])

    assert metrics["n_images"] == HELD_OUT and metrics["model_version"] == trained.version
    quality = metrics["fields"]["quality"]
    assert quality["n"] == HELD_OUT and quality["srcc"] > 0.8 and quality["plcc"] > 0.8 and quality["mae"] < 1.0
    clarity = metrics["fields"]["clarity"]
    assert clarity["accuracy"] > clarity["majority_share"] + 0.3
    assert clarity["srcc"] > 0.8 and clarity["n_on_scale"] == HELD_OUT  # ordinal: ranks too
    assert metrics["fields"]["composition"] == {"kind": "integer", "n": 0, "predicted": False}
    json.dumps(metrics, allow_nan=False)  # storable as it is
    assert "quality" in evaluation.format_report(metrics)


def test_predictions_carry_only_fields_it_learnt_with_sane_confidence_uncertainty_and_embedding(
    trained, dataset
) -> None:
    matrix, _ = dataset

    predictions = trained.score_features(matrix[TRAIN:])

    assert set(trained.predicted_fields) == {"clarity", "exposure", "saturation", "quality"}
    for prediction in predictions:
        assert set(prediction.fields) == {"clarity", "exposure", "saturation", "quality"}  # no guesses, no text
        assert 0.0 <= prediction.uncertainty <= 1.0
        assert len(prediction.embedding) == TINY.hidden_size <= 64
        for key, field in prediction.fields.items():
            assert 0.0 <= field.confidence <= 1.0 and field.uncertainty >= 0.0, key
        assert prediction.fields["clarity"].value in {"bad", "poor", "fair", "good", "excellent"}
        quality = prediction.fields["quality"].value
        assert 1.0 <= quality <= 10.0 and round(quality, 1) == quality  # on the field's 0.1 step
        assert prediction.fields["clarity"].uncertainty == pytest.approx(1 - prediction.fields["clarity"].confidence)
        json.dumps(prediction.values_json(), allow_nan=False)


def test_the_ensemble_is_less_sure_about_pictures_unlike_anything_it_was_trained_on(trained, dataset) -> None:
    matrix, _ = dataset
    familiar = trained.score_features(matrix[TRAIN:])
    strange = trained.score_features(features.extract_many(unlike_training_photos()))

    assert np.mean([p.uncertainty for p in strange]) > 1.5 * np.mean([p.uncertainty for p in familiar])
    spread = lambda ps: np.mean([p.fields["quality"].uncertainty for p in ps])
    assert spread(strange) > 2 * spread(familiar)


def test_scoring_images_is_extracting_their_features_and_scoring_those(trained) -> None:
    samples = distorted_photos(5, seed=99)

    direct = trained.score([s.jpeg for s in samples], batch_size=2)
    via_features = trained.score_features(features.extract_many([s.jpeg for s in samples]))

    # Equal up to float rounding: BLAS may sum in another order for another batch size.
    for one, other in zip(direct, via_features, strict=True):
        assert one.uncertainty == pytest.approx(other.uncertainty, abs=1e-5)
        assert one.embedding == pytest.approx(other.embedding, abs=1e-5)
        for key, field in one.fields.items():
            assert field.confidence == pytest.approx(other.fields[key].confidence, abs=1e-5)
            assert (
                field.value == pytest.approx(other.fields[key].value)
                if key == "quality"
                else field.value == other.fields[key].value
            )


def test_a_saved_scorer_loads_with_the_same_predictions_and_version_from_json_and_safetensors_only(
    trained, dataset, tmp_path, monkeypatch
) -> None:
    matrix, _ = dataset
    trained.save(tmp_path / "model")

    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["scorer"] == "cpu-multihead" and config["version"] == trained.version
    assert config["features_version"] == features.FEATURES_VERSION
    assert config["schema"] == trained.schema and len(config["feature_mean"]) == features.DIM
    assert config["training"]["fields"]["quality"]["n"] == TRAIN

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = registry.load(tmp_path / "model")

    assert isinstance(loaded, cpu_scorer.CpuScorer) and loaded.trained
    assert loaded.version == trained.version and loaded.version.startswith("cpu-multihead:")
    assert loaded.score_features(matrix[TRAIN:]) == trained.score_features(matrix[TRAIN:])


def test_training_twice_with_the_same_seed_gives_the_same_model(schema, dataset) -> None:
    matrix, labels = dataset
    quick = CpuScorerConfig(hidden_size=16, ensemble_size=2, epochs=5, seed=8)

    first = cpu_scorer.train(schema, matrix[:40], labels[:40], quick)
    second = cpu_scorer.train(schema, matrix[:40], labels[:40], quick)
    other_seed = cpu_scorer.train(
        schema, matrix[:40], labels[:40], CpuScorerConfig(hidden_size=16, ensemble_size=2, epochs=5, seed=9)
    )

    assert first.version == second.version != other_seed.version


@pytest.fixture
def checkpoint(trained, tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    trained.save(folder)
    return folder


def rewrite_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_checkpoint_whose_weights_are_a_pickle_is_refused_without_unpickling(checkpoint, monkeypatch) -> None:
    torch.save({"head.weight": torch.zeros(3)}, checkpoint / "model.safetensors")  # a zip of pickles
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))

    with pytest.raises(CheckpointError, match="not safetensors.*never unpickles"):
        registry.load(checkpoint)

    (checkpoint / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        registry.load(checkpoint)


def test_a_checkpoint_with_only_pickled_weights_is_refused(checkpoint) -> None:
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "pytorch_model.bin").write_bytes(pickle.dumps({"a": 1}))

    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin but no model\.safetensors.*never unpickles"):
        registry.load(checkpoint)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"features_version": "hc-0"}, "trained on features 'hc-0'.*retrain"),
        ({"format": 99}, "format 99"),
        ({"feature_mean": [0.0] * 3}, "feature_mean"),
        ({"config": {"hidden_size": 32, "colour": "blue"}}, "unknown CpuScorerConfig keys"),
        ({"training": "yes"}, "training"),
    ],
    ids=["features-version", "format", "feature-stats", "config-key", "training"],
)
def test_a_checkpoint_with_a_wrong_config_is_refused_naming_the_problem(checkpoint, changes, message) -> None:
    rewrite_config(checkpoint, **changes)

    with pytest.raises(CheckpointError, match=message):
        registry.load(checkpoint)


def test_a_checkpoint_whose_config_does_not_fit_its_weights_is_refused(checkpoint) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    rewrite_config(checkpoint, config={**config["config"], "hidden_size": 48})

    with pytest.raises(CheckpointError, match=r"expected float32 \(5, 74, 48\)|expected float32"):
        registry.load(checkpoint)


def test_a_checkpoint_whose_weights_were_changed_after_saving_is_refused(checkpoint) -> None:
    weights = load_file(checkpoint / "model.safetensors")
    weights["head.bias"] = weights["head.bias"] + 0.5
    save_file(weights, checkpoint / "model.safetensors")

    with pytest.raises(CheckpointError, match="changed after saving"):
        registry.load(checkpoint)


def test_a_folder_of_another_scorer_or_of_nothing_is_refused(checkpoint, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no config.json"):
        cpu_scorer.load(tmp_path / "empty")
    rewrite_config(checkpoint, scorer="other")
    with pytest.raises(CheckpointError, match="'scorer' is 'other'"):
        cpu_scorer.load(checkpoint)


def test_an_untrained_scorer_refuses_to_score_but_embeds_for_cold_start(schema, dataset, tmp_path) -> None:
    matrix, _ = dataset
    scorer = registry.create("cpu-multihead", schema=schema)

    assert scorer.trained is False and scorer.predicted_fields == []
    with pytest.raises(UntrainedScorerError, match="has not been trained"):
        scorer.score_features(matrix[:3])
    with pytest.raises(UntrainedScorerError):
        scorer.score([distorted_photos(1)[0].jpeg])
    embedding = scorer.embed_features(matrix[:10])
    assert embedding.shape == (10, 64) and np.isfinite(embedding).all()
    assert np.array_equal(embedding, registry.create("cpu-multihead", schema=schema).embed_features(matrix[:10]))
    # Photos that differ more are further apart in the embedding.
    distances = np.linalg.norm(embedding[:, None] - embedding[None], axis=2)
    feature_distances = np.linalg.norm(
        ((matrix[:10] - features.NOMINAL_CENTER) / features.NOMINAL_SCALE)[:, None]
        - ((matrix[:10] - features.NOMINAL_CENTER) / features.NOMINAL_SCALE)[None],
        axis=2,
    )
    upper = np.triu_indices(10, 1)
    assert stats.spearmanr(distances[upper], feature_distances[upper])[0] > 0.9

    scorer.save(tmp_path / "untrained")
    assert registry.load(tmp_path / "untrained").trained is False


def test_a_trained_scorer_embeds_in_its_hidden_layer(trained, dataset) -> None:
    matrix, _ = dataset
    embedding = trained.embed_features(matrix[:4])
    assert embedding.shape == (4, TINY.hidden_size)
    assert np.allclose(embedding[0], trained.score_features(matrix[:1])[0].embedding, atol=1e-5)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([{"clarity": "great"}], r"labels\[0\]\['clarity'\]: 'great' is not one of bad, poor"),
        ([{"quality": 11.5}], r"labels\[0\]\['quality'\]: 11.5 is outside 1..10"),
        ([{"quality": "high"}], r"labels\[0\]\['quality'\]: expected a number"),
        ([{"sharpnes": "good"}], r"labels\[0\]: unknown field 'sharpnes'"),
        (["good"], r"labels\[0\]: expected a mapping"),
    ],
)
def test_labels_the_schema_does_not_allow_are_refused_naming_image_and_field(schema, dataset, labels, message) -> None:
    matrix, good = dataset
    rows = [dict(row) for row in good[:20]]
    rows[0:1] = labels

    with pytest.raises(LabelError, match=message):
        cpu_scorer.train(schema, matrix[:20], rows, CpuScorerConfig(epochs=1, ensemble_size=1))


def test_missing_labels_and_the_api_form_with_a_reason_are_accepted(schema, dataset) -> None:
    matrix, labels = dataset
    rows = [
        {"clarity": row["clarity"], "composition": {"value": 7, "reason": "centred"}} if i % 2 else {}
        for i, row in enumerate(labels[:30])
    ]
    rows[3] = None
    rows[5]["subject_background"] = "Subject: cup; background: table"  # text fields are not predicted

    scorer = cpu_scorer.train(schema, matrix[:30], rows, CpuScorerConfig(epochs=3, ensemble_size=2, hidden_size=8))

    assert scorer.training_summary["fields"]["clarity"]["n"] == 14  # 15 odd rows, one of them None
    assert scorer.predicted_fields == ["clarity", "composition"]
    assert scorer.score_features(matrix[:1])[0].fields["composition"].value == 7


def test_training_without_enough_labels_for_any_field_says_so(schema, dataset) -> None:
    matrix, _ = dataset
    rows = [{"quality": 5.0}] * 3 + [{}] * 7

    with pytest.raises(LabelError, match="no field has 5 or more labels: .*quality 3"):
        cpu_scorer.train(schema, matrix[:10], rows)


def test_features_of_the_wrong_shape_or_with_nan_are_refused(trained, dataset) -> None:
    matrix, _ = dataset
    with pytest.raises(ValueError, match=rf"shape \(N, {features.DIM}\)"):
        trained.score_features(matrix[:3, :10])
    broken = matrix[:3].copy()
    broken[1, 4] = np.nan
    with pytest.raises(ValueError, match="row 1 holds NaN"):
        trained.score_features(broken)


def test_bad_configurations_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ensemble_size must be an int >= 1"):
        CpuScorerConfig(ensemble_size=0)
    with pytest.raises(ValueError, match="dropout"):
        CpuScorerConfig(dropout=1.5)


def test_a_schema_with_nothing_to_predict_is_refused() -> None:
    with pytest.raises(ValueError, match="no field the model can predict"):
        cpu_scorer.create(schema={"fields": [{"key": "notes", "kind": "text"}]})


def test_the_scorer_registers_under_its_name() -> None:
    assert "cpu-multihead" in registry.names()
    assert isinstance(
        registry.create("cpu-multihead", schema={"fields": [{"key": "q", "kind": "continuous", "min": 0, "max": 1}]}),
        cpu_scorer.CpuScorer,
    )
