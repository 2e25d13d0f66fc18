"""The sentiment model: load a built model folder and score texts. No HTTP here.

`SentimentModel.load(folder)` reads a model folder through `artifacts.read_verified`, which checks
every file against its manifest before anything is unpickled; `load_models(model_dir)` loads every
folder under a model directory. `predict(texts)` returns plain data: one answer per text.

Scoring has two paths that compute the same probabilities (tests prove it to 1e-9):
`FastScorer` does the arithmetic of TF-IDF + MultinomialNB directly for one text, without
scikit-learn's per-call validation and sparse-matrix set-up; the scikit-learn path
(`transform` + `predict_proba`) is faster for large batches. `SentimentModel.predict_proba` picks
by batch size. `SentimentModel.score`, what the service calls, also counts each text's tokens and
known tokens (the drift signals): one text at a time through `FastScorer.score_one`, or a large
batch through `FastScorer.transform` (the vectorizer's matrix, made in the same pass) and the
classifier's own joint log likelihood.
"""
from math import exp, log, sqrt

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.preprocessing import normalize

from store import artifacts
from store.artifacts import ModelError

# Batches up to this size are scored one text at a time by FastScorer; larger ones by
# scikit-learn's vectorised path. Measured with `python benchmarks/bench_scoring.py` (fine-grained
# Kaggle model, random Kaggle test phrases, 2 cores): FastScorer costs ~15 us per text at any size;
# scikit-learn ~0.8 ms per call plus ~8 us per text, so it wins from 150 texts in two runs (100:
# 1.47 vs 1.57 ms; 150: 2.36 vs 1.99 ms). 100 is the largest size where the fast path won every run.
FAST_PATH_MAX_BATCH = 100
# An explanation names at most this many of a text's unknown terms (and counts them all): echoing every
# one would make a batch of long texts answer several times its own size.
MAX_UNKNOWN = 20


class FastScorer:
    """Class probabilities of TF-IDF + MultinomialNB for one text, from the fitted objects' own parts.

    Uses the vectorizer's `build_analyzer()`, `vocabulary_` and `idf_` and the classifier's
    `feature_log_prob_` and `class_log_prior_`: counts -> tf-idf weights -> normalisation ->
    joint log likelihood -> softmax, exactly as scikit-learn computes them.

    Parameters
    ----------
    vectorizer : TfidfVectorizer
        Fitted; `norm` in {"l1", "l2", None}, `dtype` float64, `input="content"`.
    classifier : MultinomialNB
        Fitted on the vectorizer's output.
    """

    def __init__(self, vectorizer, classifier, *, temperature=1.0):
        check_supported(vectorizer, classifier)
        self.temperature_ = float(temperature)
        self.analyze_ = vectorizer.build_analyzer()
        self.vocabulary_ = vectorizer.vocabulary_
        self.binary_ = vectorizer.binary
        self.sublinear_tf_ = vectorizer.sublinear_tf
        self.norm_ = vectorizer.norm
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64) if vectorizer.use_idf else None
        # One row per feature, so a text's few features are gathered with one fancy index.
        self.feature_log_prob_t_ = np.ascontiguousarray(classifier.feature_log_prob_.T)
        self.class_log_prior_ = np.asarray(classifier.class_log_prior_, dtype=np.float64)

    def predict_proba_one(self, text):
        """Return the class probabilities of one text, a list of n_classes floats."""
        return self.score_one(text)[0]

    def score_one(self, text):
        """One text's (probabilities, tokens, known tokens): the class probabilities as a list of floats,
        and how many of its tokens there are and how many the vocabulary knows (the drift signals)."""
        counts, tokens = self.term_counts(text)
        if not counts:  # no known term: an all-zero row, so only the priors speak
            jll = self.class_log_prior_.tolist()
        else:
            indices = list(counts)
            weights = self.row_weights(indices, counts.values())
            # MultinomialNB's joint log likelihood: one gather of the terms' rows, one product.
            jll = (np.dot(weights, self.feature_log_prob_t_[indices]) + self.class_log_prior_).tolist()
        if self.temperature_ != 1.0:  # calibrated: softmax(jll / T), the same predictions
            jll = [x / self.temperature_ for x in jll]
        return softmax_one(jll), tokens, sum(counts.values())

    def best_one(self, text):
        """The index of one text's most probable class: `score_one`'s argmax, without the softmax (a
        temperature does not move it) or the counts of tokens."""
        counts, _ = self.term_counts(text)
        if not counts:
            jll = self.class_log_prior_
        else:
            indices = list(counts)
            jll = np.dot(self.row_weights(indices, counts.values()), self.feature_log_prob_t_[indices]) \
                + self.class_log_prior_
        return int(jll.argmax())

    def term_counts(self, text):
        """One text's ({feature index: count} of its known terms, its number of tokens)."""
        counts = {}
        vocabulary = self.vocabulary_
        analyzed = self.analyze_(text)
        for token in analyzed:
            index = vocabulary.get(token)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        return counts, len(analyzed)

    def token_counts(self, text):
        """(tokens, known tokens) of one text."""
        tokens = self.analyze_(text)
        vocabulary = self.vocabulary_
        return len(tokens), sum(1 for token in tokens if token in vocabulary)

    def transform(self, texts):
        """The texts' tf-idf matrix, as the vectorizer's `transform` makes it, with each text's tokens and
        known tokens: (csr matrix, tokens array, known array). One pass of the analyzer gives all three.

        The same steps as CountVectorizer's counting and TfidfTransformer.transform: counts per known
        term, then binary / sublinear tf, idf, and the row norm.
        """
        indices, values, indptr, tokens = [], [], [0], []
        for text in texts:
            counts, count = self.term_counts(text)
            indices.extend(counts)
            values.extend(counts.values())
            indptr.append(len(indices))
            tokens.append(count)
        matrix = sparse.csr_matrix((np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64),
                                    np.asarray(indptr, dtype=np.int64)),
                                   shape=(len(texts), len(self.vocabulary_)))
        known = np.asarray(matrix.sum(axis=1)).ravel().astype(np.int64)
        matrix.sort_indices()
        if self.binary_:
            matrix.data.fill(1.0)
        if self.sublinear_tf_:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        if self.idf_ is not None:
            matrix.data *= self.idf_[matrix.indices]
        if self.norm_ is not None:
            matrix = normalize(matrix, norm=self.norm_, copy=False)
        return matrix, np.asarray(tokens, dtype=np.int64), known

    def predict_proba(self, texts):
        """Return the class probabilities of each text, shape (n_texts, n_classes)."""
        return np.array([self.predict_proba_one(text) for text in texts]).reshape(
            len(texts), len(self.class_log_prior_))

    def explain_one(self, text):
        """One text's probabilities and why: (probabilities, explanation), in one pass over the text.

        For TF-IDF + MultinomialNB, ln P(p)/P(a) = (prior_p - prior_a)/T + the sum over the text's terms of
        weight * (feature_log_prob[p] - feature_log_prob[a]) / T, with `weight` the term's value in the
        text's normalised tf-idf row, p the prediction and a the runner-up.
        """
        counts, unknown = {}, {}
        vocabulary = self.vocabulary_
        for token in self.analyze_(text):
            if token in vocabulary:
                counts[token] = counts.get(token, 0) + 1
            else:
                unknown[token] = None
        terms = list(counts)
        indices = [vocabulary[term] for term in terms]
        weights = self.row_weights(indices, counts.values())
        rows = self.feature_log_prob_t_[indices]
        jll = ((np.dot(weights, rows) if indices else 0.0) + self.class_log_prior_) / self.temperature_
        scores = jll.tolist()
        probabilities = softmax_one(scores)
        best, against = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:2]
        gaps = ((rows[:, best] - rows[:, against]) / self.temperature_).tolist() if indices else []
        explained = sorted(
            ({"term": t, "count": counts[t], "weight": w, "contribution": w * g}
             for t, w, g in zip(terms, weights, gaps)), key=lambda term: -abs(term["contribution"]))
        # log_odds from the whole joint log likelihood (softmax cancels its normaliser), apart from the
        # per-term sum, so that the two can be checked against each other.
        return probabilities, {
            "against_index": against, "log_odds": scores[best] - scores[against],
            "prior": float(self.class_log_prior_[best] - self.class_log_prior_[against]) / self.temperature_,
            "terms": explained, "unknown": list(unknown)[:MAX_UNKNOWN], "unknown_count": len(unknown)}

    def row_weights(self, indices, counts):
        """The tf-idf weights of a text's terms in its normalised row: the same steps, in the same order, as
        TfidfTransformer.transform and normalize(). A phrase has a handful of terms: plain floats beat
        numpy's per-call overhead here."""
        weights = [1.0] * len(indices) if self.binary_ else [float(c) for c in counts]
        if self.sublinear_tf_:
            weights = [log(w) + 1.0 for w in weights]
        if self.idf_ is not None:
            weights = [w * idf for w, idf in zip(weights, self.idf_[indices].tolist())]
        if not weights:
            return weights
        if self.norm_ == "l2":
            norm = sqrt(sum(w * w for w in weights))
            weights = [w / norm for w in weights]
        elif self.norm_ == "l1":
            norm = sum(abs(w) for w in weights)
            weights = [w / norm for w in weights]
        return weights

def softmax_one(scores):
    """Softmax of one list of log-scores as plain floats, equal to scikit-learn's exp(jll - logsumexp(jll))."""
    top = max(scores)
    shifted = [exp(x - top) for x in scores]
    total = sum(shifted)
    return [x / total for x in shifted]


def check_supported(vectorizer, classifier):
    """Raise `ModelError` unless `FastScorer` computes exactly what these fitted objects compute.

    Everything the analyzer does (input decoding, lowercase, accents, token pattern, n-grams, stop
    words) is the vectorizer's own `build_analyzer()`, and min_df/max_df/max_features only shape
    `vocabulary_` at fit time, so those need no check. What is checked is the rest of `transform`:
    the weighting options of the fitted TF-IDF transformer, the output dtype, and the classifier.
    """
    # Exact types: a subclass (or ComplementNB, CountVectorizer...) may compute something else.
    problems = [f"{role} is {type(obj).__name__}, not {kind.__name__}"
                for role, obj, kind in [("vectorizer", vectorizer, TfidfVectorizer),
                                        ("classifier", classifier, MultinomialNB)] if type(obj) is not kind]
    if problems:
        raise ModelError("unsupported model for the fast scorer: " + "; ".join(problems) + ".")
    if vectorizer.input != "content":
        problems.append(f"vectorizer input={vectorizer.input!r}, only 'content' is supported")
    if vectorizer.norm not in ("l1", "l2", None):
        problems.append(f"vectorizer norm={vectorizer.norm!r}, only 'l1', 'l2' or None are supported")
    if np.dtype(vectorizer.dtype) != np.float64:
        problems.append(f"vectorizer dtype={np.dtype(vectorizer.dtype).name}, only float64 is supported")
    problems += fitted_problems(vectorizer, classifier)
    if problems:
        raise ModelError("unsupported model for the fast scorer: " + "; ".join(problems) + ". "
                         "Rebuild the model with `python build_model.py`.")


def fitted_problems(vectorizer, classifier):
    """What makes the fitted state unusable: unfitted parts, mismatched sizes, options changed after fit."""
    if not hasattr(vectorizer, "vocabulary_") or not hasattr(classifier, "feature_log_prob_"):
        return ["the vectorizer or the classifier is not fitted"]
    problems = []
    n_features = len(vectorizer.vocabulary_)
    if classifier.feature_log_prob_.shape[1] != n_features:
        problems.append(f"classifier has {classifier.feature_log_prob_.shape[1]} features, "
                        f"vectorizer {n_features}")
    # transform() weights with the TfidfTransformer made at fit time, not with the vectorizer's
    # current attributes: an option set after fitting would make the two paths disagree.
    transformer = getattr(vectorizer, "_tfidf", None)
    if transformer is not None:
        for option in ("norm", "sublinear_tf", "use_idf"):
            if getattr(transformer, option) != getattr(vectorizer, option):
                problems.append(f"vectorizer {option}={getattr(vectorizer, option)!r} was changed after fitting "
                                f"(fitted with {getattr(transformer, option)!r})")
        if hasattr(transformer, "idf_") != bool(vectorizer.use_idf):
            problems.append("vectorizer use_idf does not match its fitted idf_")
    if vectorizer.use_idf and len(getattr(vectorizer, "idf_", ())) != n_features:
        problems.append("vectorizer idf_ does not match its vocabulary")
    return problems


class Scored:
    """What scoring gave: `answers` (one dict per text), each text's `tokens` and `known` tokens (lists
    of ints: how many tokens the analyzer made, and how many of them the vocabulary knows), and the
    `probabilities` the answers round (a list per text, in the labels' order)."""

    __slots__ = ("answers", "tokens", "known", "probabilities")

    def __init__(self, answers, tokens, known, probabilities):
        self.answers, self.tokens, self.known, self.probabilities = answers, tokens, known, probabilities


class SentimentModel:
    """A verified, loaded model: labels, the fitted pickles, their manifest and metrics.

    Parameters
    ----------
    name : str
        The model's name, e.g. "binary" or "fine-grained".
    vectorizer, classifier
        The fitted TfidfVectorizer and MultinomialNB.
    manifest, metrics : dict
        The contents of `manifest.json` and `metrics.json`.
    """

    def __init__(self, *, name, vectorizer, classifier, manifest, metrics):
        self.name = name
        self.vectorizer = vectorizer
        self.classifier = classifier
        self.manifest = manifest
        self.metrics = metrics
        self.labels = list(manifest["labels"])
        self.version = artifacts.model_version(manifest)
        # Fitted by training/build.py on out-of-fold scores; a model built before calibration serves T = 1.
        self.temperature = float(manifest["hyperparameters"].get("temperature", 1.0))
        self.scorer_ = FastScorer(vectorizer, classifier, temperature=self.temperature)
        self.top_terms = top_terms(vectorizer, classifier, self.labels)

    @classmethod
    def load(cls, folder):
        """Verify and load a model folder; raise `ModelError` naming the file at fault."""
        return cls.from_parts(*artifacts.read_verified(folder))

    @classmethod
    def from_files(cls, files, origin):
        """Load a model from `artifacts.read_files`'s bytes (sent from `origin`), checked again here."""
        return cls.from_parts(*artifacts.load_files(files, origin))

    @classmethod
    def from_parts(cls, manifest, vectorizer, classifier, metrics):
        """The model of a verified folder's parts."""
        return cls(name=manifest["name"], vectorizer=vectorizer, classifier=classifier,
                   manifest=manifest, metrics=metrics)

    def predict_proba(self, texts):
        """Class probabilities, shape (n_texts, n_labels), by whichever path is faster for the batch."""
        if uses_fast_path(texts):
            return self.scorer_.predict_proba(texts)
        return self.predict_proba_sklearn(texts)

    def predict_proba_sklearn(self, texts):
        """Calibrated class probabilities through scikit-learn: softmax(predict_joint_log_proba / T)."""
        jll = self.classifier.predict_joint_log_proba(self.vectorizer.transform(texts)) / self.temperature
        return softmax(jll)

    def predict(self, texts, *, explain=False):
        """Score texts; return one answer per text with prediction, confidence and probabilities, and with
        `explain`, each answer's `explanation` (see `FastScorer.explain_one`)."""
        return self.score(texts, explain=explain).answers

    def score(self, texts, *, explain=False):
        """Score texts; return `Scored`: the answers (as `predict`) and each text's tokens and known tokens."""
        scorer = self.scorer_
        if explain:  # one pass per text gives both; the probabilities are the fast scorer's
            explained = [scorer.explain_one(text) for text in texts]
            tokens, known = zip(*map(scorer.token_counts, texts)) if texts else ((), ())
            return Scored([self.explained_answer(*one) for one in explained], list(tokens), list(known),
                          [probabilities for probabilities, _ in explained])
        if uses_fast_path(texts):  # the fast scorer's plain floats, with no array in between
            scored = [scorer.score_one(text) for text in texts]
            return Scored([self.answer(row) for row, _, _ in scored], [n for _, n, _ in scored],
                          [k for _, _, k in scored], [row for row, _, _ in scored])
        matrix, tokens, known = scorer.transform(texts)
        rows = softmax(self.classifier.predict_joint_log_proba(matrix) / self.temperature).tolist()
        return Scored([self.answer(row) for row in rows], tokens.tolist(), known.tolist(), rows)

    def labels_of(self, texts):
        """Each text's predicted label, as `score` would answer, and nothing else: what a shadow version
        gives beside the live one, at a fraction of `score`'s cost."""
        labels = self.labels
        if uses_fast_path(texts):
            best = self.scorer_.best_one
            return [labels[best(text)] for text in texts]
        matrix, _, _ = self.scorer_.transform(texts)
        return [labels[i] for i in self.classifier.predict_joint_log_proba(matrix).argmax(axis=1).tolist()]

    def answer(self, probabilities):
        """Turn one text's probabilities (a list of Python floats, one per label) into the answer the API returns."""
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return {
            "prediction": self.labels[best],
            "confidence": round(probabilities[best], 3),
            "probabilities": {label: round(p, 3) for label, p in zip(self.labels, probabilities)},
        }

    def explained_answer(self, probabilities, explained):
        """`answer` with its `explanation`: the runner-up label, the log-odds against it and their parts."""
        against = self.labels[explained.pop("against_index")]
        return {**self.answer(probabilities), "explanation": {"against": against, **explained}}

    def info(self):
        """What `/models` shows of this model: no file-system paths."""
        return {
            "name": self.name,
            "version": self.version,
            "labels": self.labels,
            "created_at": self.manifest["created_at"],
            "hyperparameters": self.manifest["hyperparameters"],
            "training_data": {k: v for k, v in self.manifest["training_data"].items() if k != "path"},
            "metrics": self.metrics,
            "top_terms": self.top_terms,
        }


def softmax(scores):
    """Row-wise softmax of a 2-d array of log-scores."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


TOP_TERMS = 10


def top_terms(vectorizer, classifier, labels, k=TOP_TERMS):
    """For each label, the `k` terms whose log probability most exceeds the other labels' mean.

    Returns {label: [term, ...]}, strongest first.
    """
    names = vectorizer.get_feature_names_out()
    log_prob = classifier.feature_log_prob_  # shape (n_labels, n_features)
    result = {}
    for i, label in enumerate(labels):
        others = np.delete(log_prob, i, axis=0).mean(axis=0)
        margin = log_prob[i] - others
        best = np.argsort(-margin, kind="stable")[:k]
        result[label] = names[best].tolist()
    return result


def uses_fast_path(texts):
    """True when `FastScorer` scores this batch faster than scikit-learn (see FAST_PATH_MAX_BATCH)."""
    return len(texts) <= FAST_PATH_MAX_BATCH


def load_models(model_dir):
    """Load every model folder under `model_dir`, keyed by name; raise `ModelError` if any is bad, or if two
    folders hold the same model (a copy kept beside the live one must not silently replace it)."""
    models, folders = {}, {}
    for folder in artifacts.model_folders(model_dir):
        loaded = SentimentModel.load(folder)
        if loaded.name in models:
            raise ModelError(f"{folders[loaded.name]} and {folder} both hold the {loaded.name} model; MODEL_DIR "
                             "serves one folder per model. Move the copy you do not mean to serve out of "
                             f"{model_dir} (keep backups elsewhere).")
        models[loaded.name], folders[loaded.name] = loaded, folder
    return models
