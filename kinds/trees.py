"""Decision trees as plain arrays, checked before any use: a tree read from a file someone handed over
(`store.estimator_files`) is data until every index in it is known to stay inside its arrays.

scikit-learn's own trees trust their arrays: a node whose child index points past the last node makes
`predict` read outside the array (a plain scikit-learn process dies of SIGSEGV at the first prediction
on such a pickle; skops leaves `sklearn.tree._tree.Tree` untrusted for that reason). Here a tree is
refused, naming the node and what is wrong, unless:
- every internal node's children lie after it and before the end (so every walk ends, at a leaf);
- every internal node's feature is one of the model's inputs, and its threshold is a finite number;
- the leaves' values are finite, one row per node, in the shape the estimator says.

Two layouts: scikit-learn's `Tree` (decision trees and random forests: `nodes` of left_child,
right_child, feature, threshold, ...; `values` of (nodes, outputs, classes)), and HistGradientBoosting's
`TreePredictor` (`nodes` of value, feature_idx, num_threshold, left, right, is_leaf, ...).
"""
import numpy as np

from store.artifacts import ModelError

LEAF = -1  # a Tree node's child index when it has none
TREE_FIELDS = {"left_child": "i", "right_child": "i", "feature": "i", "threshold": "f", "missing_go_to_left": "u"}
HIST_FIELDS = {"value": "f", "feature_idx": "i", "num_threshold": "f", "left": "u", "right": "u", "is_leaf": "u",
               "missing_go_to_left": "u", "is_categorical": "u"}


def check_fields(nodes, fields, where):
    """`nodes` is a 1-d structured array with each of `fields` ({name: numpy kind})."""
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or nodes.dtype.names is None:
        raise ModelError(f"{where}: its nodes are not a table of nodes.")
    for name, kind in fields.items():
        if name not in nodes.dtype.names or nodes.dtype[name].kind != kind:
            raise ModelError(f"{where}: its nodes have no field {name} of the expected type.")
    if len(nodes) == 0:
        raise ModelError(f"{where}: a tree with no node.")


def check_children(left, right, leaf, where):
    """Internal nodes' children lie after them and inside the table; a leaf has none (`leaf` marks them)."""
    count = len(left)
    index = np.arange(count)
    internal = ~leaf
    bad = internal & ~((left > index) & (left < count) & (right > index) & (right < count))
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise ModelError(f"{where}: node {node} points to children {int(left[node])} and {int(right[node])}, "
                         f"outside the {count} nodes after it; the tree is refused (reading it would read "
                         "outside its arrays).")
    return internal


def check_tree(tree, n_features, where):
    """A scikit-learn `Tree`'s state ({nodes, values, node_count, ...}) checked; returns it."""
    state = tree.state if hasattr(tree, "state") else tree
    if not isinstance(state, dict):
        raise ModelError(f"{where}: not a tree's state.")
    nodes, values = state.get("nodes"), state.get("values")
    check_fields(nodes, TREE_FIELDS, where)
    if state.get("node_count") != len(nodes):
        raise ModelError(f"{where}: node_count {state.get('node_count')!r} is not its {len(nodes)} nodes.")
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = (left == LEAF) & (right == LEAF)
    internal = check_children(left, right, leaf, where)
    feature = nodes["feature"][internal]
    if len(feature) and not ((feature >= 0) & (feature < n_features)).all():
        node = int(np.flatnonzero(internal)[np.flatnonzero((feature < 0) | (feature >= n_features))[0]])
        raise ModelError(f"{where}: node {node} splits on feature {int(nodes['feature'][node])}; the model has "
                         f"{n_features}.")
    if not np.isfinite(nodes["threshold"][internal]).all():
        raise ModelError(f"{where}: a split's threshold is not a finite number.")
    if not isinstance(values, np.ndarray) or values.ndim != 3 or len(values) != len(nodes) or \
            values.dtype.kind != "f" or not np.isfinite(values).all():
        raise ModelError(f"{where}: its values are not finite numbers, one row of (outputs, classes) per node.")
    return state


def check_hist_tree(predictor, n_features, where):
    """A HistGradientBoosting `TreePredictor`'s nodes checked; returns them. Categorical splits (bitsets)
    are refused: they are not among what is served."""
    state = predictor.state if hasattr(predictor, "state") else predictor
    nodes = state.get("nodes") if isinstance(state, dict) else None
    check_fields(nodes, HIST_FIELDS, where)
    leaf = nodes["is_leaf"].astype(bool)
    check_children(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, where)
    internal = ~leaf
    feature = nodes["feature_idx"][internal]
    if len(feature) and not ((feature >= 0) & (feature < n_features)).all():
        raise ModelError(f"{where}: a split on a feature the model does not have (it has {n_features}).")
    if nodes["is_categorical"][internal].any():
        raise ModelError(f"{where}: a split on categories (categorical_features), which is not served; "
                         "one-hot or ordinal-encode the column in the pipeline instead.")
    # A threshold may be infinite (every value not missing goes one way), never NaN.
    if np.isnan(nodes["num_threshold"][internal]).any() or not np.isfinite(nodes["value"][leaf]).all():
        raise ModelError(f"{where}: a threshold or a leaf's value is not a number.")
    return nodes
