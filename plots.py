"""The pictures a build writes into each model folder: confusion matrix, ROC curve, reliability diagram.

Drawn with matplotlib's Agg backend (no screen needed); `build_model.py` calls these with held-out data.
"""
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
    bins as `build_model.reliability_bins` gives them: (share of texts, mean confidence, accuracy)."""
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
