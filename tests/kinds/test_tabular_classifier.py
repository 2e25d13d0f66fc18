"""The tabular classifier (kinds/tabular_classifier.py): a logistic regression pipeline as plain numbers,
its probabilities scikit-learn's own, row by row and column by column."""
import json

import numpy as np
import pandas as pd
import pytest

from kinds import tabular_classifier
from kinds.linear_export import linear_weights
from kinds.pipelines import describe
from store.estimator_files import read_estimator
from tests.support import plant_pipeline, save_estimator
from training.adopt import export, input_specs


def served_from(fitted, held_out, tmp_path):
    """The classifier as `release.py add` makes it, without publishing it."""
    path = save_estimator(fitted, tmp_path / "plants.pkl")
    graph = read_estimator(path)
    described, weights = describe(graph), linear_weights(graph)
    _, _, _, optional = export(graph, described, path)
    manifest = {"name": "plants", "kind": "tabular-classifier", "labels": weights["classes"],
                "inputs": input_specs(described["inputs"], optional, held_out), "artifacts": {},
                "created_at": "2026-12-07T00:00:00+00:00"}
    return tabular_classifier.TabularClassifier(weights=json.loads(json.dumps(weights)), manifest=manifest, metrics={})


@pytest.mark.parametrize("classes", [("fern", "moss"), ("fern", "moss", "palm")], ids=["binary", "three labels"])
def test_the_probabilities_are_the_pipelines_own(tmp_path, classes):
    fitted, held_out = plant_pipeline(classes=classes)
    served = served_from(fitted, held_out, tmp_path)
    inputs = held_out.drop(columns="species")
    rows = [served.check_input({k: v for k, v in row.items() if v == v}, where="") for row in inputs.to_dict("records")]
    ours = np.array([served.probabilities_of(row) for row in rows])
    assert np.abs(ours - fitted.predict_proba(inputs)).max() < 1e-9
    columns = {name: [row[name] for row in rows] for name in served.by_name}
    assert np.abs(served.probability_columns(columns, len(rows)) - ours).max() < 1e-12
    answers = served.score(rows).answers
    assert [a["prediction"] for a in answers] == fitted.predict(inputs).tolist()
    assert answers[0]["confidence"] == round(max(ours[0]), 3) and list(answers[0]["probabilities"]) == list(classes)


def test_an_unknown_value_of_an_open_column_adds_nothing_and_is_named(tmp_path):
    fitted, held_out = plant_pipeline()
    served = served_from(fitted, held_out, tmp_path)
    row = served.check_input({"soil": "gravel", "height": 20.0}, where="")
    frame = pd.DataFrame([{"soil": "gravel", "height": 20.0, "leaf": np.nan}])
    assert np.abs(np.array(served.probabilities_of(row)) - fitted.predict_proba(frame)[0]).max() < 1e-9
    assert served.score([row]).answers[0]["unseen"] == ["soil"]


def test_feedback_is_a_label_of_the_model(tmp_path):
    fitted, held_out = plant_pipeline()
    served = served_from(fitted, held_out, tmp_path)
    assert served.check_target("moss") == "moss" and served.check_target("rose") is None
    assert served.check_target(1) is None
    assert served.error_of("moss", "moss") == 0.0 and served.error_of("moss", "fern") == 1.0


@pytest.mark.parametrize("change, says", [
    (lambda w: w.update(classes=["a", "b", "c"]), "its classes are not the manifest's labels"),
    (lambda w: w.update(intercept=[0.0]), "the intercept must be 3 finite number"),
    (lambda w: w["categories"]["soil"].update(clay=[1.0, float("nan"), 0.0]), "soil 'clay' must be 3 finite"),
    (lambda w: w["numbers"]["height"].update(scale=0), "mean, scale"),
])
def test_weights_that_do_not_fit_the_manifest_are_refused(tmp_path, change, says):
    fitted, held_out = plant_pipeline()
    served = served_from(fitted, held_out, tmp_path)
    weights = linear_weights(read_estimator(tmp_path / "plants.pkl"))
    weights = json.loads(json.dumps(weights))
    change(weights)
    with pytest.raises(ValueError, match=says):
        tabular_classifier.TabularClassifier(weights=weights, manifest=served.manifest, metrics={})


@pytest.mark.parametrize("classes", [("fern", "moss"), ("fern", "moss", "palm")], ids=["binary", "three labels"])
def test_an_explanation_adds_up_to_the_logits_the_probabilities_come_from(tmp_path, classes):
    fitted, held_out = plant_pipeline(classes=classes)
    served = served_from(fitted, held_out, tmp_path)
    row = served.check_input({"soil": "peat", "height": 22.0}, where="")
    probabilities = served.probabilities_of(row)

    def total(label):
        explained = served.explanation(row, label)
        return explained["intercept"] + sum(explained["contributions"].values())
    if len(classes) == 2:  # the answered label's log-odds against the other
        for label in (0, 1):
            assert 1 / (1 + np.exp(-total(label))) == pytest.approx(probabilities[label], abs=1e-12)
    else:  # each label's logit: their softmax is the probabilities
        logits = np.array([total(label) for label in range(3)])
        assert np.exp(logits) / np.exp(logits).sum() == pytest.approx(probabilities, abs=1e-12)
    assert served.score([row], explain=True).answers[0]["explanation"]["label"] == served.score([row]).answers[0][
        "prediction"]
