"""A handed-over linear regression pipeline, as the plain numbers the tabular kind scores with.

    weights = linear_weights(graph)    # regressor.json's content (kinds/tabular.py's FORMAT)

The pipeline's graph (`store.estimator_files`) must be a ColumnTransformer, then Ridge or
LinearRegression. Each of the ColumnTransformer's parts, alone or as a Pipeline, is one of:
- OneHotEncoder (nothing dropped): each category's weight is its column's coefficient;
- OrdinalEncoder: each category's weight is its code times the column's coefficient;
- SimpleImputer (the mean, median or a constant; with or without its missing-value indicator), then
  StandardScaler or MinMaxScaler, or either alone, or `passthrough`: a number's fill, centre, scale and
  weight (MinMaxScaler's `x * scale_ + min_` is written as `(x - centre) / scale`, equal to rounding).
A column's weights from several parts are added. Anything else is refused, naming the part.
"""
import numpy as np

from kinds.features import column_features
from kinds.pipelines import COLUMN_TRANSFORMER, steps
from store.artifacts import ModelError

FORMAT = 1  # kinds.tabular.FORMAT
MISSING = ""  # kinds.tabular.MISSING: a category not given
LINEAR = {"sklearn.linear_model._ridge.Ridge", "sklearn.linear_model._base.LinearRegression"}
LOGISTIC = "sklearn.linear_model._logistic.LogisticRegression"


def linear_weights(graph):
    """The plain numbers of a linear pipeline's graph: regressor.json's content for a regression pipeline,
    classifier.json's for a logistic regression (`kinds.tabular_classifier`: each weight a list, one per
    logit); `ModelError` naming what is not one (then the pipeline is served, if at all, by a kind that
    runs its steps)."""
    pipeline = steps(graph)
    if len(pipeline) != 2 or pipeline[0][1].name != COLUMN_TRANSFORMER or pipeline[1][1].name not in LINEAR | {
            LOGISTIC}:
        raise ModelError("not a ColumnTransformer followed by Ridge, LinearRegression or LogisticRegression.")
    model = pipeline[1][1].state
    classifier = pipeline[1][1].name == LOGISTIC
    coef = np.asarray(model.get("coef_"), dtype=float)
    intercept = np.atleast_1d(np.asarray(model.get("intercept_", np.nan), dtype=float))
    if classifier:
        classes = [str(c) for c in np.asarray(model.get("classes_")).tolist()]
        logits = 1 if len(classes) == 2 else len(classes)
        if model.get("solver") == "liblinear" and logits > 1 or model.get("multi_class") == "ovr":
            raise ModelError("a one-vs-rest logistic regression is not read; fit it with the default solver.")
        if coef.shape[:1] != (logits,) or intercept.shape != (logits,):
            raise ModelError(f"the logistic regression's coefficients are not {logits} row(s) for its classes.")
    elif coef.ndim != 1 or intercept.shape != (1,):
        raise ModelError("the linear model's coefficients are not one finite row (one target).")
    if not np.isfinite(coef).all() or not np.isfinite(intercept).all():
        raise ModelError("the linear model's coefficients are not all finite numbers.")
    features, fills = column_features(pipeline[0][1])
    weights = np.atleast_2d(coef).T  # per feature, its weight in each logit (one for a regression)
    if len(features) != len(weights):
        raise ModelError(f"the linear model has {len(weights)} coefficients, and its inputs make {len(features)} "
                         "features.")
    categories, numbers = {}, {}
    for feature, weight in zip(features, weights):
        column = feature["input"]
        if feature["type"] == "one-hot":
            table = categories.setdefault(column, {})
            table[feature["value"]] = table.get(feature["value"], 0.0) + weight
        elif feature["type"] == "ordinal":
            table = categories.setdefault(column, {})
            for value, code in feature["codes"].items():
                table[value] = table.get(value, 0.0) + code * weight
        else:
            numbers[column] = {"log": False, "fill": feature["fill"], "mean": feature["centre"],
                               "scale": feature["scale"], "weight": weight, "missing": None}
    for column, fill in fills.items():  # an imputer first: a value not given is scored as its fill
        categories[column][MISSING] = categories[column].get(fill, 0.0 * intercept)
    plain = (lambda vector: [float(v) for v in vector]) if classifier else (lambda vector: float(vector[0]))
    for table in categories.values():
        for value in table:
            table[value] = plain(table[value])
    for number in numbers.values():
        number["weight"] = plain(number["weight"])
        if number["missing"] is not None:
            number["missing"]["weight"] = plain(number["missing"]["weight"])
    exported = {"format": FORMAT, "intercept": plain(intercept), "categories": categories, "numbers": numbers}
    return {**exported, "classes": classes} if classifier else exported
