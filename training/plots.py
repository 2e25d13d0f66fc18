"""The pictures a build writes into each model folder (confusion matrix, ROC curve, reliability diagram)
and those of the drift report (`drift_pictures`).

Drawn with matplotlib's Agg backend (no screen needed); `training/build.py` calls the first with held-out
data, `monitor.py` the last with a window of the prediction log.
"""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def confusion(matrix, labels, path):
    """Save the held-out confusion matrix as a picture, rows normalised, counts written in."""
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.4 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center",
                color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Held-out sentences: confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability(curves, path):
    """Save a reliability diagram: accuracy against confidence, one line per (label, bins) in `curves`, the
    bins as `training.build.reliability_bins` gives them: (share of texts, mean confidence, accuracy)."""
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for label, bins in curves:
        ax.plot([confidence for _, confidence, _ in bins], [accuracy for _, _, accuracy in bins],
                marker="o", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Held-out sentences: reliability")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def roc(y_true, positive_proba, auc, path):
    """Save the held-out ROC curve."""
    fpr, tpr, _ = roc_curve(y_true, positive_proba)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Held-out sentences: ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def drift_pictures(rows, reference, labels_sent):
    """The drift report's pictures of one model, as [(title, PNG bytes)]: the confidence histogram and the
    label mix of the window (`rows`, its prediction-log rows) against the `reference`, and the known-token
    share and the accuracy of the labels sent back (`labels_sent`) over the window."""
    from serving import drift

    pictures = []
    bounds = [float(b) for b in reference["confidence_buckets"]]
    then = np.diff([0.0, *reference["confidence_buckets"].values()])
    confidence = rows["confidence"].to_numpy(float)
    now = np.diff([0.0, *[(confidence <= b).mean() for b in bounds]])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    places = np.arange(len(bounds))
    ax.bar(places - 0.2, then, width=0.4, label="reference (build)")
    ax.bar(places + 0.2, now, width=0.4, label="this window")
    ax.set_xticks(places, [f"<= {b:g}" for b in bounds], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of texts")
    ax.legend(fontsize=8)
    pictures.append(("Confidence, now and at build time", png(fig)))

    labels = list(reference["label_shares"])
    shares = rows["label"].value_counts(normalize=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    places = np.arange(len(labels))
    ax.bar(places - 0.2, [reference["label_shares"][label] for label in labels], width=0.4, label="reference (build)")
    ax.bar(places + 0.2, [shares.get(label, 0.0) for label in labels], width=0.4, label="this window")
    ax.set_xticks(places, labels, fontsize=8)
    ax.set_ylabel("share of answers")
    ax.legend(fontsize=8)
    pictures.append(("Label mix, now and at build time", png(fig)))

    counted = rows.dropna(subset=["tokens", "known_tokens"])
    if len(counted):
        every = time_step(counted["time"])
        binned = counted.set_index("time")[["tokens", "known_tokens"]].astype(float).resample(every).sum()
        binned = binned[binned["tokens"] > 0]
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(binned.index, binned["known_tokens"] / binned["tokens"], marker=".", label="this window")
        ax.axhline(reference["known_token_share"], color="grey", linestyle="--", label="reference")
        ax.axhline(reference["known_token_share"] - drift.KNOWN_SHARE_DROP, color="#b00", linestyle=":",
                   label="alert below")
        ax.set_ylabel("known-token share")
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        pictures.append((f"Known-token share, per {every}", png(fig)))

    if len(labels_sent):
        every = time_step(labels_sent["time"])
        agreed = (labels_sent["label"] == labels_sent["predicted"]).astype(float)
        binned = agreed.groupby(labels_sent["time"].dt.floor(every)).agg(["mean", "count"])
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(binned.index, binned["mean"], marker="o", label="labels that agree")
        ax.axhline(reference["accuracy"], color="grey", linestyle="--", label="held-out accuracy")
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy from feedback")
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
        pictures.append((f"Accuracy from feedback, per {every}", png(fig)))
    return pictures


def time_step(times):
    """A pandas frequency that cuts the span of `times` into about 24 steps: minutes, hours or days."""
    span = (times.max() - times.min()).total_seconds()
    for step, seconds in (("1min", 60), ("10min", 600), ("1h", 3600), ("6h", 21_600)):
        if span / seconds <= 48:
            return step
    return "1D"


def png(fig):
    """A figure as PNG bytes (and closed)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
