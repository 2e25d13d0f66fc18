"""Learning from use: the labels the service's users sent back, read from its prediction log into the data.

`add_feedback` adds each model's labelled texts to its `Dataset`; a fixed fifth of them (by a hash of
the text, so every build holds out the same ones) is never trained on: the held-out feedback, scored
by the new build and by the live model (`live_feedback_scores`).
"""
import hashlib

import numpy as np

import util
from serving import config, log_reads, log_schema
from training.evaluation import scores

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
        frame = log_reads.read_feedback(url)
    except log_schema.PredictionLogError as exc:
        raise util.DataError(f"--feedback: {exc}") from None
    with_text = frame[frame["text"].notna()]
    if len(frame) and with_text.empty:
        labels = f"{len(frame):,} label{'s' * (len(frame) != 1)}"
        raise util.DataError(f"--feedback: {log_schema.redacted(url)} holds {labels} but no texts to learn "
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
            "source": log_schema.redacted(url), "rows": int(len(rows)), "trained_on": int((~held).sum()),
            "held_out": int(held.sum()), "holdout": FEEDBACK_HOLDOUT,
            "sha256": hashlib.sha256(pairs.encode()).hexdigest(),
            "first": rows["time"].min().isoformat(), "last": rows["time"].max().isoformat()})
        said.append(f"{data.name} {len(rows):,} ({int(held.sum()):,} held out)")
    return "feedback added: " + (", ".join(said) if said else "none (no labelled texts for these models)")


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
