"""Tree models of named inputs: a decision tree, a random forest or histogram gradient boosting, as plain
arrays. No HTTP here.

A folder of these kinds holds `forest.json` (`kinds.forest_export`: the features the pipeline's
ColumnTransformer makes of a row, the fills of imputed categories, the labels, and how the trees combine)
and `trees.npz` (every tree's nodes laid end to end, read with `numpy.load(allow_pickle=False)`), with
its manifest's `inputs`. The inputs are the tabular kinds' (`kinds.tabular`): the same types, checks,
errors and requests.

Scoring follows scikit-learn: the row's features are made as the ColumnTransformer makes them (cast to
float32 for a forest, as scikit-learn casts them; float64 for gradient boosting), and each tree walked
from its root (left when the feature is at most the threshold) to a leaf. A forest answers the mean of
its trees' leaves (a number, or each label's share); a boosted model the sum of its trees' leaves in
order onto its baseline, through its link (the logistic function, or the softmax). No value is ever
missing at a tree: an input the pipeline does not impute is required. One row walks plain lists; many
rows walk arrays, tree by tree. Every index was checked when the arrays were loaded: every child lies
after its node and inside the arrays, every feature inside the row, so a walk ends, inside them.
"""
import io
import json
import math
from pathlib import Path

import numpy as np

from kinds import tabular
from kinds.tabular import MISSING, TabularRegressor, check_inputs
from kinds.tabular_classifier import TabularClassifier, probabilities
from serving.kind import ModelKind
from store import artifacts
from store.artifacts import ModelError

FOREST_FILE, TREES_FILE = "forest.json", "trees.npz"
ARRAYS = {"left": "i", "right": "i", "feature": "i", "threshold": "f", "value": "f", "roots": "i"}


class TreeScoring:
    """What the two tree kinds share: loading the arrays, making a row's features, walking the trees."""

    FILES = (FOREST_FILE, TREES_FILE)
    EXPLAINS = False  # a forest's answer is no sum of one contribution per input

    def setup(self, described, arrays):
        """Check and keep `forest.json`'s content and the trees' arrays; ready the inputs (as the tabular
        kinds' `__init__` does)."""
        self.inputs = check_inputs(self.manifest.get("inputs"))
        self.target = self.manifest.get("target") or {}
        self.by_name = {spec["name"]: spec for spec in self.inputs}
        self.checks = [(spec, spec["name"], spec["required"], tabular.accepts(spec)) for spec in self.inputs]
        features, fills = check_features(described, self.by_name)
        outputs = 1 if not self.labels or len(self.labels) == 2 else len(self.labels)  # a boosted model's sums
        self.combine, self.baseline, self.link = check_combination(described, outputs)
        self.dtype = np.float32 if self.combine == "mean" else np.float64
        self.width = len(features)
        self.encode = encoders(features, fills, self.by_name)
        # unseen() looks here for a category or name's known values
        self.categories = [(name, {value: None for value in known}) for name, known in known_values(features).items()]
        if self.combine == "mean":  # a forest's leaves: a number, or each label's share
            outputs = len(self.labels) if self.labels else 1
        self.left, self.right, self.feature, self.threshold, self.value, self.roots = check_arrays(
            arrays, self.width, outputs)
        self.lists = (self.left.tolist(), self.right.tolist(), self.feature.tolist(), self.threshold.tolist())
        self.leaf_values = self.value.tolist()

    @classmethod
    def from_files(cls, files, origin):
        """Load a model from `artifacts.read_files`' bytes (sent from `origin`), checked again here."""
        origin = Path(origin)
        manifest, metrics = artifacts.check_files(files, origin, cls.FILES)
        try:
            described = json.loads(files[FOREST_FILE])
            with np.load(io.BytesIO(files[TREES_FILE]), allow_pickle=False) as loaded:
                arrays = {name: loaded[name] for name in loaded.files}
            return cls(described=described, arrays=arrays, manifest=manifest, metrics=metrics)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise ModelError(f"{origin}: not the trees of a model of named inputs ({exc}). Add the model again "
                             "with `release.py add`.") from None

    def features_of(self, row):
        """One checked row's features as the trees compare them: float32 values for a forest's (as
        scikit-learn casts them), float64 for a boosted model's; as Python floats."""
        return np.array(self.row_features(row), dtype=self.dtype).tolist()

    def leaves_mean(self, row):
        """The model's answer for one checked row, one walk per tree, as a list (one number, or each label's
        probability): a forest's mean of the leaves reached, or a boosted model's sum of them and its
        baseline, through its link."""
        left, right, feature, threshold = self.lists
        x = self.features_of(row)
        total = list(self.baseline) if self.combine == "sum" else None
        for node in self.roots.tolist():
            while left[node] != -1:
                node = left[node] if x[feature[node]] <= threshold[node] else right[node]
            reached = self.leaf_values[node]
            total = list(reached) if total is None else [a + b for a, b in zip(total, reached)]
        if self.combine == "mean":
            total = [value / len(self.roots) for value in total]
        return self.link(np.array([total]))[0].tolist()

    def leaves_mean_columns(self, columns, count):
        """`leaves_mean` of every row of `columns_of`'s columns, walked as arrays: (rows, values)."""
        rows = [{name: columns[name][i] for name in self.by_name} for i in range(count)]
        x = np.array([self.row_features(row) for row in rows], dtype=self.dtype)
        total = np.tile(np.array(self.baseline), (count, 1)) if self.combine == "sum" else np.zeros(
            (count, self.value.shape[1]))
        at = np.arange(count)
        for root in self.roots.tolist():
            node = np.full(count, root)
            inside = self.left[node] != -1
            while inside.any():
                going = node[inside]
                goes_left = x[at[inside], self.feature[going]] <= self.threshold[going]
                node[inside] = np.where(goes_left, self.left[going], self.right[going])
                inside = self.left[node] != -1
            total += self.value[node]
        return self.link(total / len(self.roots) if self.combine == "mean" else total)

    def row_features(self, row):
        """One checked row's features, as a list of floats (before the cast to float32)."""
        x = [0.0] * self.width
        for name, encode in self.encode:
            encode(row[name], x)
        return x


class TreeRegressor(TreeScoring, TabularRegressor):
    """A decision tree or random forest regressor of named inputs."""

    KIND = "tree-regressor"

    def __init__(self, *, described, arrays, manifest, metrics):
        ModelKind.__init__(self, manifest=manifest, metrics=metrics)
        self.setup(described, arrays)
        self.lowest, self.highest = -math.inf, math.inf
        self.decimals, self.typical_error, self.tolerance = tabular.answer_scale(self.target, metrics)

    def predict_value(self, row):
        """The forest's number for one checked input, unrounded."""
        return self.leaves_mean(row)[0]

    def predict_columns(self, columns, count):
        """`predict_value` of every row of `columns_of`'s columns."""
        return self.leaves_mean_columns(columns, count)[:, 0]


class TreeClassifier(TreeScoring, TabularClassifier):
    """A decision tree or random forest classifier of named inputs."""

    KIND = "tree-classifier"

    def __init__(self, *, described, arrays, manifest, metrics):
        ModelKind.__init__(self, manifest=manifest, metrics=metrics)
        if described.get("classes") != self.labels:
            raise ValueError("its classes are not the manifest's labels")
        self.setup(described, arrays)

    def probabilities_of(self, row):
        """Each label's probability for one checked input: the mean of its trees' leaves' shares."""
        return self.leaves_mean(row)

    def probability_columns(self, columns, count):
        """`probabilities_of` every row of `columns_of`'s columns, as an array (rows, labels)."""
        return self.leaves_mean_columns(columns, count)


def check_features(described, inputs):
    """forest.json's features and fills, checked: each feature of a known input, of a known type."""
    if not isinstance(described, dict) or described.get("format") != 1:
        raise ValueError("format must be 1")
    features, fills = described.get("features"), described.get("fills") or {}
    if not isinstance(features, list) or not features or not isinstance(fills, dict):
        raise ValueError("no features")
    for feature in features:
        kind = feature.get("type") if isinstance(feature, dict) else None
        spec = inputs.get(feature.get("input")) if kind else None
        if spec is None or kind not in ("one-hot", "ordinal", "number") or (kind == "number") != (
                spec["type"] == "number"):
            raise ValueError(f"a feature of no input of the manifest: {str(feature)[:80]}")
        if kind == "number" and not all(tabular.is_finite(feature.get(k)) for k in ("centre", "scale")):
            raise ValueError(f"{feature['input']}: centre and scale must be finite numbers")
        if kind == "number" and (feature.get("fill") is not None and not tabular.is_finite(feature["fill"])):
            raise ValueError(f"{feature['input']}: its fill must be a finite number")
        if kind == "ordinal" and not (isinstance(feature.get("codes"), dict) and all(
                map(tabular.is_finite, feature["codes"].values()))):
            raise ValueError(f"{feature['input']}: its codes must be numbers")
    return features, {str(k): str(v) for k, v in fills.items()}


LINKS = {"identity": lambda values: values, "softmax": probabilities, "logistic": probabilities}


def check_combination(described, outputs):
    """(how the trees' leaves combine, a boosted model's baseline, the link to its answer) of forest.json,
    checked: a forest's mean, or a boosted model's sum and baseline (one per output) through its link."""
    combine, baseline, link = described.get("combine"), described.get("baseline"), described.get("link")
    if combine == "mean" and baseline is None and link == "identity":
        return combine, None, LINKS[link]
    if combine != "sum" or link not in LINKS or not isinstance(baseline, list) or \
            len(baseline) != outputs or not all(map(tabular.is_finite, baseline)):
        raise ValueError("not a forest's mean nor a boosted model's sum, baseline and link")
    return combine, [float(b) for b in baseline], LINKS[link]


def known_values(features):
    """{input: its known values} of the category and name inputs, in the features' order."""
    known = {}
    for feature in features:
        if feature["type"] == "one-hot":
            known.setdefault(feature["input"], []).append(feature["value"])
        elif feature["type"] == "ordinal":
            known.setdefault(feature["input"], []).extend(feature["codes"])
    return known


def encoders(features, fills, inputs):
    """[(input, a function(value, x) writing the input's features into the row x)], one per input."""
    by_input = {}
    for index, feature in enumerate(features):
        by_input.setdefault(feature["input"], []).append((index, feature))
    made = []
    for name, placed in by_input.items():
        if inputs[name]["type"] == "number":
            made.append((name, number_encoder(placed)))
        else:
            made.append((name, category_encoder(placed, fills.get(name))))
    return made


def number_encoder(placed):
    """Write a number's features: `(value or fill - centre) / scale` at each place it is used."""
    def encode(value, x):
        for index, feature in placed:
            given = feature["fill"] if value is None else value
            x[index] = (given - feature["centre"]) / feature["scale"]
    return encode


def category_encoder(placed, fill):
    """Write a category's features: 1 at its one-hot place (none for an unknown value), its ordinal code."""
    ones, codes = {}, []
    for index, feature in placed:
        if feature["type"] == "one-hot":
            ones.setdefault(feature["value"], []).append(index)
        else:
            codes.append((index, feature["codes"]))

    def encode(value, x):
        if value is None:
            value = MISSING if fill is None else fill
        for index in ones.get(value, ()):
            x[index] = 1.0
        for index, table in codes:
            x[index] = float(table.get(value, 0))
    return encode


def check_arrays(arrays, width, outputs):
    """trees.npz's arrays, checked so that every walk stays inside them and ends: each internal node's
    children after it and inside, each feature inside the row, thresholds and values finite numbers."""
    for name, kind in ARRAYS.items():
        array = arrays.get(name)
        if not isinstance(array, np.ndarray) or array.dtype.kind != kind or array.ndim != (2 if name == "value" else 1):
            raise ValueError(f"{name} is not an array of the expected type")
    left, right, feature, threshold, value, roots = (arrays[name] for name in ARRAYS)
    count = len(left)
    if not count or any(len(a) != count for a in (right, feature, threshold, value)) or value.shape[1] != outputs:
        raise ValueError("the trees' arrays are not one row per node")
    index = np.arange(count)
    internal = left != -1
    if not ((~internal | ((left > index) & (left < count) & (right > index) & (right < count))).all()
            and ((internal | (right == -1)).all())):
        raise ValueError("a node's children are not after it and inside the trees")
    if not ((feature >= 0) & (feature < width)).all() or np.isnan(threshold).any() or \
            not np.isfinite(value).all():  # a boosted tree's threshold may be infinite: all one way
        raise ValueError("a feature outside the row, or a threshold or value not a finite number")
    if not len(roots) or not ((roots >= 0) & (roots < count)).all():
        raise ValueError("a tree's root outside the trees")
    return left, right, feature, threshold, value, roots
