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

from kinds.pipelines import COLUMN_TRANSFORMER, PIPELINE, steps
from store.artifacts import ModelError

FORMAT = 1  # kinds.tabular.FORMAT
MISSING = ""  # kinds.tabular.MISSING: a category not given
LINEAR = {"sklearn.linear_model._ridge.Ridge", "sklearn.linear_model._base.LinearRegression"}
LOGISTIC = "sklearn.linear_model._logistic.LogisticRegression"
ONE_HOT = "sklearn.preprocessing._encoders.OneHotEncoder"
ORDINAL = "sklearn.preprocessing._encoders.OrdinalEncoder"
IMPUTER = "sklearn.impute._base.SimpleImputer"
STANDARD = "sklearn.preprocessing._data.StandardScaler"
MIN_MAX = "sklearn.preprocessing._data.MinMaxScaler"


def linear_weights(graph):
    """The plain numbers of a linear pipeline's graph: regressor.json's content for a regression pipeline,
    classifier.json's for a logistic regression (`kinds.tabular_classifier`: each weight a list, one per
    logit); `ModelError` naming what is not one (then the pipeline is served, if at all, by a kind that
    runs its steps)."""
    pipeline = steps(graph)
    if len(pipeline) != 2 or pipeline[0][1].name != COLUMN_TRANSFORMER or pipeline[1][1].name not in LINEAR | {
            LOGISTIC}:
        raise ModelError("not a ColumnTransformer followed by Ridge, LinearRegression or LogisticRegression.")
    prepare, model = pipeline[0][1].state, pipeline[1][1].state
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
    weights = iter(np.atleast_2d(coef).T)  # per feature, its weight in each logit (one for a regression)
    categories, numbers = {}, {}
    for name, part, columns in prepare.get("transformers_") or []:
        if part == "drop":
            continue
        columns = [str(c) for c in np.asarray(columns).tolist()]
        chain = [("passthrough", None)] if part == "passthrough" else steps(part) if part.name == PIPELINE \
            else [(name, part)]
        kinds = [step.name if step != "passthrough" and step is not None else "passthrough" for _, step in chain]
        if kinds[-1] in (ONE_HOT, ORDINAL) and len(chain) <= 2 and (len(chain) == 1 or kinds[0] == IMPUTER):
            encoder = chain[-1][1].state
            if encoder.get("drop_idx_") is not None:
                raise ModelError(f"{name}: a one-hot encoder that drops a category is not read; use drop=None.")
            if kinds[-1] == ORDINAL and encoder.get("handle_unknown") != "error":
                raise ModelError(f"{name}: an OrdinalEncoder that codes unknown values is not read; use "
                                 "OneHotEncoder(handle_unknown='ignore') for a column with open values.")
            for column, values in zip(columns, encoder["categories_"]):
                table = categories.setdefault(column, {})
                values = [str(v) for v in np.asarray(values).tolist()]
                if kinds[-1] == ONE_HOT:
                    for value in values:
                        table[value] = table.get(value, 0.0) + next(weights)
                else:
                    weight = next(weights)
                    for code, value in enumerate(values):
                        table[value] = table.get(value, 0.0) + code * weight
            if len(chain) == 2:  # an imputer first: a value not given is scored as its fill
                fills = np.asarray(chain[0][1].state.get("statistics_"), dtype=object).tolist()
                for column, fill in zip(columns, fills):
                    categories[column][MISSING] = categories[column].get(str(fill), 0.0 * intercept)
            continue
        fill, centre, scale, indicator = number_steps(name, chain, kinds, len(columns))
        values = [next(weights) for _ in columns]
        for i, column in enumerate(columns):
            if column in numbers or column in categories:
                raise ModelError(f"{name}: the number {column} is used by more than one part; use it once.")
            numbers[column] = {"log": False, "fill": fill[i], "mean": centre[i], "scale": scale[i],
                               "weight": values[i], "missing": None}
        for i in indicator:  # the imputer's indicator columns come after its values, scaled with them
            numbers[columns[i]]["missing"] = {"mean": 0.0, "scale": 1.0, "weight": next(weights)}
    if next(weights, None) is not None:
        raise ModelError("the linear model has more coefficients than its inputs make features.")
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


def number_steps(name, chain, kinds, count):
    """(fill, centre, scale, indicated columns) of a part made of an imputer and a scaler, or either."""
    fill, centre, scale, indicator = [None] * count, [0.0] * count, [1.0] * count, []
    for (_, step), kind in zip(chain, kinds):
        if kind == "passthrough":
            continue
        state = step.state
        if kind == IMPUTER and state.get("strategy") in ("mean", "median", "constant"):
            fill = [float(v) for v in np.asarray(state["statistics_"], dtype=float).tolist()]
            if state.get("add_indicator"):
                indicated = state.get("indicator_")
                features = getattr(indicated, "state", {}).get("features_") if indicated is not None else None
                indicator = [int(i) for i in np.asarray(features).tolist()] if features is not None else []
                if indicator:
                    raise ModelError(f"{name}: an imputer's missing-value indicator is not read yet; leave "
                                     "add_indicator off.")
        elif kind == STANDARD:
            centre = [float(v) for v in np.asarray(state.get("mean_") if state.get("with_mean") else
                                                   np.zeros(count), dtype=float).tolist()]
            scale = [float(v) for v in np.asarray(state.get("scale_") if state.get("with_std") else
                                                  np.ones(count), dtype=float).tolist()]
        elif kind == MIN_MAX:
            factor, offset = (np.asarray(state[key], dtype=float) for key in ("scale_", "min_"))
            if (factor == 0).any():
                raise ModelError(f"{name}: a MinMaxScaler with a constant column.")
            centre, scale = (-offset / factor).tolist(), (1.0 / factor).tolist()
        else:
            raise ModelError(f"{name}: {kind.rsplit('.', 1)[-1]} is not read as a number's step.")
    return fill, centre, scale, indicator
