"""Adopting a model trained elsewhere: `python release.py add NAME FILE --data CSV [--target COLUMN]`.

    folder, metrics, live = add(name, path, data_path, model_dir=...)

A data scientist's fitted scikit-learn pipeline, saved with skops, pickle or joblib, becomes a served
model beside the built ones, with no code of the file run at any point:

1. the file is read into a plain graph (`store.estimator_files`), and what it is worked out from the
   graph (`kinds.pipelines`): its kind, its family and its inputs;
2. it is written as the plain numbers its kind scores with (`kinds.linear_export` for a linear
   regression pipeline: ColumnTransformer, then Ridge or LinearRegression);
3. the data given with it (a CSV holding every input and the true value) is checked against its inputs,
   each number's range taken from the data (the model answers a value up to NUMBER_MARGIN ranges beyond
   it), and each row scored by the served model itself: the figures of its kind, the data's mean as
   a baseline, the drift signals' reference;
4. the gate compares it with the live version of the same name on the same rows, and it is published as
   a new version of NAME (`store.releases.publish`), served at /NAME or `--route`.

The figures are only as honest as the data: rows the model was fitted on flatter it (the build's table
and `metrics.json` say which file they come from).
"""
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

import kinds
import util
from kinds import forest_export, linear_export, pipelines
from kinds.forest import FOREST_FILE, TREES_FILE, TreeClassifier, TreeRegressor
from kinds.tabular import MAX_DECIMALS, REGRESSOR_FILE, TabularRegressor
from kinds.tabular_classifier import CLASSIFIER_FILE, TabularClassifier
from serving import config, drift
from serving.errors import BadQuery
from store import artifacts, estimator_files, releases
from training.data import log
from training.gate import GATE_TOLERANCE, compare, gate_table, live_model
from training.ratings import RESIDUAL_QUANTILES, regression_scores

# The families of last step each export reads.
LINEAR = {"Ridge", "LinearRegression", "LogisticRegression"}
TREES = {"DecisionTreeRegressor", "DecisionTreeClassifier", "RandomForestRegressor", "RandomForestClassifier",
         "HistGradientBoostingRegressor", "HistGradientBoostingClassifier"}
FIGURE_NAMES = {"mae": "MAE", "accuracy": "accuracy", "macro_f1": "macro F1"}
NUMBER_MARGIN = 10  # a number input is taken up to this many times its data's range beyond it, either way
MAX_ROWS = 10_000_000  # of the data given: beyond, the CSV is refused rather than read into memory


def add(name, path, data_path, *, model_dir, target=None, route=None, tolerance=GATE_TOLERANCE, promote=False,
        why="", keep=artifacts.KEEP_VERSIONS):
    """Read, check, evaluate, gate and publish a model file as a version of `name`; return (its folder, its
    metrics, whether it went live). `ModelError` says what about the file cannot be served, `DataError`
    what about the data, `ConfigError` what about the name or route."""
    model_dir, path, data_path = Path(model_dir), Path(path), Path(data_path)
    route = config.check_added(name, route, taken_routes(model_dir, name))
    graph = estimator_files.read_estimator(path)
    try:
        described = pipelines.describe(graph)
    except artifacts.ModelError as exc:
        raise artifacts.ModelError(f"{path}: {exc}") from None
    kind, parts, files, optional = export(graph, described, path)
    frame, target = read_data(data_path, [spec["name"] for spec in described["inputs"]], target)
    inputs = input_specs(described["inputs"], optional, frame)
    labels = described["labels"]
    truth = true_values(frame, target, labels, data_path)
    manifest = {"name": name, "kind": kind.KIND, "route": route, "labels": labels, "inputs": inputs,
                "target": target_spec(target, truth, labels),
                "created_at": "1970-01-01T00:00:00+00:00", "hyperparameters": {}, "training_data": {}, "artifacts": {}}
    served = kind(**parts, manifest=manifest, metrics={})
    rows = checked_rows(served, frame, data_path)
    metrics = evaluate(served, rows, truth, data_path)
    if labels is None:
        manifest["target"]["decimals"] = answer_decimals(metrics)
    log(f"[{name}] {described['family']} from {path.name}, {len(rows):,} rows of {data_path.name}: "
        + ", ".join(f"{FIGURE_NAMES[key]} {metrics[key]:.3f} (the baseline's {metrics['baseline'][key]:.3f})"
                    for key in kind.GATE_FIGURES))
    checked = gate(name, model_dir, kind, labels, rows, truth, metrics, tolerance)
    goes_live = checked["passed"] or promote
    release = {"gate": checked, "live": goes_live, "promoted_over_gate": goes_live and not checked["passed"]}
    log(gate_table(name, checked) if checked["live_model"] else f"[{name}] gate: {checked['why']}")

    def write(folder):
        for file_name, content in files.items():
            (folder / file_name).write_bytes(content)
        util.write_json(folder / artifacts.METRICS_FILE, metrics)
        artifacts.write_manifest(
            folder, name=name, kind=kind.KIND, labels=labels, route=route, inputs=inputs,
            target=manifest["target"], release=release,
            hyperparameters={"model": described["family"], "added_from": path.name,
                             "file_format": file_format(path), "file_sha256": util.sha256_file(path)},
            training_data={"name": data_path.name, "path": str(data_path.resolve()), "rows_used": len(rows),
                           "sha256": util.sha256_file(data_path), "used_for": "evaluation and input ranges"})

    note = "add: " + checked["why"] + ("; --promote overrode the gate" if release["promoted_over_gate"] else "")
    folder = releases.publish(model_dir, name, write, live=goes_live, keep=keep, why=(why + "; " if why else "") + note)
    kinds.load(folder)  # what a server will load: verified and loaded once here, never first there
    return folder, metrics, goes_live


def export(graph, described, path):
    """(the kind it is served as, what that kind is made of, {file: bytes} of its folder, the inputs it can
    take missing) of a pipeline's graph; `ModelError` naming the file and what cannot be served."""
    family, classifier = described["family"], described["labels"] is not None
    try:
        if described["kind"] == "text-classifier" or family not in LINEAR | TREES:
            raise artifacts.ModelError(
                f"a {described['kind'].replace('-', ' ')} ({family}); `release.py add` serves tabular pipelines: a "
                f"ColumnTransformer, then one of {', '.join(sorted(LINEAR | TREES))}.")
        if family in LINEAR:
            weights = linear_export.linear_weights(graph)
            optional = {name for name, number in weights["numbers"].items() if number["fill"] is not None} | {
                name for name, table in weights["categories"].items() if linear_export.MISSING in table}
            kind, file_name = (TabularClassifier, CLASSIFIER_FILE) if classifier else (TabularRegressor, REGRESSOR_FILE)
            return kind, {"weights": weights}, {file_name: json_bytes(weights)}, optional
        trees, arrays = forest_export.forest_arrays(graph)
        optional = {f["input"] for f in trees["features"] if f["type"] == "number" and f["fill"] is not None} | set(
            trees["fills"])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return (TreeClassifier if classifier else TreeRegressor), {"described": trees, "arrays": arrays}, {
            FOREST_FILE: json_bytes(trees), TREES_FILE: buffer.getvalue()}, optional
    except artifacts.ModelError as exc:
        raise artifacts.ModelError(f"{path}: {exc}") from None


def json_bytes(content):
    """A file's JSON, as `util.write_json` writes it."""
    return (json.dumps(content, indent=2) + "\n").encode()


def taken_routes(model_dir, name):
    """{name: route} of the models already in `model_dir` (the built ones' fixed routes besides), but `name`'s."""
    taken = dict(config.MODEL_ROUTES)
    for other in releases.model_names(model_dir):
        if other == name or other in taken:
            continue
        folders = releases.version_folders(model_dir, other)
        manifest = releases.peek_manifest(folders[-1]) if folders else {}
        taken[other] = config.model_route(other, manifest or {})
    return taken


def read_data(data_path, names, target):
    """The CSV given with the model, as a DataFrame holding its inputs (`names`) and its target; and the
    target's name. `DataError` naming any column that differs."""
    try:
        frame = pd.read_csv(data_path, keep_default_na=True, na_values=[""], nrows=MAX_ROWS + 1)
    except FileNotFoundError:
        raise util.DataError(f"--data {data_path}: no such file.") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise util.DataError(f"--data {data_path}: not a CSV file with a header line ({str(exc)[:200]}).") from None
    if len(frame) > MAX_ROWS:
        raise util.DataError(f"--data {data_path}: more than {MAX_ROWS:,} rows; give a sample of them.")
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    missing = [n for n in names if n not in columns]
    if missing:
        raise util.DataError(f"--data {data_path}: the model's inputs {', '.join(missing)} are not columns of it "
                             f"(it has {', '.join(columns[:20])}). Give the data the model was made for.")
    others = [c for c in columns if c not in names]
    if target is None:
        if len(others) != 1:
            raise util.DataError(f"--data {data_path}: besides the model's inputs it holds "
                                 f"{', '.join(others) or 'no column'}; name the true value's column with --target.")
        target = others[0]
    if target not in others:
        raise util.DataError(f"--target {target}: " + ("an input of the model, not its true value." if target in names
                                                       else f"not a column of {data_path}."))
    extra = [c for c in others if c != target]
    if extra:
        raise util.DataError(f"--data {data_path}: {', '.join(extra)} are neither inputs of the model nor the target "
                             f"{target}; drop them from the file.")
    if frame.empty:
        raise util.DataError(f"--data {data_path}: a header but no rows.")
    return frame, target


def input_specs(described, optional, frame):
    """The manifest's inputs: each one's type (the pipeline's), whether the model needs it (a number
    without a fill value, a category without one), its allowed values (a closed category), or its range in
    the data and the bounds it is taken within (a number)."""
    specs = []
    for spec in described:
        name = spec["name"]
        if spec["type"] == "number":
            values = pd.to_numeric(frame[name], errors="coerce").dropna()
            if values.empty or not np.isfinite(values.to_numpy(dtype=float)).all():
                raise util.DataError(f"--data: the number input {name} has no finite values in the data; the range "
                                     "the model knows comes from them.")
            low, high = float(values.min()), float(values.max())
            reach = NUMBER_MARGIN * ((high - low) or max(abs(high), 1.0))  # a constant column: its size
            specs.append({"name": name, "type": "number", "required": name not in optional,
                          "min": low, "max": high, "bounds": [low - reach, high + reach]})
        else:
            specs.append({"name": name, "type": spec["type"], "required": name not in optional,
                          **({"values": spec["values"]} if spec["type"] == "category" else
                             {"known": len(spec["values"])})})
    return specs


def checked_rows(served, frame, data_path):
    """Every row of the data as the served model takes a request's input: `DataError` naming the first
    row (its line in the file) the service would refuse, and why."""
    rows = []
    names = [spec["name"] for spec in served.inputs]
    kinds_ = {spec["name"]: spec["type"] for spec in served.inputs}
    for i, record in enumerate(frame[names].to_dict("records")):
        given = {}
        for name, value in record.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if kinds_[name] != "number":
                value = str(value)
            elif isinstance(value, (np.integer, np.floating)):
                value = value.item()
            given[name] = value
        try:
            rows.append(served.check_input(given, where=""))
        except BadQuery as exc:
            raise util.DataError(f"--data {data_path}: line {i + 2}: {exc.description}") from None
    return rows


def true_values(frame, target, labels, data_path):
    """The target column as the model answers it: numbers for a regressor, its labels (as text) for a
    classifier; `DataError` naming the first row that is neither."""
    if labels is None:
        values = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        what = "a finite number"
    else:
        values = np.array([str(v) for v in frame[target].tolist()], dtype=object)
        bad = np.flatnonzero(~np.isin(values, labels))
        what = "one of the model's labels: " + ", ".join(labels)
    if len(bad):
        raise util.DataError(f"--data {data_path}: row {bad[0] + 2} (line of the file): {target} must be {what}, "
                             f"not {frame[target].iloc[bad[0]]!r:.64}.")
    return values


def answer_decimals(metrics):
    """The decimals a regressor's answers are rounded to: enough to show its typical error (the median
    absolute error on the data) to two significant digits, 0 to MAX_DECIMALS."""
    typical = metrics["absolute_error_quantiles"]["0.5"]
    if not typical > 0:
        return 6
    return min(MAX_DECIMALS, max(0, 2 - math.floor(math.log10(typical))))


def target_spec(target, truth, labels):
    """The manifest's `target`: the true value's column, and its range (a number) or labels."""
    if labels is None:
        return {"name": target, "data_min": float(truth.min()), "data_max": float(truth.max())}
    return {"name": target, "labels": labels}


def evaluate(served, rows, truth, data_path):
    """The figures of the model's kind on the data, scored by the served model, beside a baseline that
    knows the answers' mix (the data's mean, or its most common label); the drift signals' reference."""
    evaluation = {"evaluation": {"data": Path(data_path).name, "rows": len(rows),
                                 "note": "scored on the data given with the model; rows it was fitted on flatter it"}}
    if served.labels is not None:
        return {**classifier_figures(served, rows, truth), **evaluation}
    predicted = np.array([served.predict_value(row) for row in rows])
    residuals = np.abs(truth - predicted)
    metrics = {**regression_scores(truth, predicted),
               "baseline": {"method": "the data's own mean value (a constant that knows the answers' average)",
                            **regression_scores(truth, np.full(len(truth), truth.mean()))},
               "absolute_error_quantiles": {repr(q): float(np.quantile(residuals, q)) for q in RESIDUAL_QUANTILES},
               **evaluation}
    reference = drift.value_signals(rows, predicted.tolist(), served.unseen)
    metrics["reference"] = {**reference, "mae": metrics["mae"]}
    return metrics


def classifier_figures(served, rows, truth):
    """Accuracy, macro F1 and log loss of a classifier, beside the most common label's; the reference."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    probabilities = np.array([served.probabilities_of(row) for row in rows])
    predicted = np.array(served.labels, dtype=object)[probabilities.argmax(axis=1)]
    common = pd.Series(truth).value_counts().index[0]
    always = np.full(len(truth), common, dtype=object)
    scores = {"accuracy": float(accuracy_score(truth, predicted)),
              "macro_f1": float(f1_score(truth, predicted, labels=served.labels, average="macro", zero_division=0)),
              "log_loss": float(log_loss(truth, probabilities, labels=served.labels))}
    reference = drift.value_signals(rows, [0.0] * len(rows), served.unseen)
    reference.pop("predicted_value_mean")
    shares = pd.Series(predicted).value_counts(normalize=True)
    return {**scores,
            "baseline": {"method": f"always the data's most common label, {common}",
                         "accuracy": float(accuracy_score(truth, always)),
                         "macro_f1": float(f1_score(truth, always, labels=served.labels, average="macro",
                                                    zero_division=0))},
            "reference": {**reference,
                          "label_shares": {label: float(shares.get(label, 0.0)) for label in served.labels},
                          "confidence_mean": float(probabilities.max(axis=1).mean()), "accuracy": scores["accuracy"]}}


def gate(name, model_dir, kind, labels, rows, truth, metrics, tolerance):
    """The gate's record: the new version beside the live one, both scoring the data given."""
    live, why_none = live_model(model_dir, name)
    if live is None:
        return {"live_model": None, "passed": True, "why": why_none, "tolerance": tolerance, "checks": {}}
    try:
        if live.labels != labels:  # another kind of answer, or other labels
            raise TypeError(f"it answers {', '.join(live.labels) if live.labels else 'a number'}")
        same = [live.check_input({k: v for k, v in row.items() if v is not None}, where="") for row in rows]
        live_metrics = evaluate(live, same, truth, "")
    except (BadQuery, TypeError) as exc:
        detail = exc.description[:200] if isinstance(exc, BadQuery) else str(exc)
        return {"live_model": live.version, "passed": False, "tolerance": tolerance, "checks": {},
                "why": f"the live version cannot score this data ({detail}), so the two cannot be compared; "
                       "pass --promote to serve the new one anyway"}
    return compare({"given_data": (metrics, live_metrics)}, live.version, tolerance=tolerance,
                   figures=kind.GATE_FIGURES)


def file_format(path):
    """skops, or pickle (joblib's files are pickles too), as the file's first bytes say."""
    with open(path, "rb") as handle:
        return "skops" if handle.read(4) == estimator_files.SKOPS_MAGIC else "pickle or joblib"
