"""A handed-over linear regression pipeline as the tabular kind's plain numbers (kinds/linear_export.py):
the sum they make is the pipeline's own prediction, and what they cannot hold is refused by name."""
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from kinds.linear_export import linear_weights
from store.artifacts import ModelError
from store.estimator_files import read_estimator


@pytest.fixture(scope="module")
def films():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"genre": rng.choice(["Drama", "Comedy", "Horror"], 300),
                          "director": rng.choice(["A", "B", "C", "D"], 300),
                          "budget": rng.uniform(1e5, 1e8, 300), "running_time": rng.uniform(80, 150, 300)})
    frame.loc[::5, "budget"] = np.nan
    return frame, rng.uniform(1, 10, 300)


def graph_of(model, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return read_estimator(path)


def summed(weights, row):
    """The sum the tabular kind makes (kinds.tabular.TabularRegressor.predict_value), for a frame's row."""
    total = weights["intercept"]
    for name, table in weights["categories"].items():
        total += table.get(row[name], 0.0)
    for name, number in weights["numbers"].items():
        value = row[name]
        value = number["fill"] if value is None or (isinstance(value, float) and math.isnan(value)) else value
        total += number["weight"] * ((value - number["mean"]) / number["scale"])
    return total


@pytest.mark.parametrize("final", [Ridge(alpha=2.0), LinearRegression()], ids=["Ridge", "LinearRegression"])
def test_the_sum_of_the_exported_weights_is_the_pipelines_prediction(films, tmp_path, final):
    frame, rating = films
    prepare = ColumnTransformer([
        ("genre", OneHotEncoder(handle_unknown="ignore"), ["genre"]), ("director", OrdinalEncoder(), ["director"]),
        ("budget", Pipeline([("fill", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), ["budget"]),
        ("running_time", MinMaxScaler(), ["running_time"])])
    fitted = Pipeline([("prepare", prepare), ("model", final)]).fit(frame, rating)
    weights = linear_weights(graph_of(fitted, tmp_path))
    ours = np.array([summed(weights, row) for row in frame.to_dict("records")])
    assert np.abs(ours - fitted.predict(frame)).max() < 1e-9
    assert set(weights["categories"]) == {"genre", "director"} and set(weights["numbers"]) == {"budget", "running_time"}


def test_what_the_numbers_cannot_hold_is_refused_naming_the_part(films, tmp_path):
    frame, rating = films
    dropping = Pipeline([("prepare", ColumnTransformer([("genre", OneHotEncoder(drop="first"), ["genre"])])),
                         ("model", Ridge())]).fit(frame, rating)
    with pytest.raises(ModelError, match="genre: a one-hot encoder that drops a category"):
        linear_weights(graph_of(dropping, tmp_path))
    two_targets = Pipeline([("prepare", ColumnTransformer([("rt", StandardScaler(), ["running_time"])])),
                            ("model", Ridge())]).fit(frame, np.column_stack([rating, rating]))
    with pytest.raises(ModelError, match="one finite row"):
        linear_weights(graph_of(two_targets, tmp_path))
