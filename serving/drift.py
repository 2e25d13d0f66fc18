"""Drift signals: what the service counts of every text it scores, and the same figures from the build.

The service counts, per model, in Prometheus (`metrics.Metrics.count_scored`): texts scored, their
tokens and the tokens the vectorizer knows, texts with no known term, a histogram of confidence and
one of text length in characters, and the predicted labels. `training/build.py` computes the same
signals on its held-out side (`reference`) and writes them to `metrics.json`; the service exports them
as `sentiment_reference_*` gauges, so alert rules compare live values with the reference of the
model that is serving, and `monitor.py` compares the prediction log with it.

Why these: a text the model was not trained for shows first in its vocabulary (the known-token share
falls) and then in its verdicts (the label mix moves); the probabilities are calibrated, so the mean
confidence estimates the accuracy without labels; the feedback gives the accuracy itself.
"""
import numpy as np

# Upper bounds of the confidence histogram. A confidence is at least 1 / n_labels (0.2 or 0.5).
CONFIDENCE_BUCKETS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)
# Upper bounds of the text-length histogram, in characters (a Kaggle phrase is 38 on average).
LENGTH_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
LENGTH_QUANTILES = (0.5, 0.9, 0.99)


def signals(*, labels, predicted, confidence, lengths, tokens, known):
    """The drift signals of a set of scored texts, as a JSON-ready dict.

    `predicted` holds label positions; `confidence`, `lengths`, `tokens` and `known` one number per text.
    """
    predicted, confidence = np.asarray(predicted), np.asarray(confidence, dtype=np.float64)
    lengths, tokens, known = (np.asarray(a, dtype=np.float64) for a in (lengths, tokens, known))
    count = len(confidence)
    if count == 0:
        return {"texts": 0}
    return {
        "texts": int(count),
        **token_shares(tokens, known),
        "label_shares": {label: float((predicted == i).mean()) for i, label in enumerate(labels)},
        "confidence_mean": float(confidence.mean()),
        # Cumulative, as Prometheus buckets are: the share of texts with confidence <= each bound.
        "confidence_buckets": {repr(bound): float((confidence <= bound).mean()) for bound in CONFIDENCE_BUCKETS},
        "text_length_quantiles": {repr(q): float(np.quantile(lengths, q)) for q in LENGTH_QUANTILES},
    }


def token_shares(tokens, known):
    """The known-token share and the share of texts with no known term, of per-text counts (arrays)."""
    return {"known_token_share": float(known.sum() / tokens.sum()) if tokens.sum() else 0.0,
            "no_known_term_share": float((known == 0).mean())}


def reference(*, labels, proba, texts, tokens, known, accuracy):
    """The signals of the build's held-out texts as the model fitted on the training side scores them, with
    its held-out accuracy: what `metrics.json`'s `reference` holds. `tokens` and `known` are each text's
    counts as the served model makes them (`kinds.text_scoring.LinearTextScorer.counts`, their one home)."""
    return {**signals(labels=labels, predicted=proba.argmax(axis=1), confidence=proba.max(axis=1),
                      lengths=[len(text) for text in texts], tokens=tokens, known=known),
            "accuracy": float(accuracy)}


def label_share_difference(now, then):
    """The largest difference, in absolute value, between two {label: share} mixes."""
    return max(abs(now.get(label, 0.0) - share) for label, share in then.items())


# The margins of the alert rules (deploy/prometheus/alerts.yml; a test holds the two together), which the
# drift report applies too: how far a signal may move from the reference before it counts as drift.
KNOWN_SHARE_DROP = 0.10  # the known-token share, below the reference
LABEL_SHARE_SHIFT = 0.15  # any label's share, either way
CONFIDENCE_DROP = 0.05  # the mean confidence, below the reference
ACCURACY_DROP = 0.10  # the accuracy of the labels sent back, below the held-out accuracy
MIN_TEXTS = 200  # texts (or a regressor's rows) in the window before a share says anything
# A model of named inputs (a regressor): how far its signals may move from the reference.
UNSEEN_SHARE_RISE = 0.10  # an input's share of values the model never saw, above the reference
MISSING_SHARE_SHIFT = 0.20  # an input's share of rows missing it, either way
PREDICTION_SHIFT_OF_MAE = 0.5  # the mean prediction's move, as a share of the held-out MAE
FEEDBACK_MAE_RATIO = 1.25  # the MAE of the true values sent back, as a multiple of the held-out MAE
MIN_FEEDBACK = 50  # labels sent back before their accuracy does


def value_signals(rows, predicted, unseen):
    """A regressor's drift signals of logged rows: `rows` its inputs (dicts, None for a value not given),
    `predicted` the numbers answered, `unseen(row)` the inputs whose value the served model never saw.
    The reference's keys (`training.ratings.drift_reference`): rows, each input's missing and unseen shares,
    the predictions' mean."""
    count = len(rows)
    if count == 0:
        return {"rows": 0}
    names = {name for row in rows for name in row}
    never_seen = [set(unseen(row)) for row in rows]
    return {"rows": count,
            "input_missing_shares": {name: sum(row.get(name) is None for row in rows) / count for name in names},
            "input_unseen_shares": {name: sum(name in found for found in never_seen) / count for name in names},
            "predicted_value_mean": float(np.mean(predicted))}
