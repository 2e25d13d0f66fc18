"""The text classifier (kinds/text.py): loading a model directory, and its scorer against scikit-learn: the
same probabilities (to 1e-9) for both families, both feature sets, every phrase and every option the build
can choose, each batch scored by the path that is faster for its size, and a clear refusal of a model the
scorer cannot match. How a model folder is verified before anything is unpickled is in
tests/store/test_artifacts.py and tests/kinds/test_text_loading.py."""
import json
import pickle
import shutil

import numpy as np
import pytest
import scipy.special
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.model_selection import ParameterGrid
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB

import kinds
import util
from kinds import text as model
from kinds import text_scoring
from store import artifacts
from support import WORDS
from training import data as training_data
from training import recipes

TOLERANCE = 1e-9
# The Kaggle tests take every 10th phrase: the arithmetic at the corpus' scale and spread of texts, in a
# tenth of the time (every phrase, explained one at a time, cost minutes a model).
KAGGLE_SAMPLE = 10
# Texts the tiny data lacks: repeated terms (tf > 1), capitals, accents, punctuation, unknown words only.
EXTRA_TEXTS = ["Brilliant brilliant BRILLIANT film , film !", "the the the movie movie", "Café déjà vu",
               "zzz qqq", " ", "", "a", "awful... but  DAZZLING; a masterpiece? No."]
# Options beyond PARAM_GRID that change what transform() computes, each on top of a default recipe.
EXTRA_OPTIONS = [{"norm": "l1"}, {"norm": None}, {"use_idf": False}, {"binary": True}, {"lowercase": False},
                 {"smooth_idf": False}, {"binary": True, "use_idf": False, "norm": None}]


def recipes_to_check():
    """(recipe, labels) pairs for every recipe the build can choose: naive Bayes over words with every setting
    --tune tries (five labels); both families over words and over words and characters, with the options above
    on each part (two labels and five: logistic regression has one row of weights for two)."""
    nb = recipes.NAIVE_BAYES
    found = [(recipes.recipe_of(nb, recipes.WORDS, words={k: v for k, v in grid.items() if k in ("ngram_range",
                                                                                             "sublinear_tf", "min_df")},
                                classifier={"alpha": grid["alpha"], "fit_prior": grid["fit_prior"]}), 5)
             for grid in ParameterGrid(recipes.PARAM_GRID[nb])]
    for family in recipes.FAMILIES:
        for features in recipes.FEATURES:
            base = recipes.default_recipe("fine-grained", family=family, features=features)
            parts = ["tfidf__"] if features == recipes.WORDS else ["tfidf__words__", "tfidf__chars__"]
            for recipe in [base, *({**base, **{part + k: v for k, v in extra.items()}}
                                   for extra in EXTRA_OPTIONS for part in parts)]:
                found += [(recipe, 2), (recipe, 5)]
    return found


def recipe_id(pair):
    """A short name of a (recipe, labels) pair for the test's id."""
    recipe, labels = pair
    return f"{labels}-labels," + ",".join(f"{k.replace('tfidf__', '')}={v}" for k, v in recipe.items())


# --- Loading a model directory -------------------------------------------------------------------

@pytest.fixture
def models(model_dir, tmp_path):
    """A private copy of the session's models (both folders), safe to break."""
    out = tmp_path / "models"
    for name in ("binary", "fine-grained"):
        shutil.copytree((model_dir / name).resolve(), out / name)
    return out


def test_every_model_folder_under_the_directory_loads_and_scores(models):
    loaded = kinds.load_models(models)
    assert set(loaded) == {"binary", "fine-grained"}
    answer = loaded["binary"].predict(["a brilliant, dazzling masterpiece"])[0]
    assert answer["prediction"] == "Positive"
    assert answer["confidence"] == max(answer["probabilities"].values())
    assert loaded["fine-grained"].labels == util.FINE_GRAINED_LABELS


def test_one_broken_model_stops_the_whole_directory_with_a_model_error_naming_its_file(models):
    (models / "fine-grained" / artifacts.CLASSIFIER_FILE).write_bytes(b"not the model")
    with pytest.raises(kinds.ModelError) as refused:  # what app.py, predict.py and gunicorn.conf.py catch
        kinds.load_models(models)
    assert str(models / "fine-grained" / artifacts.CLASSIFIER_FILE) in str(refused.value)
    assert "sha256 does not match" in str(refused.value)


def test_two_folders_holding_one_model_stop_the_directory_naming_both(models):
    # A backup made by hand before a risky build: a copy of the live folder under another name.
    shutil.copytree(models / "binary", models / "binary-backup")
    with pytest.raises(kinds.ModelError) as refused:
        kinds.load_models(models)
    message = str(refused.value)
    assert str(models / "binary") in message and str(models / "binary-backup") in message
    assert "both hold the binary model" in message


@pytest.mark.parametrize("state", ["missing", "empty", "only a dangling link"])
def test_a_model_dir_without_usable_models_is_a_model_error_naming_it(tmp_path, state):
    model_dir = tmp_path / "models"
    if state != "missing":
        model_dir.mkdir()
    if state == "only a dangling link":
        (model_dir / "binary").symlink_to(tmp_path / "deleted-version")
    with pytest.raises(kinds.ModelError) as error:
        kinds.load_models(model_dir)
    assert str(model_dir) in str(error.value)
    expected = "which is gone" if state == "only a dangling link" else "no models found. Build them with"
    assert expected in str(error.value)


# --- FastScorer against scikit-learn -------------------------------------------------------------

def sklearn_probabilities(vectorizer, classifier, texts, temperature=1.0):
    """The reference: scikit-learn's joint log likelihood (NB) or decision function (LR, [0, d] for two labels),
    through SciPy's softmax at `temperature`; at T = 1, scikit-learn's own predict_proba."""
    matrix = vectorizer.transform(texts)
    if temperature == 1.0:
        return classifier.predict_proba(matrix)
    return scipy.special.softmax(model.logits(classifier, matrix) / temperature, axis=1)


def words_of(vectorizer):
    """The TF-IDF of words of a text model's vectorizer (itself, or a FeatureUnion's first part)."""
    return text_scoring.feature_parts(vectorizer)[0]


def assert_same_probabilities(fast, reference, texts):
    """Two (n_texts, n_labels) arrays agree to TOLERANCE; fail naming the text that differs most."""
    fast, reference = np.asarray(fast), np.asarray(reference)
    assert fast.shape == reference.shape == (len(texts), reference.shape[1])
    error = np.abs(fast - reference).max(axis=1)
    worst = int(error.argmax())
    assert error[worst] <= TOLERANCE, (
        f"{texts[worst]!r}: fast {fast[worst]} vs scikit-learn {reference[worst]} (|diff| {error[worst]:.3g})")


def tiny_texts(tiny_data):
    """Every phrase of the tiny train.tsv and test.tsv, plus the extra texts."""
    train = util.read_kaggle_train(tiny_data / "train.tsv")
    test = util.read_kaggle_test(tiny_data / "test.tsv")
    return [*train["Phrase"], *test["Phrase"], *EXTRA_TEXTS]


def kaggle_phrases(kaggle_dir, every=KAGGLE_SAMPLE):
    """Every `every`-th phrase of Kaggle's train.tsv and test.tsv, in file order (22,236 of 222,352)."""
    texts = [*util.read_kaggle_train(kaggle_dir / "train.tsv.gz")["Phrase"],
             *util.read_kaggle_test(kaggle_dir / "test.tsv.gz")["Phrase"]]
    assert len(texts) == 156_060 + 66_292
    return texts[::every]


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_fast_scorer_matches_scikit_learn_on_kaggle_phrases(kaggle_dir, kaggle_model_dir, name):
    loaded = kinds.load(kaggle_model_dir / name)
    texts = kaggle_phrases(kaggle_dir)
    assert loaded.temperature != 1.0  # the served probabilities are the calibrated ones
    assert_same_probabilities(loaded.scorer_.predict_proba(texts),
                              sklearn_probabilities(loaded.vectorizer, loaded.classifier, texts, loaded.temperature),
                              texts)


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_fast_scorer_matches_scikit_learn_on_the_tiny_data(tiny_data, model_dir, name):
    loaded = kinds.load(model_dir / name)
    texts = tiny_texts(tiny_data)
    assert_same_probabilities(loaded.scorer_.predict_proba(texts),
                              sklearn_probabilities(loaded.vectorizer, loaded.classifier, texts, loaded.temperature),
                              texts)


@pytest.fixture(scope="module")
def tiny_fine_grained(tiny_data):
    """The tiny data as the fine-grained model's training set."""
    return next(d for d in training_data.kaggle_datasets(tiny_data / "train.tsv") if d.name == "fine-grained")


@pytest.mark.parametrize("pair", recipes_to_check(), ids=recipe_id)
def test_fast_scorer_matches_scikit_learn_for_every_option_the_build_can_choose(tiny_data, tiny_fine_grained, pair):
    recipe, labels = pair
    y = tiny_fine_grained.y if labels == 5 else (tiny_fine_grained.y >= 3).astype(int)
    fitted = recipes.make_pipeline(recipe).fit(tiny_fine_grained.texts, y)
    vectorizer, classifier = recipes.parts(fitted)
    texts = tiny_texts(tiny_data)
    for temperature in (1.0, 0.47):
        scorer = text_scoring.LinearTextScorer(vectorizer, classifier, temperature=temperature)
        assert_same_probabilities(scorer.predict_proba(texts),
                                  sklearn_probabilities(vectorizer, classifier, texts, temperature), texts)
    # The batch path's own transform: scikit-learn's matrix, and each text's tokens and known tokens.
    matrix, tokens, known = scorer.transform(texts)
    expected = vectorizer.transform(texts)
    assert matrix.shape == expected.shape and abs(matrix - expected).max() <= 1e-12
    words = words_of(vectorizer)  # the drift counts are the words' whatever other features the model has
    analyze = words.build_analyzer()
    assert tokens.tolist() == [len(analyze(text)) for text in texts]
    assert known.tolist() == [sum(t in words.vocabulary_ for t in analyze(text)) for text in texts]


def count_calls(monkeypatch, owner, name):
    """Count the calls of `owner.name` (an instance's method), still running the real one."""
    real, calls = getattr(owner, name), []

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
@pytest.mark.parametrize("size, fast_path", [(1, True), (model.FAST_PATH_MAX_BATCH, True),
                                             (model.FAST_PATH_MAX_BATCH + 1, False)],
                         ids=["one", "at-the-limit", "over-the-limit"])
def test_batches_up_to_the_limit_take_the_fast_scorer_and_larger_ones_scikit_learn_with_the_same_answers(
        tiny_data, model_dir, monkeypatch, method, size, fast_path):
    loaded = kinds.load(model_dir / "fine-grained")
    texts = tiny_texts(tiny_data)[:size]
    assert len(set(texts)) == size  # every text different, so order and count both matter
    # Both paths computed on their own first: they agree, so the answers below must match either.
    fast = [loaded.scorer_.score_one(text)[0] for text in texts]
    reference = sklearn_probabilities(loaded.vectorizer, loaded.classifier, texts, loaded.temperature)
    assert_same_probabilities(fast, reference, texts)

    # predict (through score) takes the fast scorer or its batch transform, predict_proba the fast
    # scorer or scikit-learn's own transform (what predict.py uses).
    fast_calls = count_calls(monkeypatch, loaded.scorer_, "score_one")
    sklearn_calls = count_calls(monkeypatch, *((loaded.scorer_, "transform") if method == "predict"
                                               else (loaded, "predict_proba_sklearn")))
    result = getattr(loaded, method)(texts)

    # Which path ran: one fast-scorer call per text, or one batch call for the whole batch.
    assert (len(fast_calls), len(sklearn_calls)) == ((size, 0) if fast_path else (0, 1))
    if method == "predict_proba":
        assert_same_probabilities(result, reference, texts)
    else:
        assert [answer["prediction"] for answer in result] == [loaded.labels[i] for i in reference.argmax(axis=1)]
        shown = np.array([list(answer["probabilities"].values()) for answer in result])
        assert np.abs(shown - reference).max() <= 0.0005 + TOLERANCE  # rounded to 3 places, nothing more


def set_after_fit(name, value):
    """A change made to a fitted vectorizer that transform() would ignore or apply differently."""
    def change(vectorizer, classifier):
        setattr(words_of(vectorizer), name, value)
        return vectorizer, classifier
    return change


def flip_after_fit(name):
    """A boolean option of a fitted vectorizer turned the other way, whatever the build chose."""
    def change(vectorizer, classifier):
        words = words_of(vectorizer)
        setattr(words, name, not getattr(words, name))
        return vectorizer, classifier
    return change


def refit(*, vectorizer=None, classifier=None):
    """Fitted again on four texts with another vectorizer or classifier."""
    def change(old_vectorizer, old_classifier):
        texts = ["good film", "bad film", "good good", "bad plot"]
        new_vectorizer = (vectorizer or old_vectorizer).fit(texts)
        new_classifier = (classifier or MultinomialNB()).fit(new_vectorizer.transform(texts), [1, 0, 1, 0])
        return new_vectorizer, new_classifier
    return change


def unfitted(vectorizer, classifier):
    """A vectorizer that was never fitted."""
    return TfidfVectorizer(), classifier


@pytest.mark.parametrize("change, message", [
    (refit(vectorizer=TfidfVectorizer(dtype=np.float32)), "dtype=float32, only float64"),
    (refit(classifier=ComplementNB()), "classifier is ComplementNB, not MultinomialNB or LogisticRegression"),
    (refit(classifier=BernoulliNB()), "classifier is BernoulliNB, not MultinomialNB or LogisticRegression"),
    (refit(vectorizer=CountVectorizer()), "vectorizer is CountVectorizer, not TfidfVectorizer or FeatureUnion"),
    (refit(vectorizer=TfidfVectorizer(analyzer="char_wb")), "the first features are 'char_wb', not words"),
    (set_after_fit("norm", "max"), "norm='max', only 'l1', 'l2' or None"),
    (flip_after_fit("sublinear_tf"), "was changed after fitting"),
    (set_after_fit("input", "filename"), "input='filename', only 'content'"),
    (unfitted, "not fitted"),
    (lambda v, c: (refit()(v, c)[0], c), "features, vectorizer"),
], ids=["float32", "ComplementNB", "BernoulliNB", "CountVectorizer", "chars-first", "norm-max", "changed-after-fit",
        "input", "unfitted", "mismatched-sizes"])
def test_a_model_the_fast_scorer_cannot_match_is_refused_when_made_with_the_reason(model_dir, change, message):
    folder = (model_dir / "binary").resolve()
    vectorizer, classifier = change(*(pickle.loads((folder / name).read_bytes())
                                      for name in (artifacts.VECTORIZER_FILE, artifacts.CLASSIFIER_FILE)))
    manifest = util.read_json(folder / artifacts.MANIFEST_FILE)
    with pytest.raises(kinds.ModelError, match="unsupported model for the fast scorer") as refused:
        model.TextClassifier(vectorizer=vectorizer, classifier=classifier, manifest=manifest, metrics={})
    assert message in str(refused.value)


# --- Calibration and explanations ----------------------------------------------------------------

def test_a_model_whose_manifest_has_no_temperature_serves_the_classifiers_own_probabilities(models):
    folder = (models / "binary").resolve()
    manifest = util.read_json(folder / artifacts.MANIFEST_FILE)
    assert manifest["hyperparameters"]["temperature"] != 1.0
    del manifest["hyperparameters"]["temperature"]
    (folder / artifacts.MANIFEST_FILE).write_text(json.dumps(manifest))
    loaded = kinds.load(folder)
    texts = ["a superb film", "dull and tedious", "the"]
    assert loaded.temperature == 1.0
    assert_same_probabilities(loaded.predict_proba(texts),
                              loaded.classifier.predict_proba(loaded.vectorizer.transform(texts)), texts)


def assert_explained(loaded, texts):
    """prior + the terms' contributions equal the log-odds of the served probabilities, for every text."""
    worst = 0.0
    served = loaded.predict_proba(texts)
    for text, reference in zip(texts, served.tolist()):
        probabilities, explained = loaded.scorer_.explain_one(text)
        assert max(abs(p - r) for p, r in zip(probabilities, reference)) <= TOLERANCE  # the served ones
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        against = explained["against_index"]
        assert sorted(probabilities, reverse=True)[1] == probabilities[against]  # the runner-up
        total = (explained["prior"] + sum(term["contribution"] for term in explained["terms"])
                 + explained["unknown_contribution"])
        worst = max(worst, abs(total - explained["log_odds"]))
        if probabilities[against] > 1e-300:  # the log-odds is that of the served probabilities
            assert abs(explained["log_odds"] - np.log(probabilities[best] / probabilities[against])) < 1e-6
    assert worst <= TOLERANCE, worst


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_an_explanation_adds_up_to_the_log_odds_on_kaggle_phrases(kaggle_dir, kaggle_model_dir, name):
    assert_explained(kinds.load(kaggle_model_dir / name), kaggle_phrases(kaggle_dir))


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_an_explanation_adds_up_to_the_log_odds_on_the_tiny_data(tiny_data, model_dir, name):
    assert_explained(kinds.load(model_dir / name), tiny_texts(tiny_data))


def test_an_explanation_lists_known_terms_by_strength_with_counts_and_unknown_words_once(model_dir):
    loaded = kinds.load(model_dir / "binary")
    (answer,) = loaded.predict(["Superb superb film, zzzqx and qqqz zzzqx"], explain=True)
    explanation = answer["explanation"]
    assert explanation["against"] == "Negative" and answer["prediction"] == "Positive"
    terms = {t["term"]: t for t in explanation["terms"]}
    assert terms["superb"]["count"] == 2 and terms["film"]["count"] == 1
    strengths = [abs(t["contribution"]) for t in explanation["terms"]]
    assert strengths == sorted(strengths, reverse=True)
    assert explanation["unknown"] == ["zzzqx", "qqqz"]
    # The weights are the text's own normalised tf-idf row of words.
    words = words_of(loaded.vectorizer)
    row = words.transform(["Superb superb film, zzzqx and qqqz zzzqx"])
    for term, entry in terms.items():
        assert entry["weight"] == pytest.approx(row[0, words.vocabulary_[term]], abs=1e-12)
    # The unknown words' characters still speak; their part of the log-odds is given apart.
    assert explanation["unknown_contribution"] != 0.0


def test_without_explain_an_answer_has_no_explanation(model_dir):
    (answer,) = kinds.load(model_dir / "binary").predict(["a superb film"])
    assert set(answer) == {"prediction", "confidence", "probabilities"}


def test_top_terms_are_the_words_each_label_favours_most(model_dir):
    loaded = kinds.load(model_dir / "fine-grained")
    assert set(loaded.top_terms) == set(loaded.labels)
    assert all(len(terms) == model.TOP_TERMS for terms in loaded.top_terms.values())
    # The tiny data's words by label (tests/support.py): each label's own words lead its list.
    assert set(loaded.top_terms["Positive"][:3]) <= set(WORDS[4])
    assert set(loaded.top_terms["Negative"][:3]) <= set(WORDS[0])
    assert loaded.info()["top_terms"] == loaded.top_terms


@pytest.mark.parametrize("size", [1, model.FAST_PATH_MAX_BATCH + 1], ids=["fast", "batch"])
@pytest.mark.parametrize("explain", [False, True])
def test_score_gives_the_answers_of_predict_and_each_texts_tokens_and_known_tokens(tiny_data, model_dir, size,
                                                                                   explain):
    loaded = kinds.load(model_dir / "binary")
    texts = [*tiny_texts(tiny_data), "zzqx unknownword", ""][-size:]
    scored = loaded.score(texts, explain=explain)
    assert scored.answers == loaded.predict(texts, explain=explain)
    words = words_of(loaded.vectorizer)
    analyze = words.build_analyzer()
    assert scored.tokens == [len(analyze(text)) for text in texts]
    assert scored.known == [sum(t in words.vocabulary_ for t in analyze(text)) for text in texts]
    assert scored.known[-1:] == [0]


def test_feedback_is_checked_against_the_models_labels_and_an_answer_is_wrong_or_right(model_dir):
    loaded = kinds.load(model_dir / "fine-grained")
    assert [loaded.check_target(label) for label in loaded.labels] == loaded.labels
    assert loaded.check_target("Positive ") is None and loaded.check_target("positive") is None
    assert loaded.error_of("Neutral", "Neutral") == 0.0 and loaded.error_of("Neutral", "Negative") == 1.0
