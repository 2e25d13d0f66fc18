"""The tabular classifier: a label from named, typed inputs, by a logistic regression written as plain
numbers. No HTTP here.

A folder of this kind holds `classifier.json` (`kinds.linear_export`: the classes, and per logit the
intercept, each category's weight, each number's fill value, centre, scale and weight) and its
manifest's `inputs`, `labels` and `target`. The inputs are the tabular regressor's (`kinds.tabular`):
the same types, checks, errors, and the same GET, POST and V2 requests; what differs is the answer. One
logit (two classes) gives the second class's probability through the logistic function, several give
the probabilities through the softmax: scikit-learn's `predict_proba`, term by term (a test holds them
to 1e-9).
"""
import json
import math
from itertools import repeat
from pathlib import Path

import numpy as np

from kinds import tabular
from kinds.tabular import MISSING, TabularRegressor, check_inputs, is_finite
from serving.kind import HIGHER, ModelKind, Scored
from store import artifacts
from store.artifacts import ModelError

CLASSIFIER_FILE = "classifier.json"
DECIMALS = 3  # of a probability, as answered (the text models' too)


class TabularClassifier(TabularRegressor):
    """A verified, loaded tabular classifier: its inputs (read and checked as the regressor's), its labels
    and its weights."""

    KIND = "tabular-classifier"
    FILES = (CLASSIFIER_FILE,)
    GATE_FIGURES = {"accuracy": HIGHER, "macro_f1": HIGHER}
    V2_OUTPUTS = ("label", "confidence", "probabilities", "id")

    def __init__(self, *, weights, manifest, metrics):
        ModelKind.__init__(self, manifest=manifest, metrics=metrics)
        self.inputs = check_inputs(manifest.get("inputs"))
        self.target = manifest.get("target") or {}
        self.intercept, self.categories, self.numbers = check_weights(weights, self.inputs, self.labels)
        self.logits = len(self.intercept)
        self.zero = np.zeros(self.logits)
        self.by_name = {spec["name"]: spec for spec in self.inputs}
        self.checks = [(spec, spec["name"], spec["required"], tabular.accepts(spec)) for spec in self.inputs]

    @classmethod
    def from_files(cls, files, origin):
        """Load a model from `artifacts.read_files`' bytes (sent from `origin`), checked again here."""
        origin = Path(origin)
        manifest, metrics = artifacts.check_files(files, origin, cls.FILES)
        try:
            return cls(weights=json.loads(files[CLASSIFIER_FILE]), manifest=manifest, metrics=metrics)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{origin / CLASSIFIER_FILE}: not the weights of a tabular classifier ({exc}). "
                             "Add the model again with `release.py add`.") from None

    def v2_columns(self, scored):
        """The label, its probability and every label's, unrounded."""
        count = len(scored.answers)
        return {"label": ("BYTES", [count], lambda: [answer["prediction"] for answer in scored.answers]),
                "confidence": ("FP64", [count], lambda: [max(row) for row in scored.probabilities]),
                "probabilities": ("FP64", [count, len(self.labels)],
                                  lambda: [p for row in scored.probabilities for p in row])}

    # --- Scoring -----------------------------------------------------------------------------------

    def probabilities_of(self, row):
        """Each label's probability for one checked input, unrounded, in the labels' order."""
        total = self.intercept.copy()
        for name, weights in self.categories:
            value = row[name]
            total += weights.get(MISSING if value is None else value, self.zero)
        for name, log, fill, mean, scale, weight in self.numbers:
            value = row[name]
            if value is None:
                value = fill
            elif log:
                value = math.log(value)
            total += weight * ((value - mean) / scale)
        return probabilities(total[None, :])[0].tolist()

    def score(self, inputs, *, explain=False):
        """Score checked inputs; return `Scored`: per input its label, the label's probability, every
        label's (rounded), the inputs the model never saw; and the unrounded probabilities."""
        rows = [self.probabilities_of(row) for row in inputs]
        answers = []
        for row, probability in zip(inputs, rows):
            best = max(range(len(probability)), key=probability.__getitem__)
            answers.append({"prediction": self.labels[best], "confidence": round(probability[best], DECIMALS),
                            "probabilities": {label: round(p, DECIMALS) for label, p in zip(self.labels, probability)},
                            "unseen": self.unseen(row)})
            if explain:
                answers[-1]["explanation"] = self.explanation(row, best)
        return Scored(answers, None, None, rows)

    def explanation(self, row, best):
        """The predicted label's log-odds against the others' (two labels), or its logit (more: the softmax
        of the logits is the probabilities), as the intercept and each input's exact contribution."""
        sign = (1.0 if best == 1 else -1.0) if self.logits == 1 else 1.0
        at = 0 if self.logits == 1 else best
        contributions = {}
        for name, weights in self.categories:
            value = row[name]
            contributions[name] = sign * float(weights.get(MISSING if value is None else value, self.zero)[at])
        for name, log, fill, mean, scale, weight in self.numbers:
            value = row[name]
            used = fill if value is None else math.log(value) if log else value
            contributions[name] = sign * float(weight[at] * ((used - mean) / scale))
        return {"label": self.labels[best], "of": "log-odds" if self.logits == 1 else "logit",
                "intercept": sign * float(self.intercept[at]),
                "contributions": {spec["name"]: contributions[spec["name"]] for spec in self.inputs}}

    def predictions_of(self, inputs):
        """Each input's label, as `score` answers it."""
        return [answer["prediction"] for answer in self.score(inputs).answers]

    def agrees(self, answered, shadowed):
        """The same label."""
        return answered == shadowed

    def probability_columns(self, columns, count):
        """`probabilities_of` every row of `columns_of`'s columns, as an array (rows, labels)."""
        total = np.tile(self.intercept, (count, 1))
        for name, weights in self.categories:
            lookup = {**weights, None: weights.get(MISSING, self.zero)}
            total += np.array(list(map(lookup.get, columns[name], repeat(self.zero))))
        for name, log, fill, mean, scale, weight in self.numbers:
            given = np.array(columns[name], dtype=float)
            absent = np.isnan(given)
            if log:
                given = np.log(given)
            total += np.outer((np.where(absent, fill, given) - mean) / scale, weight)
        return probabilities(total)

    # --- Feedback: the true label --------------------------------------------------------------------

    def check_target(self, value):
        """The true label sent back, if it is one of the model's; else None."""
        return value if isinstance(value, str) and value in self.labels else None

    def error_of(self, prediction, target):
        """0 for the right label, 1 for a wrong one."""
        return 0.0 if prediction == target else 1.0

    # --- Describing itself -------------------------------------------------------------------------

    def describe(self):
        """Named inputs in; a label, its probability and every label's out."""
        described = super().describe()
        return {**described, "labels": self.labels,
                "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
                            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.labels)]}]}


def probabilities(logits):
    """The probabilities of rows of logits, as scikit-learn's logistic regression makes them: one logit per
    row gives the second label's through the logistic function, several the softmax of them."""
    if logits.shape[1] == 1:
        second = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return np.column_stack([1.0 - second, second])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def check_weights(weights, inputs, labels):
    """classifier.json's content, checked against the inputs and labels: (intercept array, [(name, {value:
    array})], [(name, log, fill, mean, scale, weight array)])."""
    if not isinstance(weights, dict) or weights.get("format") != tabular.FORMAT:
        raise ValueError(f"format must be {tabular.FORMAT}")
    if not labels or weights.get("classes") != labels:
        raise ValueError("its classes are not the manifest's labels")
    logits = 1 if len(labels) == 2 else len(labels)

    def vector(value, what):
        if not isinstance(value, list) or len(value) != logits or not all(map(is_finite, value)):
            raise ValueError(f"{what} must be {logits} finite number(s)")
        return np.array(value, dtype=float)

    intercept = vector(weights.get("intercept"), "the intercept")
    kinds_ = {spec["name"]: spec["type"] for spec in inputs}
    required = {spec["name"] for spec in inputs if spec["required"]}
    categories, numbers = weights.get("categories"), weights.get("numbers")
    if not isinstance(categories, dict) or not isinstance(numbers, dict):
        raise ValueError("categories and numbers must be objects")
    if {n for n, k in kinds_.items() if k != "number"} != set(categories) or \
            {n for n, k in kinds_.items() if k == "number"} != set(numbers):
        raise ValueError("the weights' inputs are not the manifest's")
    checked_categories = []
    for name, table in categories.items():
        if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
            raise ValueError(f"{name}: not a table of values' weights")
        checked_categories.append((name, {k: vector(v, f"{name} {k!r}") for k, v in table.items()}))
    checked_numbers = []
    for name, spec in numbers.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("log"), bool) or spec.get("missing") is not None:
            raise ValueError(f"{name}: not a number's weights")
        fill = spec.get("fill")
        if not all(is_finite(spec.get(k)) for k in ("mean", "scale")) or spec["scale"] <= 0 or \
                (fill is not None and not is_finite(fill)) or (fill is None and name not in required):
            raise ValueError(f"{name}: mean, scale (positive) and fill (an optional number's) must be finite numbers")
        checked_numbers.append((name, spec["log"], float(fill) if fill is not None else math.nan, float(spec["mean"]),
                                float(spec["scale"]), vector(spec.get("weight"), f"{name}'s weight")))
    return intercept, checked_categories, checked_numbers
