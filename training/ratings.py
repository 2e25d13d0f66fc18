"""The ratings model: a film's IMDb rating from what is known before its release, trained, evaluated
honestly and written as plain numbers.

The recipe (`make_pipeline`): each category input one-hot encoded (a missing one is a category of its
own, an unseen one adds nothing), the budget's logarithm, the running time and the release year with
the training mean for a missing value and a column saying it was missing, all standardised; then
Ridge regression. Measured beside HistGradientBoosting on the same data (docs/models.md), it is as
good on a random split and, being linear, is scored exactly with a handful of look-ups and sums.

Evaluation (`evaluate_ratings`): a random 80/20 split (seed 0) gives `mae`, `rmse` and `r2` of the
held-out side, beside the mean of the training side as a baseline; a time split (trained on films
released before `TIME_SPLIT`, scored on the later ones) says how the model does on films newer than
any it saw. The shipped model is then refit on every film.

The fitted model is written as `ratings.json` (`export`): the intercept, each category's weight, and
each number's fill value, scaling and weights. No pickle: nothing in the file can run code, and the
served kind (`kinds.tabular`) computes the same sum scikit-learn's `predict` does.
"""
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from training.movies import CATEGORIES, NAMES

SEED = 0
TEST_SIZE = 0.2
TIME_SPLIT = "2006-07-01"  # the time split trains on films released before this day
ALPHA = 3.0  # Ridge's regularisation; chosen on the random split's training side (docs/models.md)
MISSING = ""  # a category input not given: a category of its own, learned as any other
CATEGORY_INPUTS = [*CATEGORIES, *NAMES]
LOG_INPUTS = ["budget"]  # numbers the model takes the logarithm of
NUMBER_INPUTS = ["running_time", "release_year"]  # numbers used as they are; missing ones filled
RESIDUAL_QUANTILES = (0.5, 0.9)
FORMAT = 1  # of ratings.json


def features(frame):
    """The model's input table of a frame of films (the inputs as `/ratings` names them): categories as
    text with MISSING for none, numbers as floats with NaN for none."""
    table = pd.DataFrame(index=frame.index)
    for name in CATEGORY_INPUTS:
        table[name] = frame[name].where(frame[name].notna(), MISSING).astype(str)
    for name in LOG_INPUTS + NUMBER_INPUTS:
        table[name] = frame[name].astype(float)
    return table


def make_pipeline(alpha=ALPHA):
    """The unfitted recipe (see the module's docstring)."""
    encode = ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORY_INPUTS),
        ("logs", Pipeline([("log", FunctionTransformer(np.log)), ("scale", StandardScaler())]), LOG_INPUTS),
        ("numbers", Pipeline([("fill", SimpleImputer(strategy="mean", add_indicator=True)),
                              ("scale", StandardScaler())]), NUMBER_INPUTS),
    ])
    return Pipeline([("encode", encode), ("ridge", Ridge(alpha=alpha))])


def regression_scores(y, predicted):
    """`mae`, `rmse` and `r2` of predictions against the truth."""
    return {"mae": float(mean_absolute_error(y, predicted)),
            "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
            "r2": float(r2_score(y, predicted))}


def evaluate_ratings(movies, seed=SEED):
    """Fit on the random split's training side and score its held-out side, beside the mean; then the
    same on the time split. Returns (metrics, fitted pipeline, held-out table, held-out predictions)."""
    table, y = features(movies.frame), movies.frame["rating"].to_numpy()
    origin = feedback_rows(movies.frame)  # None: a film of the file; False/True: feedback trained on / held out
    own = np.flatnonzero(origin.isna().to_numpy())
    train, test = train_test_split(own, test_size=TEST_SIZE, random_state=seed)
    train = np.concatenate([train, np.flatnonzero((origin == False).to_numpy())])  # noqa: E712 (a nullable column)
    fitted = make_pipeline().fit(table.iloc[train], y[train])
    predicted = fitted.predict(table.iloc[test])
    residuals = np.abs(y[test] - predicted)
    metrics = {
        **regression_scores(y[test], predicted),
        "baseline": {"method": "the training side's mean rating",
                     **regression_scores(y[test], np.full(len(test), y[train].mean()))},
        "absolute_error_quantiles": {repr(q): float(np.quantile(residuals, q)) for q in RESIDUAL_QUANTILES},
        "split": {"method": "random", "test_size": TEST_SIZE, "seed": seed, "train_rows": int(len(train)),
                  "test_rows": int(len(test))},
        "time_split": time_split_scores(table, y, movies.frame["release_date"]),
    }
    metrics["reference"] = drift_reference(table.iloc[train], table.iloc[test], predicted, mae=metrics["mae"])
    held = np.flatnonzero((origin == True).to_numpy())  # noqa: E712
    if len(held):  # the true ratings users sent back that no fit saw
        metrics["feedback"] = {**regression_scores(y[held], fitted.predict(table.iloc[held])), "rows": int(len(held))}
    return metrics, fitted, table.iloc[test], predicted


def feedback_rows(frame):
    """Per film: None for the file's own, False for feedback trained on, True for feedback held out."""
    return frame["feedback_held"] if "feedback_held" in frame else pd.Series([None] * len(frame), index=frame.index,
                                                                                  dtype=object)


def shipped_rows(frame):
    """The rows the shipped model is refit on: every one but the held-out feedback."""
    return frame[(feedback_rows(frame) != True).to_numpy()]  # noqa: E712


def drift_reference(train, test, predicted, *, mae):
    """The drift signals of the held-out rows as the model fitted on the training side met them: per input,
    the share missing and the share with a value that side never saw (a name not in it, a number outside
    its range); the predictions' mean; the held-out MAE. What the service's signals are compared with."""
    missing, unseen = {}, {}
    for name in CATEGORY_INPUTS:
        given = test[name] != MISSING
        missing[name] = float((~given).mean())
        if name in NAMES:  # a closed list's value the served model never saw is refused, not counted
            unseen[name] = float((given & ~test[name].isin(set(train[name]))).mean())
    for name in LOG_INPUTS + NUMBER_INPUTS:
        given = test[name].notna()
        missing[name] = float((~given).mean())
        unseen[name] = float((given & ~test[name].between(train[name].min(), train[name].max())).mean())
    return {"rows": int(len(test)), "input_missing_shares": missing, "input_unseen_shares": unseen,
            "predicted_value_mean": float(np.mean(predicted)), "mae": float(mae)}


def time_split_scores(table, y, released):
    """The recipe trained on films released before TIME_SPLIT, scored on the later ones, beside their mean."""
    before = (released < pd.Timestamp(TIME_SPLIT)).to_numpy()
    after = (released >= pd.Timestamp(TIME_SPLIT)).to_numpy()
    predicted = make_pipeline().fit(table[before], y[before]).predict(table[after])
    return {**regression_scores(y[after], predicted), "trained_before": TIME_SPLIT,
            "train_rows": int(before.sum()), "test_rows": int(after.sum()),
            "baseline": regression_scores(y[after], np.full(after.sum(), y[before].mean()))}


def export(fitted, table):
    """The fitted pipeline as plain numbers (ratings.json's content): what `kinds.tabular` scores with.

    `table` is the training table: each input's range and the values it held, which the served model
    checks requests against, come from it.
    """
    encode, ridge = fitted.named_steps["encode"], fitted.named_steps["ridge"]
    weights = iter(ridge.coef_.tolist())
    one_hot = encode.named_transformers_["categories"]
    categories = {name: dict(zip(values.tolist(), weights))
                  for name, values in zip(CATEGORY_INPUTS, one_hot.categories_)}
    logs = encode.named_transformers_["logs"].named_steps["scale"]
    numbers = {}
    for i, name in enumerate(LOG_INPUTS):
        numbers[name] = {"log": True, "fill": None, "mean": float(logs.mean_[i]), "scale": float(logs.scale_[i]),
                         "weight": next(weights), "missing": None}
    fill, scale = (encode.named_transformers_["numbers"].named_steps[step] for step in ("fill", "scale"))
    for i, name in enumerate(NUMBER_INPUTS):
        numbers[name] = {"log": False, "fill": float(fill.statistics_[i]), "mean": float(scale.mean_[i]),
                         "scale": float(scale.scale_[i]), "weight": next(weights), "missing": None}
    indicated = fill.indicator_.features_.tolist() if fill.indicator_ is not None else []
    for at, i in enumerate(indicated, start=len(NUMBER_INPUTS)):
        numbers[NUMBER_INPUTS[i]]["missing"] = {"mean": float(scale.mean_[at]), "scale": float(scale.scale_[at]),
                                                "weight": next(weights)}
    if next(weights, None) is not None:
        raise AssertionError("ratings.json would not hold every weight of the model")
    ranges = {name: [float(table[name].min()), float(table[name].max())] for name in LOG_INPUTS + NUMBER_INPUTS}
    return {"format": FORMAT, "intercept": float(ridge.intercept_), "categories": categories, "numbers": numbers,
            "ranges": ranges}
