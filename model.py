"""The sentiment model: load a built model folder, verify it, and score texts. No HTTP here.

A model folder (written by `build_model.py`) holds the two pickles, `metrics.json` and
`manifest.json`. `SentimentModel.load()` checks every file's sha256 against the manifest and the
scikit-learn version against the one that trained it *before* unpickling anything: a pickle can run
arbitrary code, so only artifacts that match their manifest are trusted.

Scoring has two paths that compute the same probabilities (tests prove it to 1e-9):
`FastScorer` does the arithmetic of TF-IDF + MultinomialNB directly for one text, without
scikit-learn's per-call validation and sparse-matrix set-up; the scikit-learn path
(`transform` + `predict_proba`) is faster for large batches. `SentimentModel.predict_proba` picks
by batch size.
"""
import hashlib
import pickle
from math import exp, log, sqrt
from pathlib import Path

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

import util

VECTORIZER_FILE = "TFIDFVectorizer.pkl"
CLASSIFIER_FILE = "SentimentClassifier.pkl"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
ARTIFACT_FILES = (VECTORIZER_FILE, CLASSIFIER_FILE, METRICS_FILE)

# Batches up to this size are scored one text at a time by FastScorer; larger ones by
# scikit-learn's vectorised path. Measured with `python benchmarks/bench_scoring.py` (fine-grained
# Kaggle model, random Kaggle test phrases, 2 cores): FastScorer costs ~15 us per text at any size;
# scikit-learn ~0.8 ms per call plus ~8 us per text, so it wins from 150 texts in two runs (100:
# 1.47 vs 1.57 ms; 150: 2.36 vs 1.99 ms). 100 is the largest size where the fast path won every run.
FAST_PATH_MAX_BATCH = 100


class ModelError(Exception):
    """A model folder cannot be trusted or used: missing, altered, or built by another scikit-learn."""


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

    def __init__(self, vectorizer, classifier):
        check_supported(vectorizer, classifier)
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
        counts = {}
        vocabulary = self.vocabulary_
        for token in self.analyze_(text):
            index = vocabulary.get(token)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:  # no known term: an all-zero row, so only the priors speak
            jll = self.class_log_prior_.tolist()
        else:
            # A phrase has a handful of terms: plain floats beat numpy's per-call overhead here.
            # The same steps, in the same order, as TfidfTransformer.transform and normalize().
            indices = list(counts)
            weights = [1.0] * len(indices) if self.binary_ else [float(c) for c in counts.values()]
            if self.sublinear_tf_:
                weights = [log(w) + 1.0 for w in weights]
            if self.idf_ is not None:
                weights = [w * idf for w, idf in zip(weights, self.idf_[indices].tolist())]
            if self.norm_ == "l2":
                norm = sqrt(sum(w * w for w in weights))
                weights = [w / norm for w in weights]
            elif self.norm_ == "l1":
                norm = sum(abs(w) for w in weights)
                weights = [w / norm for w in weights]
            # MultinomialNB's joint log likelihood: one gather of the terms' rows, one product.
            jll = (np.dot(weights, self.feature_log_prob_t_[indices]) + self.class_log_prior_).tolist()
        # Softmax, equal to scikit-learn's exp(jll - logsumexp(jll)).
        top = max(jll)
        shifted = [exp(x - top) for x in jll]
        total = sum(shifted)
        return [x / total for x in shifted]

    def predict_proba(self, texts):
        """Return the class probabilities of each text, shape (n_texts, n_classes)."""
        return np.array([self.predict_proba_one(text) for text in texts]).reshape(
            len(texts), len(self.class_log_prior_))


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
        self.scorer_ = FastScorer(vectorizer, classifier)

    @classmethod
    def load(cls, folder):
        """Verify and load a model folder; raise `ModelError` naming the file at fault."""
        folder = resolve_folder(folder)  # one fixed version, even if a build swaps the link meanwhile
        manifest = read_manifest(folder)
        verify_artifacts(folder, manifest)
        vectorizer = unpickle(folder / VECTORIZER_FILE, manifest["artifacts"][VECTORIZER_FILE])
        classifier = unpickle(folder / CLASSIFIER_FILE, manifest["artifacts"][CLASSIFIER_FILE])
        metrics = util.read_json(folder / METRICS_FILE)
        return cls(name=manifest["name"], vectorizer=vectorizer, classifier=classifier,
                   manifest=manifest, metrics=metrics)

    def predict_proba(self, texts):
        """Class probabilities, shape (n_texts, n_labels), by whichever path is faster for the batch."""
        if len(texts) <= FAST_PATH_MAX_BATCH:
            return self.scorer_.predict_proba(texts)
        return self.predict_proba_sklearn(texts)

    def predict_proba_sklearn(self, texts):
        """Class probabilities through scikit-learn's own transform + predict_proba."""
        return self.classifier.predict_proba(self.vectorizer.transform(texts))

    def predict(self, texts):
        """Score texts; return one answer per text with prediction, confidence and probabilities."""
        if len(texts) <= FAST_PATH_MAX_BATCH:  # the fast scorer's plain floats, with no array in between
            rows = [self.scorer_.predict_proba_one(text) for text in texts]
        else:
            rows = self.predict_proba_sklearn(texts).tolist()
        return [self.answer(row) for row in rows]

    def answer(self, probabilities):
        """Turn one text's probabilities (a list of Python floats, one per label) into the answer the API returns."""
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return {
            "prediction": self.labels[best],
            "confidence": round(probabilities[best], 3),
            "probabilities": {label: round(p, 3) for label, p in zip(self.labels, probabilities)},
        }

    def info(self):
        """What `/models` shows of this model: no file-system paths."""
        return {
            "name": self.name,
            "labels": self.labels,
            "created_at": self.manifest["created_at"],
            "hyperparameters": self.manifest["hyperparameters"],
            "training_data": {k: v for k, v in self.manifest["training_data"].items() if k != "path"},
            "metrics": self.metrics,
        }


def resolve_folder(folder):
    """The real folder behind a model folder or its link; `ModelError` if there is none."""
    real = Path(folder).resolve()
    if not real.is_dir():
        via = f" (it links to {real}, which is gone)" if Path(folder).is_symlink() else ""
        raise ModelError(f"{folder}: no such model folder{via}. Build it with `python build_model.py`.")
    return real


def read_manifest(folder):
    """Read and sanity-check `manifest.json` of a model folder."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing. Rebuild the model with `python build_model.py`.")
    try:
        manifest = util.read_json(path)
        artifacts = manifest["artifacts"]
        trained_with = manifest["versions"]["scikit-learn"]
        manifest["name"], manifest["labels"], manifest["created_at"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: not a valid manifest ({exc!r}). Rebuild the model.") from None
    if not isinstance(artifacts, dict):
        raise ModelError(f"{path}: 'artifacts' must map file names to sha256 hashes. Rebuild the model.")
    missing = [name for name in ARTIFACT_FILES if name not in artifacts]
    if missing:
        raise ModelError(f"{path}: lists no hash for {', '.join(missing)}. Rebuild the model.")
    if trained_with != sklearn.__version__:
        raise ModelError(
            f"{path}: trained with scikit-learn {trained_with}, but {sklearn.__version__} is installed. "
            "Install the version in requirements.txt or rebuild the model.")
    return manifest


def verify_artifacts(folder, manifest):
    """Check each artifact's sha256 against the manifest before anything is unpickled."""
    for name, expected in manifest["artifacts"].items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path}: missing. Rebuild the model with `python build_model.py`.")
        if util.sha256_file(path) != expected:
            raise ModelError(
                f"{path}: sha256 does not match manifest.json; the file was altered or truncated. "
                "Refusing to load it. Rebuild the model with `python build_model.py`.")


def unpickle(path, sha256):
    """Unpickle the very bytes whose sha256 is checked here, so a file swapped after
    `verify_artifacts` is never unpickled."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{path}: changed while the model was loading; refusing to load it. Try again.")
    try:
        return pickle.loads(data)
    except Exception as exc:  # a verified file that will not load is still a broken model
        raise ModelError(f"{path}: cannot be unpickled ({exc!r}). Rebuild the model.") from None


def model_folders(model_dir):
    """The model folders under `model_dir`; raise `ModelError` when there are none."""
    model_dir = Path(model_dir)
    # A link whose target is gone still counts, so it fails loudly instead of being skipped.
    folders = sorted(p for p in model_dir.iterdir()
                     if (p.is_dir() or p.is_symlink()) and not p.name.startswith(".")) if model_dir.is_dir() else []
    if not folders:
        raise ModelError(f"{model_dir}: no models found. Build them with `python build_model.py --out {model_dir}`.")
    return folders


def load_models(model_dir):
    """Load every model folder under `model_dir`, keyed by name; raise `ModelError` if any is bad."""
    models = {}
    for folder in model_folders(model_dir):
        loaded = SentimentModel.load(folder)
        models[loaded.name] = loaded
    return models
