"""Reading an estimator someone hands over (store/estimator_files.py): a fitted pipeline saved with skops,
pickle or joblib reads as the same plain data, and a hostile file runs nothing and is refused in a line."""
import functools
import os
import pickle
import subprocess
import time

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC

from store.artifacts import ModelError
from store.estimator_files import Node, read_estimator
from support import Call

FORMATS = {
    "pickle": lambda model, path: path.write_bytes(pickle.dumps(model, protocol=5)),
    "pickle protocol 2": lambda model, path: path.write_bytes(pickle.dumps(model, protocol=2)),
    "joblib": lambda model, path: joblib.dump(model, path),
    "joblib, compressed": lambda model, path: joblib.dump(model, path, compress=3),
    "skops": lambda model, path: sio.dump(model, path),
}


@pytest.fixture(scope="module")
def films():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"genre": rng.choice(["Drama", "Comedy", "Horror"], 200),
                          "budget": rng.uniform(1e5, 1e8, 200), "running_time": rng.uniform(80, 150, 200)})
    frame.loc[::7, "budget"] = np.nan
    rating = rng.uniform(1, 10, 200)
    return frame, rating


def pipeline(final):
    prepare = ColumnTransformer([
        ("genre", OneHotEncoder(handle_unknown="ignore"), ["genre"]), ("genre_code", OrdinalEncoder(), ["genre"]),
        ("budget", Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]), ["budget"]),
        ("running_time", MinMaxScaler(), ["running_time"])])
    return Pipeline([("prepare", prepare), ("model", final)])


def step(graph, name):
    """A Pipeline node's step by name."""
    return dict(graph.state["steps"])[name]


@pytest.mark.parametrize("final", [Ridge(), LogisticRegression(), RandomForestRegressor(n_estimators=2, max_depth=3),
                                   HistGradientBoostingClassifier(max_iter=2)], ids=lambda e: type(e).__name__)
def test_every_format_reads_a_fitted_pipeline_as_the_same_data(films, tmp_path, final):
    frame, rating = films
    target = rating if type(final).__name__.endswith("Regressor") or isinstance(final, Ridge) else rating > 5
    fitted = pipeline(final).fit(frame, target)
    graphs = {}
    for name, save in FORMATS.items():
        path = tmp_path / name.replace(" ", "_").replace(",", "")
        save(fitted, path)
        graphs[name] = read_estimator(path)
    for name, graph in graphs.items():
        assert isinstance(graph, Node) and graph.name == "sklearn.pipeline.Pipeline", name
        model = step(graph, "model")
        assert model.name.endswith(type(final).__name__), name
        prepared = dict((t[0], t[1]) for t in step(graph, "prepare").state["transformers_"])
        assert prepared["genre"].state["categories_"][0].tolist() == ["Comedy", "Drama", "Horror"], name
        scale = dict(prepared["budget"].state["steps"])["scale"].state
        np.testing.assert_array_equal(scale["mean_"], fitted[0].named_transformers_["budget"][1].mean_)
        if hasattr(final, "coef_"):
            np.testing.assert_array_equal(model.state["coef_"], fitted[-1].coef_)
        if hasattr(fitted[-1], "estimators_"):
            tree = model.state["estimators_"][0].state["tree_"]
            assert tree.name == "sklearn.tree._tree.Tree"
            np.testing.assert_array_equal(tree.state["nodes"]["threshold"],
                                          fitted[-1].estimators_[0].tree_.threshold)


def hostile(marker, workdir):
    """Payloads that run code under plain pickle, by name: each touches `marker`."""
    touch = f"touch {marker}"
    return {
        "os.system": Call(os.system, touch),
        "builtins.exec": Call(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Call(subprocess.call, ["touch", str(marker)]),
        "getattr(__import__('os'), 'system')": Call(Call(getattr, Call(__import__, "os"), "system"), touch),
        "functools.partial": Call(Call(functools.partial, os.system, touch)),
        "object array holding a call": np.array([Call(os.system, touch)], dtype=object),
    }


def dressed(payload, dress, films):
    """The payload alone, or carried by a fitted pipeline (as a step's fitted attribute)."""
    if dress == "alone":
        return payload
    frame, rating = films
    fitted = pipeline(Ridge()).fit(frame, rating)
    fitted[-1].coef_ = payload
    return fitted


@pytest.mark.parametrize("save", ["pickle", "joblib", "joblib, compressed"])
@pytest.mark.parametrize("dress", ["alone", "a pipeline step's state"])
@pytest.mark.parametrize("payload", list(hostile("m", ".")))
def test_a_hostile_pickle_or_joblib_file_runs_nothing_and_is_refused_in_a_line(films, tmp_path, save, dress, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "model.file"
    FORMATS[save](dressed(hostile(marker, tmp_path)[payload], dress, films), path)
    with pytest.raises(ModelError) as refused:
        read_estimator(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: refused: ") and "\n" not in message, message
    time.sleep(0.05)  # a spawned `touch` would have had its time
    assert not marker.exists(), "reading the file ran its payload"


def test_a_function_transformer_is_refused_saying_what_to_do_instead(films, tmp_path):
    frame, rating = films
    fitted = Pipeline([("log", FunctionTransformer(np.log1p)), ("model", Ridge())]).fit(frame[["running_time"]], rating)
    for save in ("skops", "pickle", "joblib"):
        path = tmp_path / save
        FORMATS[save](fitted, path)
        with pytest.raises(ModelError, match="FunctionTransformer|is a function") as refused:
            read_estimator(path)
        assert "allowed transformers" in str(refused.value) or "FunctionTransformer" in str(refused.value)


def test_a_class_outside_the_list_is_refused_naming_it(films, tmp_path):
    frame, rating = films
    fitted = Pipeline([("scale", StandardScaler()), ("model", SVC())]).fit(frame[["running_time"]], rating > 5)
    for save in ("skops", "pickle", "joblib"):
        path = tmp_path / save
        FORMATS[save](fitted, path)
        with pytest.raises(ModelError, match=r"sklearn\.svm\._classes\.SVC, which is not a class this service reads"):
            read_estimator(path)


@pytest.mark.parametrize("content, complaint", [
    (b"", "not a skops file, a pickle or a joblib file"),
    (b"PK\x03\x04 not really a zip", "a zip file, but not a skops file"),
    (pickle.dumps({"a": 1}), "holds dict, not a fitted estimator"),
    (pickle.dumps(Ridge())[:-20], "not a readable pickle"),
])
def test_what_is_not_a_model_file_is_refused_in_a_line(tmp_path, content, complaint):
    path = tmp_path / "model.file"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=complaint):
        read_estimator(path)
