"""Trees read from a handed-over file are checked before any use (kinds/trees.py): each index inside its
arrays, each feature one of the model's, each number finite; a crafted tree is refused naming its node."""
import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier

from kinds.trees import check_hist_tree, check_tree
from store.artifacts import ModelError
from store.estimator_files import read_estimator


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    features = rng.uniform(size=(300, 4))
    return features, (features[:, 0] + features[:, 1] > 1).astype(int)


@pytest.fixture
def forest(data, tmp_path):
    path = tmp_path / "forest.pkl"
    path.write_bytes(pickle.dumps(RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(*data)))
    return read_estimator(path)


def trees_of(forest):
    return [estimator.state["tree_"] for estimator in forest.state["estimators_"]]


def test_a_fitted_forests_trees_pass(forest):
    for tree in trees_of(forest):
        assert check_tree(tree, 4, "tree")["node_count"] > 1


@pytest.mark.parametrize("damage, complaint", [
    (lambda nodes, values: nodes["left_child"].__setitem__(0, 10 ** 6), "node 0 points to children 1000000"),
    (lambda nodes, values: nodes["right_child"].__setitem__(0, 0), "node 0 points to children"),  # a cycle
    (lambda nodes, values: nodes["feature"].__setitem__(0, 4), "node 0 splits on feature 4; the model has 4"),
    (lambda nodes, values: nodes["threshold"].__setitem__(0, np.nan), "threshold is not a finite number"),
    (lambda nodes, values: values.__setitem__((0, 0, 0), np.inf), "values are not finite"),
])
def test_a_crafted_tree_is_refused_naming_what_is_wrong(forest, damage, complaint):
    tree = trees_of(forest)[0]
    damage(tree.state["nodes"], tree.state["values"])
    with pytest.raises(ModelError, match=complaint):
        check_tree(tree, 4, "model.estimators_[0]")


def test_histogram_boosting_trees_pass_and_a_crafted_one_is_refused(data, tmp_path):
    path = tmp_path / "boosting.pkl"
    path.write_bytes(pickle.dumps(HistGradientBoostingRegressor(max_iter=3).fit(*data)))
    graph = read_estimator(path)
    predictors = [p for iteration in graph.state["_predictors"] for p in iteration]
    for predictor in predictors:
        check_hist_tree(predictor, 4, "predictor")
    nodes = predictors[0].state["nodes"]
    nodes["left"][0] = len(nodes) + 5
    with pytest.raises(ModelError, match="node 0 points to children"):
        check_hist_tree(predictors[0], 4, "predictor")
