"""Build, evaluate honestly, gate and publish the ratings model (`python build_model.py --movies PATH`).

The data is `training.movies`'; the recipe, its evaluation and the file it is written as are
`training.ratings`'. The gate compares the new build's held-out figures with the live model's, mean
absolute error lower being better (`kinds.tabular.TabularRegressor.GATE_FIGURES`).
"""
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import util
from kinds.tabular import REGRESSOR_FILE, TabularRegressor
from serving import log_reads, log_schema
from store import artifacts, releases
from training import data as training_data
from training import movies as movie_data
from training import ratings
from training.data import log
from training.gate import GATE_TOLERANCE, compare, gate_table, live_model

NAME = "ratings"
TARGET = {"name": "imdb_rating", "description": "the film's IMDb user rating", "min": 1.0, "max": 10.0}
UNITS = {"budget": "US dollars", "running_time": "minutes"}


def build_ratings(movies, out_dir, *, tolerance=GATE_TOLERANCE, promote=False, keep=artifacts.KEEP_VERSIONS):
    """Evaluate, gate against the live ratings model, refit on every film and publish; return (metrics,
    whether it went live)."""
    started = time.perf_counter()
    frame = movies.frame
    log(f"\n[{NAME}] {len(frame):,} films ({movies.source['rows']:,} in the file; cleaning: "
        + ", ".join(f"{step.replace('_', ' ')} {count}" for step, count in movies.source["cleaning"].items()) + ")")
    metrics, _, _, _ = ratings.evaluate_ratings(movies)
    live, why_none = live_model(out_dir, NAME)
    if "feedback" in metrics and live is not None:  # the live model on the same held-out feedback
        held = movies.frame[(ratings.feedback_rows(movies.frame) == True).to_numpy()]  # noqa: E712
        predicted = [live.predict_value(row) for row in kind_rows(ratings.features(held))]
        metrics["feedback"]["live_model"] = {**ratings.regression_scores(held["rating"].to_numpy(), predicted),
                                             "model_version": live.version}
    if live is None:
        checked = {"live_model": None, "passed": True, "why": why_none, "tolerance": tolerance, "checks": {}}
    else:
        checks = {"held_out": (metrics, live.metrics)}
        if metrics.get("feedback", {}).get("live_model"):
            checks["feedback"] = (metrics["feedback"], metrics["feedback"]["live_model"])
        checked = compare(checks, live.version, tolerance=tolerance, figures=TabularRegressor.GATE_FIGURES)
    goes_live = checked["passed"] or promote
    release = {"gate": checked, "live": goes_live, "promoted_over_gate": goes_live and not checked["passed"]}
    log(gate_table(NAME, checked) if checked["live_model"] else f"[{NAME}] gate: {checked['why']}")
    shipping = ratings.shipped_rows(frame)
    table = ratings.features(shipping)
    shipped = ratings.make_pipeline().fit(table, shipping["rating"].to_numpy())
    metrics["shipped_model"] = (f"refit on all {len(shipping)} films after evaluation (held-out feedback "
                                "excepted); the figures above are from the model fitted on the training side only")

    def write(folder):
        util.write_json(folder / REGRESSOR_FILE, ratings.export(shipped, table))
        util.write_json(folder / artifacts.METRICS_FILE, metrics)
        artifacts.write_manifest(folder, name=NAME, kind=TabularRegressor.KIND, labels=None,
                                 hyperparameters={"model": "ridge", "alpha": ratings.ALPHA},
                                 training_data={**movies.source, "rows_used": int(len(shipping))},
                                 release=release, inputs=input_specs(shipping), target=TARGET)

    why = "build: " + checked["why"] + ("; --promote overrode the gate" if release["promoted_over_gate"] else "")
    folder = releases.publish(out_dir, NAME, write, live=goes_live, keep=keep, why=why)
    version = releases.version_of_folder(folder)
    if goes_live:
        log(f"[{NAME}] published {version} live at {Path(out_dir) / NAME} in {time.perf_counter() - started:.1f} s")
    else:
        log(f"[{NAME}] NOT LIVE: {checked['why']}. Published {version} as a candidate ({folder}); it serves "
            f"nothing. Serve it anyway: python release.py promote {NAME} {version}")
    return metrics, goes_live


def add_feedback(movies, url):
    """Add the true ratings users sent back for the ratings model's answers (the prediction log keeps each
    answer's inputs) to `movies`, as films with no release date; a fixed fifth of them, by a hash of their
    inputs, is held out of every fit (`held`). Return a line saying what was added."""
    try:
        frame = log_reads.read_feedback(url)
    except log_schema.PredictionLogError as exc:
        raise util.DataError(f"--feedback: {exc}") from None
    rows = frame[(frame["model"] == NAME) & frame["inputs"].notna()]
    if rows.empty:
        return "ratings feedback added: none"
    films = pd.DataFrame([json.loads(text) for text in rows["inputs"]])
    films = films.reindex(columns=[*movie_data.CATEGORIES, *movie_data.NAMES, *movie_data.NUMBERS, "release_year"])
    films["rating"] = pd.to_numeric(rows["label"], errors="coerce").to_numpy()
    # The service checked what it logged; a row it could not have taken (a log edited by hand, or written by
    # other code) is left out rather than let one absurd number skew or stop the fit.
    numbers = films[[*movie_data.NUMBERS, "release_year"]].apply(pd.to_numeric, errors="coerce")
    usable = (numbers.isna() | ((numbers > 0) & np.isfinite(numbers))).all(axis=1) & films["rating"].between(1, 10)
    dropped = int((~usable).sum())
    films[numbers.columns] = numbers
    films = films[usable.to_numpy()].reset_index(drop=True)
    rows = rows[usable.to_numpy()]
    if films.empty:
        return f"ratings feedback added: none ({dropped:,} unusable)"
    films["release_date"] = pd.NaT
    films["feedback_held"] = [hashlib.sha256(text.encode()).digest()[0] % 5 == 0 for text in rows["inputs"]]
    movies.frame = pd.concat([movies.frame.assign(feedback_held=pd.NA), films], ignore_index=True)
    held = int(films["feedback_held"].sum())
    movies.source["feedback"] = {"source": log_schema.redacted(url), "rows": int(len(films)),
                                 "trained_on": int(len(films) - held), "held_out": held,
                                 "holdout": FEEDBACK_HOLDOUT}
    return f"ratings feedback added: {len(films):,} ({held:,} held out" + \
        (f"; {dropped:,} unusable rows left out)" if dropped else ")")


FEEDBACK_HOLDOUT = "sha256(inputs) mod 5 == 0"  # the same films are held out of every build


def kind_rows(table):
    """A feature table's rows as the served kind takes them: None for a value not given."""
    return [{name: None if value == ratings.MISSING or value != value else value for name, value in record.items()}
            for record in table.to_dict("records")]


def input_specs(frame):
    """The manifest's `inputs`: each input's type, whether `/ratings` requires it, and its allowed values
    (a category) or the range of the training films (a number)."""
    specs = []
    for name in movie_data.CATEGORIES:
        specs.append({"name": name, "type": "category", "required": name in movie_data.REQUIRED,
                      "values": sorted(frame[name].dropna().unique().tolist())})
    for name in movie_data.NAMES:
        specs.append({"name": name, "type": "name", "required": name in movie_data.REQUIRED,
                      "known": int(frame[name].nunique())})
    for name in [*ratings.LOG_INPUTS, *ratings.NUMBER_INPUTS]:
        values = frame[name].dropna()
        specs.append({"name": name, "type": "number", "required": name in movie_data.REQUIRED,
                      "min": float(values.min()), "max": float(values.max()),
                      **({"unit": UNITS[name]} if name in UNITS else {}),
                      **({"year": True} if name == "release_year" else {})})
    order = ["genre", "budget", "director", "distributor", "mpaa_rating", "running_time", "release_year", "source",
             "creative_type"]  # as the docs and the OpenAPI document list them
    return sorted(specs, key=lambda spec: order.index(spec["name"]))


def ratings_table(metrics):
    """The build's table for the ratings model: the random split beside the mean, and the time split."""
    rows = [("random split, held out", metrics), ("random split, the mean", metrics["baseline"]),
            (f"time split (trained before {metrics['time_split']['trained_before']})", metrics["time_split"]),
            ("time split, the mean", metrics["time_split"]["baseline"])]
    lines = [f"{'model':<13} {'evaluation':<54} {'MAE':>8} {'RMSE':>8} {'R2':>8}"]
    lines += [f"{NAME:<13} {label:<54} {m['mae']:>8.3f} {m['rmse']:>8.3f} {m['r2']:>8.3f}" for label, m in rows]
    return "\n".join(lines)


def ratings_from(path):
    """The cleaned films to build from: `path`, or $MOVIES_DATA_DIR's or lib/data's movies.json, else fetched
    from the npm registry into lib/data. `util.DataError` says what to do when none can be had."""
    found = movie_data.movies_path(path)
    if found is None:
        found = movie_data.fetch_movies(training_data.DATA_DIR)
    return movie_data.read_movies(found)

