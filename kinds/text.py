"""The text classifier: TF-IDF of words (and optionally characters) + a linear classifier. No HTTP here.

Two families: MultinomialNB, the tutorial's, and LogisticRegression (two labels or more). Both are
linear in their features, so one scorer (`kinds.text_scoring.LinearTextScorer`) does the arithmetic
of either, exactly: the served probabilities are softmax(logits / T), the logits being the joint log
likelihood (NB) or the decision function (LR), and T the temperature the build fitted.

A folder of this kind keeps the tutorial's two pickles, the vectorizer and the classifier, read
through an exact allow-list (`kinds.text_loading`). Scoring has two paths that compute the same
probabilities: one text at a time with the scorer's plain floats, and large batches through a sparse
matrix; `score` picks by batch size.
"""
import itertools
from pathlib import Path

import numpy as np

from kinds import text_inputs
from kinds.text_loading import FAMILIES, check_supported, load_classifier, load_vectorizer
from kinds.text_scoring import LinearTextScorer, feature_parts, linear_weights, softmax
from serving.kind import HIGHER, ModelKind, Scored
from store import artifacts

VECTORIZER_FILE = artifacts.VECTORIZER_FILE
CLASSIFIER_FILE = artifacts.CLASSIFIER_FILE
# Batches up to this size are scored one text at a time; larger ones through the sparse matrix. Measured
# with `python benchmarks/bench_scoring.py` (fine-grained Kaggle model, random Kaggle test phrases, 2 cores):
# one at a time costs ~15 us per text at any size; the matrix ~0.8 ms per call plus ~8 us per text, so it
# wins from 150 texts in two runs. 100 is the largest size where one at a time won every run.
FAST_PATH_MAX_BATCH = 100
TOP_TERMS = 10
MATRIX_CHUNK = 10_000  # texts per sparse matrix in `predict_proba_matrix`
THREE = itertools.repeat(3)  # the decimals of an answer's figures, as round()'s second argument


class TextClassifier(ModelKind):
    """A verified, loaded text classifier: labels, the fitted pickles, their manifest and metrics.

    Parameters
    ----------
    vectorizer : TfidfVectorizer or FeatureUnion
        Fitted: words, or words and characters.
    classifier : MultinomialNB or LogisticRegression
        Fitted on the vectorizer's output.
    manifest, metrics : dict
        The contents of `manifest.json` and `metrics.json`.
    """

    KIND = "text-classifier"
    FILES = (VECTORIZER_FILE, CLASSIFIER_FILE)
    GATE_FIGURES = {"accuracy": HIGHER, "macro_f1": HIGHER}

    def __init__(self, *, vectorizer, classifier, manifest, metrics):
        super().__init__(manifest=manifest, metrics=metrics)
        check_supported(vectorizer, classifier)
        self.vectorizer, self.classifier = vectorizer, classifier
        self.family = FAMILIES[type(classifier)]
        # Fitted by build_model.py on out-of-fold scores; a model built before calibration serves T = 1.
        self.temperature = float(manifest["hyperparameters"].get("temperature", 1.0))
        self.scorer_ = LinearTextScorer(vectorizer, classifier, temperature=self.temperature)
        self.top_terms = top_terms(vectorizer, classifier, self.labels)

    @classmethod
    def load(cls, folder):
        """Verify and load a model folder; raise `ModelError` naming the file at fault."""
        folder = artifacts.resolve_folder(folder)  # one fixed version, even if a build swaps the link meanwhile
        return cls.from_files(artifacts.read_files(folder, cls.FILES), folder)

    @classmethod
    def from_files(cls, files, origin):
        """Load a model from `artifacts.read_files`'s bytes (sent from `origin`), checked again here."""
        origin = Path(origin)
        manifest, metrics = artifacts.check_files(files, origin, cls.FILES)
        vectorizer = load_vectorizer(files[VECTORIZER_FILE], origin / VECTORIZER_FILE)
        classifier = load_classifier(files[CLASSIFIER_FILE], origin / CLASSIFIER_FILE)
        return cls(vectorizer=vectorizer, classifier=classifier, manifest=manifest, metrics=metrics)

    # --- Requests to inputs: one text per input ----------------------------------------------------

    def inputs_from_get(self, *, query_string, mimetype, body, settings):
        """([the text of ?query=...], explain)."""
        text, explain = text_inputs.text_from_get(query_string=query_string, mimetype=mimetype, body=body,
                                                  max_length=settings.MAX_QUERY_LENGTH)
        return [text], explain

    def inputs_from_post(self, *, body, settings):
        """(the texts of {"queries": [...]}, explain)."""
        return text_inputs.texts_from_post(body=body, max_length=settings.MAX_QUERY_LENGTH,
                                           max_batch=settings.MAX_BATCH_SIZE)

    def inputs_from_v2(self, *, inputs, binary, settings):
        """The texts of the protocol's one input, `text`."""
        return text_inputs.texts_from_v2(inputs, binary, max_length=settings.MAX_QUERY_LENGTH,
                                         max_batch=settings.MAX_BATCH_SIZE)

    V2_OUTPUTS = ("label", "confidence", "probabilities", "id")

    def v2_columns(self, scored):
        """The label, its confidence and every label's probability (unrounded), in the labels' order."""
        answers, probabilities = scored.answers, scored.probabilities
        return {"label": ("BYTES", [len(answers)], lambda: [a["prediction"] for a in answers]),
                "confidence": ("FP64", [len(answers)], lambda: [max(row) for row in probabilities]),
                "probabilities": ("FP64", [len(answers), len(self.labels)],
                                  lambda: [p for row in probabilities for p in row])}

    # --- Scoring -----------------------------------------------------------------------------------

    def score(self, texts, *, explain=False):
        """Score texts; return `Scored`: the answers and each text's tokens and known tokens."""
        scorer = self.scorer_
        if explain:  # one pass per text gives both; the probabilities are the one-at-a-time path's
            explained = [scorer.explain_one(text) for text in texts]
            counted = [scorer.counts(text) for text in texts]
            return Scored([self.explained_answer(*one) for one in explained], [c[1] for c in counted],
                          [c[2] for c in counted], [probabilities for probabilities, _ in explained])
        if uses_fast_path(texts):  # plain floats, with no array in between
            scored = [scorer.score_one(text) for text in texts]
            return Scored([self.answer(row) for row, _, _ in scored], [n for _, n, _ in scored],
                          [k for _, _, k in scored], [row for row, _, _ in scored])
        matrix, tokens, known = scorer.transform(texts)
        rows = softmax(scorer.logits_of_matrix(matrix)).tolist()
        return Scored([self.answer(row) for row in rows], tokens.tolist(), known.tolist(), rows)

    def predictions_of(self, texts):
        """Each text's predicted label, as `score` would answer, and nothing else (a shadow's work)."""
        labels = self.labels
        if uses_fast_path(texts):
            best = self.scorer_.best_one
            return [labels[best(text)] for text in texts]
        matrix, _, _ = self.scorer_.transform(texts)
        return [labels[i] for i in self.scorer_.logits_of_matrix(matrix).argmax(axis=1).tolist()]

    def predict(self, texts, *, explain=False):
        """Score texts; return one answer per text with prediction, confidence and probabilities."""
        return self.score(texts, explain=explain).answers

    def predict_proba(self, texts):
        """Calibrated class probabilities, shape (n_texts, n_labels), by whichever path is faster for the batch."""
        if uses_fast_path(texts):
            return self.scorer_.predict_proba(texts)
        return self.predict_proba_sklearn(texts)

    def predict_proba_matrix(self, texts):
        """Calibrated class probabilities through the scorer's own sparse matrix (`LinearTextScorer.transform`,
        the matrix scikit-learn's transform makes, to 1e-9), shape (n_texts, n_labels): batch scoring's path.

        Each row depends on its own text only. With character n-grams it is several times as fast as
        scikit-learn's transform, which makes every n-gram of every text again; the scorer counts a word's
        n-grams once and keeps them (`kinds.text_scoring.CHAR_CACHE_WORDS`).
        """
        scorer = self.scorer_
        # A chunk at a time: a block of predict.py holds ~100,000 texts, whose character n-grams, listed one
        # per occurrence (`TextFeatures.matrix`), made arrays of hundreds of MB at once (784 MB peak for 1M
        # lines, a third of the CPU in page faults); a chunk's are a few MB. Rows depend on their own text only.
        return np.concatenate([softmax(scorer.logits_of_matrix(scorer.transform(texts[start:start + MATRIX_CHUNK])[0]))
                               for start in range(0, len(texts), MATRIX_CHUNK)] or [np.empty((0, len(self.labels)))])

    def predict_proba_sklearn(self, texts):
        """Calibrated class probabilities through scikit-learn's transform: softmax(logits / T)."""
        return softmax(self.logits_sklearn(texts) / self.temperature)

    def logits_sklearn(self, texts):
        """The classifier's logits through scikit-learn: its joint log likelihood (NB) or its decision
        function (LR; [0, d] for two labels), shape (n_texts, n_labels)."""
        return logits(self.classifier, self.vectorizer.transform(texts))

    def answer(self, probabilities):
        """Turn one text's probabilities (a list of Python floats, one per label) into the answer the API returns."""
        rounded = list(map(round, probabilities, THREE))  # in C, not a comprehension: a POST makes 1,000 answers
        best = probabilities.index(max(probabilities))  # the first of equals, as argmax
        return {"prediction": self.labels[best], "confidence": rounded[best],
                "probabilities": dict(zip(self.labels, rounded))}

    def explained_answer(self, probabilities, explained):
        """`answer` with its `explanation`: the runner-up label, the log-odds against it and their parts."""
        against = self.labels[explained.pop("against_index")]
        return {**self.answer(probabilities), "explanation": {"against": against, **explained}}

    # --- Feedback: a label, right or wrong ---------------------------------------------------------

    def check_target(self, value):
        """The label sent back, if it is one of this model's; else None."""
        return value if isinstance(value, str) and value in self.labels else None

    def error_of(self, prediction, target):
        """0 for the right label, 1 for a wrong one."""
        return float(prediction != target)

    # --- Describing itself -------------------------------------------------------------------------

    def describe(self):
        """One text in; a label, its confidence and every label's probability out."""
        return {"kind": self.KIND, "family": self.family,
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
                            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.labels)]}],
                "labels": self.labels}

    def info(self):
        """What `/models` shows of this model, with its family and each label's strongest terms."""
        return {**super().info(), "family": self.family, "top_terms": self.top_terms}


def logits(classifier, matrix):
    """A fitted classifier's logits of a feature matrix (see `TextClassifier.logits_sklearn`)."""
    if hasattr(classifier, "predict_joint_log_proba"):
        return classifier.predict_joint_log_proba(matrix)
    decision = classifier.decision_function(matrix)
    return np.column_stack([np.zeros_like(decision), decision]) if decision.ndim == 1 else decision


def top_terms(vectorizer, classifier, labels, k=TOP_TERMS):
    """For each label, the `k` words whose weight for it most exceeds the other labels' mean.

    Returns {label: [term, ...]}, strongest first; character n-grams are left out (nobody reads them).
    """
    words = feature_parts(vectorizer)[0]
    names = words.get_feature_names_out()
    weights = linear_weights(classifier)[0][:len(names)].T  # shape (n_labels, n_word_features)
    result = {}
    for i, label in enumerate(labels):
        others = np.delete(weights, i, axis=0).mean(axis=0)
        best = np.argsort(-(weights[i] - others), kind="stable")[:k]
        result[label] = names[best].tolist()
    return result


def uses_fast_path(texts):
    """True when one text at a time is faster than the sparse matrix for this batch (FAST_PATH_MAX_BATCH)."""
    return len(texts) <= FAST_PATH_MAX_BATCH
