"""FastScorer against scikit-learn: the same probabilities (to 1e-9) for every phrase and every option
the build can choose, and a clear refusal at load time for a model it cannot score exactly."""
import json
import pickle
import shutil

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.model_selection import ParameterGrid
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

import build_model
import model
import util

TOLERANCE = 1e-9
# Texts the tiny data lacks: repeated terms (tf > 1), capitals, accents, punctuation, unknown words only.
EXTRA_TEXTS = ["Brilliant brilliant BRILLIANT film , film !", "the the the movie movie", "Café déjà vu",
               "zzz qqq", " ", "", "a", "awful... but  DAZZLING; a masterpiece? No."]
# Options beyond PARAM_GRID that change what transform() computes, each on top of the shipped defaults.
EXTRA_OPTIONS = [{"tfidf__norm": "l1"}, {"tfidf__norm": None}, {"tfidf__use_idf": False},
                 {"tfidf__binary": True}, {"tfidf__lowercase": False}, {"tfidf__smooth_idf": False},
                 {"tfidf__binary": True, "tfidf__use_idf": False, "tfidf__norm": None}]


def assert_same_probabilities(scorer, vectorizer, classifier, texts):
    """Both paths over `texts`; fail naming the text whose probabilities differ most."""
    fast = scorer.predict_proba(texts)
    reference = classifier.predict_proba(vectorizer.transform(texts))
    assert fast.shape == reference.shape == (len(texts), len(classifier.classes_))
    error = np.abs(fast - reference).max(axis=1)
    worst = int(error.argmax())
    assert error[worst] <= TOLERANCE, (
        f"{texts[worst]!r}: fast {fast[worst]} vs scikit-learn {reference[worst]} (|diff| {error[worst]:.3g})")


def tiny_texts(tiny_data):
    """Every phrase of the tiny train.tsv and test.tsv, plus the extra texts."""
    train = util.read_kaggle_train(tiny_data / "train.tsv")
    test = util.read_kaggle_test(tiny_data / "test.tsv")
    return [*train["Phrase"], *test["Phrase"], *EXTRA_TEXTS]


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_fast_scorer_matches_scikit_learn_on_every_kaggle_phrase(kaggle_dir, kaggle_model_dir, name):
    loaded = model.SentimentModel.load(kaggle_model_dir / name)
    texts = [*util.read_kaggle_train(kaggle_dir / "train.tsv.gz")["Phrase"],
             *util.read_kaggle_test(kaggle_dir / "test.tsv.gz")["Phrase"]]
    assert len(texts) == 156_060 + 66_292
    assert_same_probabilities(loaded.scorer_, loaded.vectorizer, loaded.classifier, texts)


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_fast_scorer_matches_scikit_learn_on_the_tiny_data(tiny_data, model_dir, name):
    loaded = model.SentimentModel.load(model_dir / name)
    assert_same_probabilities(loaded.scorer_, loaded.vectorizer, loaded.classifier, tiny_texts(tiny_data))


@pytest.fixture(scope="module")
def tiny_fine_grained(tiny_data):
    """The tiny data as the fine-grained model's training set."""
    return next(d for d in build_model.kaggle_datasets(tiny_data / "train.tsv") if d.name == "fine-grained")


@pytest.mark.parametrize("params", [*ParameterGrid(build_model.PARAM_GRID),
                                    *({**build_model.DEFAULTS["binary"], **extra} for extra in EXTRA_OPTIONS)],
                         ids=lambda params: ",".join(f"{k.split('__')[1]}={v}" for k, v in params.items()))
def test_fast_scorer_matches_scikit_learn_for_every_option_the_build_can_choose(tiny_data, tiny_fine_grained,
                                                                               params):
    fitted = build_model.make_pipeline(params).fit(tiny_fine_grained.texts, tiny_fine_grained.y)
    vectorizer, classifier = fitted.named_steps["tfidf"], fitted.named_steps["nb"]
    assert_same_probabilities(model.FastScorer(vectorizer, classifier), vectorizer, classifier,
                              tiny_texts(tiny_data))


@pytest.mark.parametrize("size", [1, model.FAST_PATH_MAX_BATCH, model.FAST_PATH_MAX_BATCH + 1])
def test_answers_are_the_same_on_either_side_of_the_batch_size_crossover(tiny_data, model_dir, size):
    loaded = model.SentimentModel.load(model_dir / "fine-grained")
    texts = (tiny_texts(tiny_data) * (size // 100 + 1))[:size]
    expected = [loaded.answer(row) for row in loaded.predict_proba_sklearn(texts).tolist()]
    assert loaded.predict(texts) == expected


def set_after_fit(name, value):
    """A change made to a fitted vectorizer that transform() would ignore or apply differently."""
    def change(vectorizer, classifier):
        setattr(vectorizer, name, value)
        return vectorizer, classifier
    return change


def flip_after_fit(name):
    """A boolean option of a fitted vectorizer turned the other way, whatever the build chose."""
    def change(vectorizer, classifier):
        setattr(vectorizer, name, not getattr(vectorizer, name))
        return vectorizer, classifier
    return change


def refit(*, vectorizer=None, classifier=None):
    """The tiny data fitted again with another vectorizer or classifier."""
    def change(old_vectorizer, old_classifier):
        texts = ["good film", "bad film", "good good", "bad plot"]
        new_vectorizer = (vectorizer or old_vectorizer).fit(texts)
        new_classifier = (classifier or MultinomialNB()).fit(new_vectorizer.transform(texts), [1, 0, 1, 0])
        return new_vectorizer, new_classifier
    return change


@pytest.mark.parametrize("change, message", [
    (refit(vectorizer=TfidfVectorizer(dtype=np.float32)), "dtype=float32, only float64"),
    (refit(classifier=ComplementNB()), "classifier is ComplementNB, not MultinomialNB"),
    (refit(classifier=BernoulliNB()), "classifier is BernoulliNB, not MultinomialNB"),
    (refit(vectorizer=CountVectorizer()), "vectorizer is CountVectorizer, not TfidfVectorizer"),
    (set_after_fit("norm", "max"), "norm='max', only 'l1', 'l2' or None"),
    (flip_after_fit("sublinear_tf"), "was changed after fitting"),
    (set_after_fit("input", "filename"), "input='filename', only 'content'"),
], ids=["float32", "ComplementNB", "BernoulliNB", "CountVectorizer", "norm-max", "changed-after-fit", "input"])
def test_a_model_the_fast_scorer_cannot_match_is_refused_at_load_with_the_reason(model_dir, tmp_path, change,
                                                                                 message):
    folder = shutil.copytree(model_dir / "binary", tmp_path / "binary")
    vectorizer, classifier = change(*(pickle.loads((folder / name).read_bytes())
                                      for name in (model.VECTORIZER_FILE, model.CLASSIFIER_FILE)))
    (folder / model.VECTORIZER_FILE).write_bytes(pickle.dumps(vectorizer))
    (folder / model.CLASSIFIER_FILE).write_bytes(pickle.dumps(classifier))
    manifest = json.loads((folder / model.MANIFEST_FILE).read_text())
    manifest["artifacts"] = {name: util.sha256_file(folder / name) for name in manifest["artifacts"]}
    (folder / model.MANIFEST_FILE).write_text(json.dumps(manifest))

    with pytest.raises(model.ModelError, match="unsupported model for the fast scorer") as refused:
        model.SentimentModel.load(folder)
    assert message in str(refused.value)
