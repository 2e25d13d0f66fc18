"""Tree models of named inputs (kinds/forest.py, kinds/forest_export.py): a decision tree or a random forest
pipeline as checked arrays, its answers scikit-learn's own, row by row and column by column."""
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import kinds
from kinds import forest
from kinds.forest_export import forest_arrays
from store.artifacts import ModelError
from store.estimator_files import read_estimator
from tests.support import house_pipeline, plant_pipeline, save_estimator
from training import adopt


def added(pipeline, held_out, tmp_path, saved_as="model.skops"):
    """The pipeline added with `release.py add`'s machinery, loaded as a server loads it."""
    held_out.to_csv(tmp_path / "data.csv", index=False)
    adopt.add("trees", save_estimator(pipeline, tmp_path / saved_as), tmp_path / "data.csv", model_dir=tmp_path / "m")
    return kinds.load(tmp_path / "m" / "trees")


def rows_of(served, inputs):
    return [served.check_input({k: v for k, v in row.items() if v == v}, where="") for row in inputs.to_dict("records")]


@pytest.mark.parametrize("model", [DecisionTreeRegressor(random_state=0), RandomForestRegressor(n_estimators=50,
                                                                                                random_state=0)],
                         ids=["tree", "forest"])
def test_a_regressors_numbers_are_the_pipelines_own(tmp_path, model):
    fitted, held_out = house_pipeline()
    inputs = held_out.drop(columns="price")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]), ("model", model)]).fit(inputs, held_out["price"])
    served = added(pipeline, held_out, tmp_path)
    assert served.KIND == "tree-regressor"
    rows = rows_of(served, inputs)
    ours = np.array([served.predict_value(row) for row in rows])
    assert np.abs(ours - pipeline.predict(inputs)).max() < 1e-9
    columns = {name: [row[name] for row in rows] for name in served.by_name}
    assert np.array_equal(served.predict_columns(columns, len(rows)), ours)


@pytest.mark.parametrize("model", [DecisionTreeClassifier(max_depth=4, random_state=0),
                                   RandomForestClassifier(n_estimators=50, random_state=0)], ids=["tree", "forest"])
@pytest.mark.parametrize("saved_as", ["model.skops", "model.joblib", "model.pkl"])
def test_a_classifiers_probabilities_are_the_pipelines_own(tmp_path, model, saved_as):
    fitted, held_out = plant_pipeline()
    inputs = held_out.drop(columns="species")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]), ("model", model)]).fit(inputs, held_out["species"])
    served = added(pipeline, held_out, tmp_path, saved_as)
    assert served.KIND == "tree-classifier" and served.labels == ["fern", "moss", "palm"]
    rows = rows_of(served, inputs)
    ours = np.array([served.probabilities_of(row) for row in rows])
    assert np.abs(ours - pipeline.predict_proba(inputs)).max() < 1e-9
    assert [a["prediction"] for a in served.score(rows).answers] == pipeline.predict(inputs).tolist()
    columns = {name: [row[name] for row in rows] for name in served.by_name}
    assert np.abs(served.probability_columns(columns, len(rows)) - ours).max() < 1e-12


def test_ordinal_codes_and_min_max_scaling_reach_the_trees_as_in_the_pipeline(tmp_path):
    _, held_out = plant_pipeline(rows=600)
    prepare = ColumnTransformer([("soil", OrdinalEncoder(), ["soil"]), ("sizes", MinMaxScaler(), ["height"])])
    inputs = held_out[["soil", "height"]]
    pipeline = Pipeline([("prepare", prepare), ("model", RandomForestClassifier(n_estimators=20, random_state=1))])
    pipeline.fit(inputs, held_out["species"])
    served = added(pipeline, held_out[["soil", "height", "species"]], tmp_path)
    ours = np.array([served.probabilities_of(row) for row in rows_of(served, inputs)])
    assert np.abs(ours - pipeline.predict_proba(inputs)).max() < 1e-9


def test_a_crafted_tree_is_refused_before_any_use(tmp_path):
    fitted, held_out = house_pipeline()
    inputs = held_out.drop(columns="price")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]), ("model", RandomForestRegressor(n_estimators=3))])
    graph = read_estimator(save_estimator(pipeline.fit(inputs, held_out["price"]), tmp_path / "f.pkl"))
    tree = graph.state["steps"][1][1].state["estimators_"][1].state["tree_"].state
    tree["nodes"]["left_child"][0] = len(tree["nodes"]) + 5  # a child past the last node
    with pytest.raises(ModelError, match="RandomForestRegressor tree 1: node 0 points to children"):
        forest_arrays(graph)


@pytest.mark.parametrize("change, says", [
    (lambda a: a["left"].__setitem__(0, 10**6), "children are not after it and inside"),
    (lambda a: a["left"].__setitem__(1, 0), "children are not after it and inside"),  # a walk that would loop
    (lambda a: a["feature"].__setitem__(0, 999), "a feature outside the row"),
    (lambda a: a["threshold"].__setitem__(0, np.nan), "threshold or value not a finite number"),
    (lambda a: a["roots"].__setitem__(0, -3), "root outside the trees"),
    (lambda a: a.update(value=a["value"].astype(object)), "value is not an array of the expected type"),
])
def test_tree_arrays_that_would_read_outside_themselves_are_refused(tmp_path, change, says):
    fitted, held_out = house_pipeline()
    inputs = held_out.drop(columns="price")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]), ("model", RandomForestRegressor(n_estimators=2))])
    described, arrays = forest_arrays(read_estimator(save_estimator(pipeline.fit(inputs, held_out["price"]),
                                                                    tmp_path / "f.pkl")))
    width = len(described["features"])
    assert forest.check_arrays(arrays, width=width, outputs=1)[0] is arrays["left"]  # as exported: taken
    change(arrays)
    with pytest.raises(ValueError, match=says):
        forest.check_arrays(arrays, width=width, outputs=1)


@pytest.mark.parametrize("classes", [("fern", "moss"), ("fern", "moss", "palm")], ids=["binary", "three labels"])
def test_a_boosted_classifiers_probabilities_are_the_pipelines_own(tmp_path, classes):
    fitted, held_out = plant_pipeline(classes=classes, rows=800)
    inputs = held_out.drop(columns="species")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]),
                         ("model", HistGradientBoostingClassifier(max_iter=30, random_state=0))])
    served = added(pipeline.fit(inputs, held_out["species"]), held_out, tmp_path)
    assert served.KIND == "tree-classifier"
    rows = rows_of(served, inputs)
    ours = np.array([served.probabilities_of(row) for row in rows])
    assert np.abs(ours - pipeline.predict_proba(inputs)).max() < 1e-9
    columns = {name: [row[name] for row in rows] for name in served.by_name}
    assert np.abs(served.probability_columns(columns, len(rows)) - ours).max() < 1e-12


def test_a_boosted_regressors_numbers_are_the_pipelines_own_and_other_losses_are_refused(tmp_path):
    fitted, held_out = house_pipeline(rows=1200)
    inputs = held_out.drop(columns="price")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]),
                         ("model", HistGradientBoostingRegressor(max_iter=40, random_state=0))])
    served = added(pipeline.fit(inputs, held_out["price"]), held_out, tmp_path)
    ours = np.array([served.predict_value(row) for row in rows_of(served, inputs)])
    assert np.abs(ours - pipeline.predict(inputs)).max() < 1e-9
    poisson = Pipeline([("prepare", fitted.steps[0][1]), ("model", HistGradientBoostingRegressor(loss="poisson"))])
    poisson.fit(inputs, held_out["price"].clip(lower=1))
    (tmp_path / "poisson").mkdir()
    with pytest.raises(ModelError, match="HalfPoissonLoss, which is not a class this service reads"):
        added(poisson, held_out, tmp_path / "poisson")


def test_a_forest_says_it_has_no_contributions_to_explain(tmp_path):
    from serving.errors import BadQuery

    fitted, held_out = house_pipeline()
    inputs = held_out.drop(columns="price")
    pipeline = Pipeline([("prepare", fitted.steps[0][1]), ("model", RandomForestRegressor(n_estimators=3))])
    served = added(pipeline.fit(inputs, held_out["price"]), held_out, tmp_path)
    with pytest.raises(BadQuery, match="a tree regressor: its answers have no exact contributions to explain"):
        served.inputs_from_get(query_string=b"area=north&explain=true", mimetype="", body=b"", settings=None)
    assert "explain" not in [p["name"] for p in served.describe()["inputs"]] and not served.describe()["explains"]
