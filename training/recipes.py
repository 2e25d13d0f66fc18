"""What a text model is made of: its family, its features, their settings, and the search that tunes them.

A recipe is a dict: `classifier` (a family), `features` and the scikit-learn Pipeline's parameters,
whose names follow its steps: `tfidf__...` for words alone, `tfidf__words__...` and
`tfidf__chars__...` for words joined with characters, then `nb__...` or `lr__...`. The manifest keeps
the recipe as its `hyperparameters` (with the temperature), so a later build can refit the live
model's recipe to compare with (the gate); a manifest without `classifier` is naive Bayes over words.
"""
import numpy as np
from joblib import parallel_config
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline

from kinds.text import logits

NAIVE_BAYES, LOGISTIC_REGRESSION = "naive-bayes", "logistic-regression"
FAMILIES = (NAIVE_BAYES, LOGISTIC_REGRESSION)
WORDS, WORDS_AND_CHARS = "words", "words+chars"
FEATURES = (WORDS, WORDS_AND_CHARS)
STEP = {NAIVE_BAYES: "nb", LOGISTIC_REGRESSION: "lr"}

# The words' and the classifiers' settings, chosen by `python build_model.py --data .../train.tsv.gz --tune`
# (GroupKFold, 3 folds, on the training side of the split); the search's results are in each model's
# tuning.json and docs/models.md.
WORD_SETTINGS = {
    "binary": {"ngram_range": (1, 1), "sublinear_tf": False, "min_df": 1},
    "fine-grained": {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2},
}
NB_SETTINGS = {"binary": {"alpha": 1.0, "fit_prior": False}, "fine-grained": {"alpha": 0.03, "fit_prior": True}}
# Logistic regression reads words as 1-2-grams, sublinear, seen twice at least, for both models.
LR_WORD_SETTINGS = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2}
# Characters: `char_wb` 2-5-grams (never across a space), sublinear, seen twice at least.
CHAR_SETTINGS = {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 2}
# C = 4 measured best on the five labels. lbfgs stops at tol 1e-3: on Kaggle's five labels it converges in
# 73 iterations and 24 s against 340 and 211 s at scikit-learn's 1e-4, with the same held-out figures
# (accuracy 0.614 vs 0.613, macro F1 0.473 vs 0.471, log loss 0.991 vs 0.995).
LR_SETTINGS = {"C": 4.0, "tol": 1e-3, "max_iter": 1000}
# The family each model is built with unless --classifier says otherwise: the winner of the honest split
# (macro F1, then log loss), docs/models.md has the table.
DEFAULT_FAMILY = {"binary": LOGISTIC_REGRESSION, "fine-grained": LOGISTIC_REGRESSION}
DEFAULT_FEATURES = {NAIVE_BAYES: WORDS, LOGISTIC_REGRESSION: WORDS_AND_CHARS}

# What --tune searches, by family: the words' settings, and the classifier's strength.
PARAM_GRID = {
    NAIVE_BAYES: {"ngram_range": [(1, 1), (1, 2), (1, 3)], "sublinear_tf": [False, True], "min_df": [1, 2],
                  "alpha": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "fit_prior": [False, True]},
    LOGISTIC_REGRESSION: {"ngram_range": [(1, 1), (1, 2)], "C": [1.0, 2.0, 4.0, 8.0]},
}
CLASSIFIER_SETTINGS = {"alpha", "fit_prior", "C"}
TUNING_SCORE = {"binary": "roc_auc", "fine-grained": "f1_macro"}
ACCURACY_SLACK = 0.005
# The tutorial used TfidfVectorizer() and MultinomialNB() with library defaults.
TUTORIAL = {"classifier": NAIVE_BAYES, "features": WORDS}


# Seconds a worker process of the build's parallel fits (the calibration folds, --tune's grid) outlives its
# last task. joblib's default, 300, kept a killed build's workers (orphans, holding its output pipes) for five
# minutes; the next model's folds start a new pair in about a second.
WORKER_IDLE_SECONDS = 2


def worker_processes():
    """The context the build's parallel fits run in: joblib's process pool, its idle workers gone in seconds."""
    return parallel_config(backend="loky", idle_worker_timeout=WORKER_IDLE_SECONDS)


def default_recipe(name, *, family=None, features=None):
    """The recipe model `name` is built with: its default family, or `family`, over `features`."""
    family = family or DEFAULT_FAMILY[name]
    features = features or DEFAULT_FEATURES[family]
    words = WORD_SETTINGS[name] if family == NAIVE_BAYES else LR_WORD_SETTINGS
    classifier = NB_SETTINGS[name] if family == NAIVE_BAYES else LR_SETTINGS
    return recipe_of(family, features, words=words, classifier=classifier)


def recipe_of(family, features, *, words, classifier, chars=CHAR_SETTINGS):
    """A recipe from its parts' settings, named as `make_pipeline`'s steps are."""
    prefix = "tfidf__" if features == WORDS else "tfidf__words__"
    recipe = {"classifier": family, "features": features}
    recipe.update({prefix + key: value for key, value in words.items()})
    if features == WORDS_AND_CHARS:
        recipe.update({f"tfidf__chars__{key}": value for key, value in chars.items()})
    recipe.update({f"{STEP[family]}__{key}": value for key, value in classifier.items()})
    return recipe


def make_pipeline(recipe):
    """An unfitted Pipeline ("tfidf", then "nb" or "lr") of `recipe` over library defaults."""
    params = dict(recipe)
    family, features = params.pop("classifier", NAIVE_BAYES), params.pop("features", WORDS)
    vectorizer = TfidfVectorizer() if features == WORDS else FeatureUnion(
        [("words", TfidfVectorizer()), ("chars", TfidfVectorizer())])
    classifier = MultinomialNB() if family == NAIVE_BAYES else LogisticRegression()
    return Pipeline([("tfidf", vectorizer), (STEP[family], classifier)]).set_params(**params)


def parts(fitted):
    """(vectorizer, classifier) of a fitted pipeline."""
    return fitted.steps[0][1], fitted.steps[-1][1]


def fitted_logits(fitted, texts, n_labels):
    """A fitted pipeline's logits of each text, shape (n_texts, n_labels); a label the fit never saw (a small
    fold) gets -inf, so it gets probability 0."""
    vectorizer, classifier = parts(fitted)
    known = logits(classifier, vectorizer.transform(texts))
    scores = np.full((len(texts), n_labels), -np.inf)
    scores[:, classifier.classes_] = known
    return scores


def tune(data, train, seed, recipe):
    """Grid-search the family's PARAM_GRID around `recipe` with GroupKFold on the training rows; return
    (chosen recipe, results).

    The choice: the best TUNING_SCORE among settings whose mean accuracy is within ACCURACY_SLACK of the
    best accuracy, so macro F1 or AUC is never bought with accuracy.
    """
    family, features = recipe["classifier"], recipe["features"]
    words = "tfidf__" if features == WORDS else "tfidf__words__"
    grid = {(f"{STEP[family]}__" if key in CLASSIFIER_SETTINGS else words) + key: values
            for key, values in PARAM_GRID[family].items()}
    search = GridSearchCV(make_pipeline(recipe), grid, cv=GroupKFold(n_splits=3), n_jobs=-1, refit=False,
                          scoring={"accuracy": "accuracy", "score": TUNING_SCORE[data.name]})
    with worker_processes():
        search.fit(data.texts[train], data.y[train], groups=data.groups[train])
    cv = search.cv_results_
    score = TUNING_SCORE[data.name]
    rows = [{"params": jsonable(p), "accuracy": round(float(a), 4), score: round(float(s), 4)}
            for p, a, s in zip(cv["params"], cv["mean_test_accuracy"], cv["mean_test_score"])]
    best_accuracy = max(row["accuracy"] for row in rows)
    eligible = [i for i, row in enumerate(rows) if row["accuracy"] >= best_accuracy - ACCURACY_SLACK]
    chosen = max(eligible, key=lambda i: rows[i][score])
    results = {"rule": f"best {score} among settings within {ACCURACY_SLACK} of the best accuracy",
               "cv": "GroupKFold(n_splits=3) on the training side of the split", "seed": seed,
               "recipe": jsonable(recipe), "grid": jsonable(grid), "chosen": rows[chosen],
               "results": sorted(rows, key=lambda row: -row[score])}
    return {**recipe, **cv["params"][chosen]}, results


def grid_size(family):
    """How many settings --tune tries for a family."""
    return int(np.prod([len(v) for v in PARAM_GRID[family].values()]))


def from_manifest(hyperparameters):
    """The recipe a manifest's hyper-parameters record (JSON lists back to tuples; the temperature apart)."""
    recipe = {key: tuple(value) if isinstance(value, list) else value
              for key, value in hyperparameters.items() if key != "temperature"}
    return {"classifier": NAIVE_BAYES, "features": WORDS, **recipe}


def jsonable(obj):
    """Tuples become lists so parameters round-trip through JSON."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
