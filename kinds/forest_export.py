"""A handed-over tree pipeline (a decision tree, a random forest, histogram gradient boosting), as plain
arrays the tree kinds score with.

    described, arrays = forest_arrays(graph)    # forest.json's content, and trees.npz's arrays

The pipeline's graph (`store.estimator_files`) must be a ColumnTransformer (its features as
`kinds.features` reads them), then DecisionTreeRegressor, DecisionTreeClassifier, RandomForestRegressor,
RandomForestClassifier, HistGradientBoostingRegressor or HistGradientBoostingClassifier of one output.
Every tree is checked (`kinds.trees.check_tree`, `check_hist_tree`) before its arrays are copied out, so
no index in them points outside them; the trees are then laid end to end: `left` and `right` (a node's
children, -1 at a leaf, counted from the first tree's root), `feature`, `threshold`, `value` (a leaf's
number, or its share of each label; a boosted tree's leaf value in its output's column) and `roots`
(each tree's first node).
"""
import numpy as np

from kinds.features import column_features
from kinds.pipelines import COLUMN_TRANSFORMER, steps
from kinds.trees import LEAF, check_hist_tree, check_tree
from store.artifacts import ModelError

FORMAT = 1
TREE_REGRESSOR = "sklearn.tree._classes.DecisionTreeRegressor"
TREE_CLASSIFIER = "sklearn.tree._classes.DecisionTreeClassifier"
FOREST_REGRESSOR = "sklearn.ensemble._forest.RandomForestRegressor"
FOREST_CLASSIFIER = "sklearn.ensemble._forest.RandomForestClassifier"
BOOSTED_REGRESSOR = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor"
BOOSTED_CLASSIFIER = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
CLASSIFIERS = {TREE_CLASSIFIER, FOREST_CLASSIFIER, BOOSTED_CLASSIFIER}
ESTIMATORS = {TREE_REGRESSOR, TREE_CLASSIFIER, FOREST_REGRESSOR, FOREST_CLASSIFIER, BOOSTED_REGRESSOR,
              BOOSTED_CLASSIFIER}
# A boosted regressor's loss, and what turns its summed trees into its prediction (scikit-learn's link): the
# squared error's, the one the reader takes (store.estimator_files.PARTS).
BOOSTED_LINKS = {"squared_error": "identity"}
MAX_NODES = 20_000_000  # over every tree: a forest beyond is refused rather than read into memory


def forest_arrays(graph):
    """({"format", "features", "fills", "classes", "combine", "baseline", "link"}, {"left", "right",
    "feature", "threshold", "value", "roots"}) of a tree pipeline's graph; `ModelError` naming what is not
    one. A forest's answer is the mean of its trees' leaves (`combine` "mean"); a boosted model's the sum
    of its trees' leaves and its `baseline`, through its `link` ("identity", "logistic" for two labels,
    "softmax" for more), each tree adding to one output."""
    pipeline = steps(graph)
    final = pipeline[-1][1]
    if len(pipeline) != 2 or pipeline[0][1].name != COLUMN_TRANSFORMER or final.name not in ESTIMATORS:
        raise ModelError("not a ColumnTransformer followed by a decision tree, a random forest or a histogram "
                         "gradient boosting model.")
    features, fills = column_features(pipeline[0][1])
    state = final.state
    if state.get("n_features_in_") != len(features) or state.get("n_outputs_", 1) != 1:
        raise ModelError(f"{final.name.rsplit('.', 1)[1]} takes {state.get('n_features_in_')} features of "
                         f"{state.get('n_outputs_')} output(s); its ColumnTransformer makes {len(features)}, and one "
                         "output is served.")
    classifier = final.name in CLASSIFIERS
    classes = [str(c) for c in np.asarray(state.get("classes_")).tolist()] if classifier else None
    described = {"format": FORMAT, "features": features, "fills": fills, "classes": classes}
    if final.name in (BOOSTED_REGRESSOR, BOOSTED_CLASSIFIER):
        parts, combine = boosted_parts(final, len(features), classes)
    else:
        parts, combine = forest_parts(final, len(features), classes), {"combine": "mean", "baseline": None,
                                                                      "link": "identity"}
    left, right, feature, threshold, value = (np.concatenate(column) for column in zip(*parts))
    roots = np.cumsum([0] + [len(part[0]) for part in parts[:-1]])
    arrays = {"left": left.astype(np.int64), "right": right.astype(np.int64), "feature": feature.astype(np.int64),
              "threshold": threshold.astype(np.float64), "value": value.astype(np.float64),
              "roots": roots.astype(np.int64)}
    return {**described, **combine}, arrays


def laid_out(left, right, feature, threshold, values, leaf, offset):
    """One tree's arrays, its children counted from the first tree's root (-1 at a leaf)."""
    return (np.where(leaf, LEAF, left + offset), np.where(leaf, LEAF, right + offset), np.where(leaf, 0, feature),
            threshold, values)


def forest_parts(final, width, classes):
    """Each tree's arrays of a decision tree or a random forest: a leaf's number, or its share of each label."""
    state = final.state
    trees = state.get("estimators_") if final.name in (FOREST_REGRESSOR, FOREST_CLASSIFIER) else [final]
    if not isinstance(trees, list) or not trees:
        raise ModelError("the forest holds no fitted trees.")
    parts, offset = [], 0
    for i, tree in enumerate(trees):
        where = f"{final.name.rsplit('.', 1)[1]} tree {i}"
        checked = check_tree(getattr(tree, "state", {}).get("tree_"), width, where)
        nodes, values = checked["nodes"], checked["values"][:, 0, :]
        if classes is not None:
            if values.shape[1] != len(classes):
                raise ModelError(f"{where}: its values are not one share per label.")
            totals = values.sum(axis=1, keepdims=True)
            values = values / np.where(totals == 0.0, 1.0, totals)  # as DecisionTreeClassifier.predict_proba
        else:
            values = values[:, :1]
        parts.append(laid_out(nodes["left_child"], nodes["right_child"], nodes["feature"], nodes["threshold"],
                              values, nodes["left_child"] == LEAF, offset))
        offset += len(nodes)
        if offset > MAX_NODES:
            raise ModelError(f"the forest has more than {MAX_NODES:,} nodes; serve a smaller one.")
    return parts


def boosted_parts(final, width, classes):
    """(each tree's arrays, how they combine) of a HistGradientBoosting model: its trees in the order it
    added them, each leaf's value in its output's column."""
    state = final.state
    name = final.name.rsplit(".", 1)[1]
    if state.get("_preprocessor") is not None or np.asarray(state.get("is_categorical_") or False).any():
        raise ModelError(f"{name}: categorical_features are not served; one-hot or ordinal-encode the column in "
                         "the ColumnTransformer instead.")
    outputs = 1 if classes is None or len(classes) == 2 else len(classes)
    if classes is None:
        link = BOOSTED_LINKS.get(state.get("loss"))
        if link is None:
            raise ModelError(f"{name}: its loss {str(state.get('loss'))[:40]!r} is not served.")
    else:
        link = "logistic" if outputs == 1 else "softmax"
    baseline = np.asarray(state.get("_baseline_prediction"), dtype=float).reshape(-1)
    iterations = state.get("_predictors")
    if baseline.shape != (outputs,) or not np.isfinite(baseline).all() or not isinstance(iterations, list) or \
            not iterations or not all(isinstance(trees, list) and len(trees) == outputs for trees in iterations):
        raise ModelError(f"{name}: its baseline and trees are not one per output.")
    parts, offset = [], 0
    for i, trees in enumerate(iterations):
        for column, predictor in enumerate(trees):
            nodes = check_hist_tree(predictor, width, f"{name} iteration {i} tree {column}")
            leaf = nodes["is_leaf"].astype(bool)
            values = np.zeros((len(nodes), outputs))
            values[:, column] = np.where(leaf, nodes["value"], 0.0)
            parts.append(laid_out(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64),
                                  nodes["feature_idx"], nodes["num_threshold"], values, leaf, offset))
            offset += len(nodes)
            if offset > MAX_NODES:
                raise ModelError(f"the model has more than {MAX_NODES:,} nodes; serve a smaller one.")
    return parts, {"combine": "sum", "baseline": baseline.tolist(), "link": link}
