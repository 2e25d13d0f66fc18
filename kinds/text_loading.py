"""What a text model's two pickles may hold, checked before anything of theirs is used.

The vectorizer pickle holds a TfidfVectorizer of words, or a FeatureUnion of it ("words") and a
TfidfVectorizer of characters ("chars", `char_wb`); the classifier pickle a MultinomialNB or a
LogisticRegression. Each is read through an exact allow-list of globals (`store.unpickle`) and then
checked attribute by attribute, and `fitted_problems` checks that the fitted parts fit together, so
that `kinds.text_scoring` computes exactly what scikit-learn would.
"""
import numpy as np
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion

from store.artifacts import ModelError
from store.unpickle import NONE, NUMPY_ARRAYS, loads_restricted, state_problems

# Every global a text model's pickle may name, compared whole as (module, name); the build's own pickles
# ask for these, for every setting the tuner can choose (tests/kinds/test_text_loading.py proves it complete).
ALLOWED_GLOBALS = NUMPY_ARRAYS | {
    # The fitted objects, and the TF-IDF weighting a vectorizer keeps as `_tfidf`. Pickle creates them
    # empty (no __init__) and sets their attributes; `check_state` then checks every attribute.
    ("sklearn.feature_extraction.text", "TfidfVectorizer"),
    ("sklearn.feature_extraction.text", "TfidfTransformer"),
    ("sklearn.pipeline", "FeatureUnion"),
    ("sklearn.naive_bayes", "MultinomialNB"),
    ("sklearn.linear_model._logistic", "LogisticRegression"),
    # The vectorizer's `dtype` setting, the class numpy.float64 itself.
    ("numpy", "float64"),
}
VECTORIZERS = (TfidfVectorizer, FeatureUnion)
CLASSIFIERS = (MultinomialNB, LogisticRegression)
FAMILIES = {MultinomialNB: "naive-bayes", LogisticRegression: "logistic-regression"}
# The names of a FeatureUnion's parts, in column order: what the build writes.
PARTS = (("words", "word"), ("chars", "char_wb"))

# Every attribute a fitted object may carry, with the types it may have.
EXPECTED_STATE = {
    TfidfVectorizer: {
        "input": str, "encoding": str, "decode_error": str, "strip_accents": (NONE, str), "preprocessor": NONE,
        "tokenizer": NONE, "analyzer": str, "lowercase": bool, "token_pattern": (str, NONE),
        "stop_words": (NONE, str, list, frozenset), "max_df": (float, int), "min_df": (int, float),
        "max_features": (NONE, int), "ngram_range": tuple, "vocabulary": NONE, "binary": bool, "dtype": type,
        "norm": (str, NONE), "use_idf": bool, "smooth_idf": bool, "sublinear_tf": bool,
        "_tfidf": TfidfTransformer, "fixed_vocabulary_": bool, "_stop_words_id": int, "vocabulary_": dict,
    },
    TfidfTransformer: {"norm": (str, NONE), "use_idf": bool, "smooth_idf": bool, "sublinear_tf": bool,
                       "n_features_in_": int, "idf_": np.ndarray},
    FeatureUnion: {"transformer_list": list, "n_jobs": NONE, "transformer_weights": NONE, "verbose": bool,
                   "verbose_feature_names_out": bool},
    MultinomialNB: {
        "alpha": (float, int), "fit_prior": bool, "class_prior": NONE, "force_alpha": bool, "n_features_in_": int,
        "classes_": np.ndarray, "class_count_": np.ndarray, "feature_count_": np.ndarray,
        "feature_log_prob_": np.ndarray, "class_log_prior_": np.ndarray,
    },
    LogisticRegression: {
        "penalty": str, "C": (float, int), "l1_ratio": (NONE, float, int), "dual": bool, "tol": (float, int),
        "fit_intercept": bool, "intercept_scaling": (float, int), "class_weight": (NONE, str), "random_state":
        (NONE, int), "solver": str, "max_iter": int, "verbose": int, "warm_start": bool, "n_jobs": (NONE, int),
        "n_features_in_": int, "classes_": np.ndarray, "n_iter_": np.ndarray, "coef_": np.ndarray,
        "intercept_": np.ndarray,
    },
}
ANALYZERS = ("word", "char", "char_wb")


def load_vectorizer(data, path):
    """The checked vectorizer of a text model's pickle bytes; `ModelError` naming `path` otherwise."""
    vectorizer = loads_restricted(data, path, ALLOWED_GLOBALS)
    refuse(path, object_problems(vectorizer, VECTORIZERS))
    return vectorizer


def load_classifier(data, path):
    """The checked classifier of a text model's pickle bytes; `ModelError` naming `path` otherwise."""
    classifier = loads_restricted(data, path, ALLOWED_GLOBALS)
    refuse(path, object_problems(classifier, CLASSIFIERS))
    return classifier


def refuse(path, problems):
    """`ModelError` listing `problems`, if there are any."""
    if problems:
        raise ModelError(f"{path}: refused, not a model the build writes: {'; '.join(problems)}. "
                         "Rebuild the model with `python build_model.py`.")


def object_problems(obj, kinds):
    """What makes `obj` other than exactly one of `kinds` with every attribute of an expected type."""
    if type(obj) not in kinds:
        return [f"holds a {type(obj).__name__}, not a {' or a '.join(kind.__name__ for kind in kinds)}"]
    problems = state_problems(obj, EXPECTED_STATE[type(obj)])
    if problems:
        return problems
    if type(obj) is TfidfVectorizer:
        problems += object_problems(obj._tfidf, (TfidfTransformer,)) if hasattr(obj, "_tfidf") else []
        problems += vectorizer_problems(obj)
    elif type(obj) is FeatureUnion:
        problems += union_problems(obj)
    return problems


def union_problems(union):
    """A FeatureUnion must be exactly the build's: ("words", TF-IDF of words), then ("chars", of `char_wb`)."""
    parts = union.transformer_list
    if len(parts) != len(PARTS) or not all(type(part) is tuple and len(part) == 2 for part in parts):
        return [f"transformer_list is not {len(PARTS)} (name, vectorizer) pairs"]
    problems = []
    for (name, part), (expected, analyzer) in zip(parts, PARTS):
        if name != expected or type(part) is not TfidfVectorizer:
            problems.append(f"transformer_list holds {name!r}: {type(part).__name__}, not {expected!r}: "
                            "TfidfVectorizer")
        else:
            problems += [f"{name}: {p}" for p in object_problems(part, (TfidfVectorizer,))]
            if not problems and part.analyzer != analyzer:
                problems.append(f"{name}: analyzer is {part.analyzer!r}, not {analyzer!r}")
    return problems


def vectorizer_problems(vectorizer):
    """What in a vectorizer's settings the build never writes: a callable, an unknown analyzer, odd vocabulary."""
    problems = []
    state = vars(vectorizer)
    if state.get("analyzer") not in ANALYZERS:
        problems.append(f"analyzer is {state.get('analyzer')!r}")
    if state.get("dtype") is not np.float64:
        problems.append("dtype is not numpy.float64")
    ngrams = state.get("ngram_range")
    if not (isinstance(ngrams, tuple) and len(ngrams) == 2 and all(type(n) is int for n in ngrams)):
        problems.append("ngram_range is not two whole numbers")
    vocabulary = state.get("vocabulary_", {})
    if not all(type(term) is str and type(index) is int for term, index in vocabulary.items()):
        problems.append("vocabulary_ maps something other than words to column numbers")
    return problems


def check_supported(vectorizer, classifier):
    """Raise `ModelError` unless `kinds.text_scoring` computes exactly what these fitted objects compute.

    Everything the analyzer does is the vectorizer's own `build_analyzer()`, and min_df/max_df/max_features
    only shape `vocabulary_` at fit time, so those need no check. What is checked is the rest of
    `transform`: each part's weighting options, the output dtype, and that the classifier fits them.
    """
    # Exact types: a subclass (or ComplementNB, CountVectorizer...) may compute something else.
    problems = [f"{role} is {type(obj).__name__}, not {' or '.join(kind.__name__ for kind in kinds)}"
                for role, obj, kinds in [("vectorizer", vectorizer, VECTORIZERS),
                                         ("classifier", classifier, CLASSIFIERS)] if type(obj) not in kinds]
    if not problems and type(vectorizer) is FeatureUnion:
        problems = union_problems(vectorizer)
    if problems:
        raise ModelError("unsupported model for the fast scorer: " + "; ".join(problems) + ".")
    parts = [vectorizer] if type(vectorizer) is TfidfVectorizer else [p for _, p in vectorizer.transformer_list]
    if parts[0].analyzer != "word":
        problems.append(f"the first features are {parts[0].analyzer!r}, not words")
    for part in parts:
        if part.input != "content":
            problems.append(f"vectorizer input={part.input!r}, only 'content' is supported")
        if part.norm not in ("l1", "l2", None):
            problems.append(f"vectorizer norm={part.norm!r}, only 'l1', 'l2' or None are supported")
        if np.dtype(part.dtype) != np.float64:
            problems.append(f"vectorizer dtype={np.dtype(part.dtype).name}, only float64 is supported")
    problems += fitted_problems(parts, classifier)
    if problems:
        raise ModelError("unsupported model for the fast scorer: " + "; ".join(problems) + ". "
                         "Rebuild the model with `python build_model.py`.")


def fitted_problems(parts, classifier):
    """What makes the fitted state unusable: unfitted parts, mismatched sizes, options changed after fit."""
    fitted = "feature_log_prob_" if type(classifier) is MultinomialNB else "coef_"
    if not all(hasattr(part, "vocabulary_") for part in parts) or not hasattr(classifier, fitted):
        return ["the vectorizer or the classifier is not fitted"]
    problems = []
    n_features = sum(len(part.vocabulary_) for part in parts)
    weights = getattr(classifier, fitted)
    if weights.ndim != 2 or weights.shape[1] != n_features:
        problems.append(f"classifier has {weights.shape[-1]} features, vectorizer {n_features}")
    n_classes = len(classifier.classes_)
    rows = 1 if type(classifier) is LogisticRegression and n_classes == 2 else n_classes
    bias = classifier.class_log_prior_ if type(classifier) is MultinomialNB else classifier.intercept_
    if n_classes < 2 or weights.shape[0] != rows or bias.shape != (rows,):
        problems.append(f"classifier weights of shape {weights.shape} do not fit its {n_classes} classes")
    for part in parts:
        # transform() weights with the TfidfTransformer made at fit time, not with the vectorizer's current
        # attributes: an option set after fitting would make the two paths disagree.
        transformer = getattr(part, "_tfidf", None)
        if transformer is not None:
            for option in ("norm", "sublinear_tf", "use_idf"):
                if getattr(transformer, option) != getattr(part, option):
                    problems.append(f"vectorizer {option}={getattr(part, option)!r} was changed after fitting "
                                    f"(fitted with {getattr(transformer, option)!r})")
            if hasattr(transformer, "idf_") != bool(part.use_idf):
                problems.append("vectorizer use_idf does not match its fitted idf_")
        if part.use_idf and len(getattr(part, "idf_", ())) != len(part.vocabulary_):
            problems.append("vectorizer idf_ does not match its vocabulary")
    return problems
