"""The features a handed-over pipeline's ColumnTransformer makes of one row, as plain descriptions.

    features, fills = column_features(transformer)    # a ColumnTransformer Node (`store.estimator_files`)

Each feature, in the order the ColumnTransformer puts them out, is one of:
- {"type": "one-hot", "input", "value"}: 1 when the input is that value, else 0 (OneHotEncoder, nothing
  dropped; an unknown value of an encoder that ignores them is 0 everywhere);
- {"type": "ordinal", "input", "codes": {value: code}}: the value's code (OrdinalEncoder refusing unknown
  values);
- {"type": "number", "input", "fill", "centre", "scale"}: `(value or fill - centre) / scale`: a
  SimpleImputer (mean, median or a constant), then StandardScaler or MinMaxScaler, or either alone, or
  `passthrough` (MinMaxScaler's `x * scale_ + min_` written as `(x - centre) / scale`, equal to rounding).
`fills` is {input: the value an imputer before an encoder gives a category not given}. Anything else is
refused, naming the part. A linear model's weights (`kinds.linear_export`) and a forest's features
(`kinds.forest_export`) are both read from this.
"""
import numpy as np

from kinds.pipelines import PIPELINE, steps
from store.artifacts import ModelError

ONE_HOT = "sklearn.preprocessing._encoders.OneHotEncoder"
ORDINAL = "sklearn.preprocessing._encoders.OrdinalEncoder"
IMPUTER = "sklearn.impute._base.SimpleImputer"
STANDARD = "sklearn.preprocessing._data.StandardScaler"
MIN_MAX = "sklearn.preprocessing._data.MinMaxScaler"


def column_features(transformer):
    """(the features of a ColumnTransformer's output, in order; {input: an imputed category's fill})."""
    features, fills, numbers = [], {}, set()
    for name, part, columns in transformer.state.get("transformers_") or []:
        if part == "drop":
            continue
        columns = [str(c) for c in np.asarray(columns).tolist()]
        chain = [("passthrough", None)] if part == "passthrough" else steps(part) if part.name == PIPELINE \
            else [(name, part)]
        kinds = [step.name if step != "passthrough" and step is not None else "passthrough" for _, step in chain]
        if kinds[-1] in (ONE_HOT, ORDINAL) and len(chain) <= 2 and (len(chain) == 1 or kinds[0] == IMPUTER):
            features += encoded(name, chain[-1][1].state, kinds[-1], columns)
            if len(chain) == 2:
                fills.update(zip(columns, map(str, np.asarray(chain[0][1].state.get("statistics_"),
                                                              dtype=object).tolist())))
            continue
        fill, centre, scale = number_steps(name, chain, kinds, len(columns))
        for i, column in enumerate(columns):
            if column in numbers:
                raise ModelError(f"{name}: the number {column} is used by more than one part; use it once.")
            numbers.add(column)
            features.append({"type": "number", "input": column, "fill": fill[i], "centre": centre[i],
                             "scale": scale[i]})
    return features, fills


def encoded(name, encoder, kind, columns):
    """The features of a one-hot or ordinal encoder of `columns`."""
    if encoder.get("drop_idx_") is not None:
        raise ModelError(f"{name}: a one-hot encoder that drops a category is not read; use drop=None.")
    if kind == ORDINAL and encoder.get("handle_unknown") != "error":
        raise ModelError(f"{name}: an OrdinalEncoder that codes unknown values is not read; use "
                         "OneHotEncoder(handle_unknown='ignore') for a column with open values.")
    features = []
    for column, values in zip(columns, encoder["categories_"]):
        values = [str(v) for v in np.asarray(values).tolist()]
        if kind == ONE_HOT:
            features += [{"type": "one-hot", "input": column, "value": value} for value in values]
        else:
            features.append({"type": "ordinal", "input": column,
                             "codes": {value: code for code, value in enumerate(values)}})
    return features


def number_steps(name, chain, kinds, count):
    """(fill, centre, scale) of a part made of an imputer and a scaler, or either."""
    fill, centre, scale = [None] * count, [0.0] * count, [1.0] * count
    for (_, step), kind in zip(chain, kinds):
        if kind == "passthrough":
            continue
        state = step.state
        if kind == IMPUTER and state.get("strategy") in ("mean", "median", "constant"):
            fill = [float(v) for v in np.asarray(state["statistics_"], dtype=float).tolist()]
            indicated = getattr(state.get("indicator_"), "state", None) or {}
            if state.get("add_indicator") and len(np.asarray(indicated.get("features_", []))):
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
    return fill, centre, scale
