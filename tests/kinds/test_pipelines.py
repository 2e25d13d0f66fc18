"""What a handed-over pipeline is (kinds/pipelines.py): its kind from its first and last steps, and a
tabular pipeline's inputs from the columns it was fitted on."""
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from kinds.pipelines import describe
from store.artifacts import ModelError
from store.estimator_files import read_estimator


def read(model, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return read_estimator(path)


@pytest.fixture(scope="module")
def films():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"genre": rng.choice(["Drama", "Comedy"], 100), "rating": rng.choice(["PG", "R"], 100),
                          "director": rng.choice(["A", "B", "C"], 100), "budget": rng.uniform(1e5, 1e8, 100)})
    return frame, rng.uniform(1, 10, 100)


def test_a_tabular_regressor_names_each_input_with_its_type_and_values(films, tmp_path):
    frame, rating = films
    prepare = ColumnTransformer([
        ("closed", OneHotEncoder(handle_unknown="error"), ["genre"]),
        ("open", OneHotEncoder(handle_unknown="ignore"), ["director"]),
        ("code", Pipeline([("fill", SimpleImputer(strategy="most_frequent")), ("encode", OrdinalEncoder())]),
         ["rating"]),
        ("budget", StandardScaler(), ["budget"])])
    described = describe(read(Pipeline([("prepare", prepare), ("model", Ridge())]).fit(frame, rating), tmp_path))
    assert described["kind"] == "tabular-regressor" and described["family"] == "Ridge" and described["labels"] is None
    assert described["inputs"] == [
        {"name": "genre", "type": "category", "values": ["Comedy", "Drama"]},
        {"name": "rating", "type": "category", "values": ["PG", "R"]},
        {"name": "director", "type": "name", "values": ["A", "B", "C"]},
        {"name": "budget", "type": "number"}]


def test_a_classifier_gives_its_labels_and_a_text_pipeline_is_the_text_kind(films, tmp_path):
    frame, rating = films
    forest = Pipeline([("prepare", ColumnTransformer([("budget", StandardScaler(), ["budget"])])),
                       ("model", RandomForestClassifier(n_estimators=2))])
    forest.fit(frame, np.where(rating > 5, "good", "bad"))
    described = describe(read(forest, tmp_path))
    assert described["kind"] == "tabular-classifier" and described["labels"] == ["bad", "good"]
    text = Pipeline([("words", TfidfVectorizer()), ("model", LogisticRegression())]).fit(
        ["a fine film", "a dull film", "fine", "dull"], ["Positive", "Negative", "Positive", "Negative"])
    assert describe(read(text, tmp_path)) == {"kind": "text-classifier", "family": "LogisticRegression",
                                              "inputs": None, "labels": ["Negative", "Positive"]}


def test_a_pipeline_fitted_on_an_array_is_refused_saying_to_fit_on_a_dataframe(films, tmp_path):
    frame, rating = films
    fitted = Pipeline([("scale", StandardScaler()), ("model", Ridge())]).fit(frame[["budget"]].to_numpy(), rating)
    with pytest.raises(ModelError, match="Fit it on a pandas DataFrame"):
        describe(read(fitted, tmp_path))
