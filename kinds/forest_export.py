"""A handed-over decision tree or random forest pipeline, as plain arrays the tree kinds score with.

    described, arrays = forest_arrays(graph)    # forest.json's content, and trees.npz's arrays

The pipeline's graph (`store.estimator_files`) must be a ColumnTransformer (its features as
`kinds.features` reads them), then DecisionTreeRegressor, DecisionTreeClassifier, RandomForestRegressor
or RandomForestClassifier of one output. Every tree is checked (`kinds.trees.check_tree`) before its
arrays are copied out, so no index in them points outside them; the trees are then laid end to end:
`left` and `right` (a node's children, -1 at a leaf, counted from the first tree's root), `feature`,
`threshold`, `value` (a leaf's number, or its share of each label) and `roots` (each tree's first node).
"""
import numpy as np

from kinds.features import column_features
from kinds.pipelines import COLUMN_TRANSFORMER, steps
from kinds.trees import LEAF, check_tree
from store.artifacts import ModelError

FORMAT = 1
TREE_REGRESSOR = "sklearn.tree._classes.DecisionTreeRegressor"
TREE_CLASSIFIER = "sklearn.tree._classes.DecisionTreeClassifier"
FOREST_REGRESSOR = "sklearn.ensemble._forest.RandomForestRegressor"
FOREST_CLASSIFIER = "sklearn.ensemble._forest.RandomForestClassifier"
CLASSIFIERS = {TREE_CLASSIFIER, FOREST_CLASSIFIER}
MAX_NODES = 20_000_000  # over every tree: a forest beyond is refused rather than read into memory


def forest_arrays(graph):
    """({"format", "features", "fills", "classes"}, {"left", "right", "feature", "threshold", "value",
    "roots"}) of a tree pipeline's graph; `ModelError` naming what is not one."""
    pipeline = steps(graph)
    final = pipeline[-1][1]
    if len(pipeline) != 2 or pipeline[0][1].name != COLUMN_TRANSFORMER or \
            final.name not in {TREE_REGRESSOR, TREE_CLASSIFIER, FOREST_REGRESSOR, FOREST_CLASSIFIER}:
        raise ModelError("not a ColumnTransformer followed by a decision tree or a random forest.")
    features, fills = column_features(pipeline[0][1])
    state = final.state
    if state.get("n_features_in_") != len(features) or state.get("n_outputs_", 1) != 1:
        raise ModelError(f"{final.name.rsplit('.', 1)[1]} takes {state.get('n_features_in_')} features of "
                         f"{state.get('n_outputs_')} output(s); its ColumnTransformer makes {len(features)}, and one "
                         "output is served.")
    classifier = final.name in CLASSIFIERS
    classes = [str(c) for c in np.asarray(state.get("classes_")).tolist()] if classifier else None
    trees = state.get("estimators_") if final.name in (FOREST_REGRESSOR, FOREST_CLASSIFIER) else [final]
    if not isinstance(trees, list) or not trees:
        raise ModelError("the forest holds no fitted trees.")
    parts, offset = [], 0
    for i, tree in enumerate(trees):
        where = f"{final.name.rsplit('.', 1)[1]} tree {i}"
        checked = check_tree(getattr(tree, "state", {}).get("tree_"), len(features), where)
        nodes, values = checked["nodes"], checked["values"][:, 0, :]
        if classifier:
            if values.shape[1] != len(classes):
                raise ModelError(f"{where}: its values are not one share per label.")
            totals = values.sum(axis=1, keepdims=True)
            values = values / np.where(totals == 0.0, 1.0, totals)  # as DecisionTreeClassifier.predict_proba
        else:
            values = values[:, :1]
        leaf = nodes["left_child"] == LEAF
        parts.append((np.where(leaf, LEAF, nodes["left_child"] + offset), np.where(leaf, LEAF, nodes["right_child"]
                                                                                   + offset),
                      np.where(leaf, 0, nodes["feature"]), nodes["threshold"], values))
        offset += len(nodes)
        if offset > MAX_NODES:
            raise ModelError(f"the forest has more than {MAX_NODES:,} nodes; serve a smaller one.")
    left, right, feature, threshold, value = (np.concatenate(column) for column in zip(*parts))
    roots = np.cumsum([0] + [len(part[0]) for part in parts[:-1]])
    arrays = {"left": left.astype(np.int64), "right": right.astype(np.int64), "feature": feature.astype(np.int64),
              "threshold": threshold.astype(np.float64), "value": value.astype(np.float64),
              "roots": roots.astype(np.int64)}
    return {"format": FORMAT, "features": features, "fills": fills, "classes": classes}, arrays
