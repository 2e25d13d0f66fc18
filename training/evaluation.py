"""Honest evaluation: the split by group, the figures, calibration, the drift reference, the tutorial's baselines.

Every figure is of rows the fit never saw: 20% of the groups (Kaggle's sentences, Rotten Tomatoes'
films) are held out, the temperature is fitted on out-of-fold scores of the training side, and the
drift reference is the held-out traffic as the training-side fit scores it.
"""
import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, train_test_split
from sklearn.naive_bayes import MultinomialNB

import util
from kinds.text_scoring import LinearTextScorer, softmax
from serving import drift
from training.recipes import fitted_logits, make_pipeline, parts, worker_processes

SEED = 42


TEST_SIZE = 0.2


CALIBRATION_FOLDS = 5  # GroupKFold on the training side, for the out-of-fold scores the temperature is fitted on


ECE_BINS = 15


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


def evaluate(data, recipe, train, test, *, temperature=1.0):
    """Fit `recipe` on the training rows only and score the held-out rows with probabilities softmax(logits / T).

    Returns (scores, probabilities, logits, the fitted pipeline), the probabilities and logits of shape
    (n_test, n_labels).
    """
    fitted = make_pipeline(recipe).fit(data.texts[train], data.y[train])
    logits = fitted_logits(fitted, data.texts[test], len(data.labels))
    proba = softmax(logits / temperature)
    return scores(data.y[test], proba, data.labels), proba, logits, fitted


def drift_reference(data, fitted, train, temperature, *, accuracy):
    """The drift signals of the traffic the training-side fit never saw (every phrase of every group with no
    training row, labelled for this model or not: for the binary model, the neutral phrases and sentences
    too) as that fit scores them, with the held-out accuracy (serving/drift.py). Tokens and known tokens
    are counted by the served model's own scorer, their one home."""
    texts, groups = data.traffic
    texts = texts[~np.isin(groups, np.unique(data.groups[train]))]
    proba = softmax(fitted_logits(fitted, texts, len(data.labels)) / temperature)
    scorer = LinearTextScorer(*parts(fitted))
    counted = [scorer.counts(text) for text in texts]
    return drift.reference(labels=data.labels, proba=proba, texts=texts, tokens=[c[1] for c in counted],
                           known=[c[2] for c in counted], accuracy=accuracy)


def fit_temperature(data, recipe, train):
    """The temperature T > 0 whose softmax(logits / T) has the lowest log loss on out-of-fold logits of the
    training rows (GroupKFold by group): the held-out rows are never seen. The folds are fitted in parallel.

    One number for all labels: it rescales every log-odds alike, so no prediction changes.
    """
    texts, y, groups = data.texts[train], data.y[train], data.groups[train]
    folds = list(GroupKFold(n_splits=CALIBRATION_FOLDS).split(texts, y, groups))

    def out_of_fold(fit_rows, score_rows):
        fitted = make_pipeline(recipe).fit(texts[fit_rows], y[fit_rows])
        return fitted_logits(fitted, texts[score_rows], len(data.labels))

    logits = np.empty((len(train), len(data.labels)))
    with worker_processes():
        fitted_folds = Parallel(n_jobs=-1)(delayed(out_of_fold)(*fold) for fold in folds)
    for (_, score_rows), scored in zip(folds, fitted_folds):
        logits[score_rows] = scored
    labels = range(len(data.labels))
    found = minimize_scalar(lambda log_t: log_loss(y, softmax(logits / np.exp(log_t)), labels=labels),
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


def calibration_report(y_true, logits, temperature, labels):
    """Log loss and ECE of the held-out probabilities before (T = 1) and after calibration."""
    raw, calibrated = softmax(logits), softmax(logits / temperature)
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
