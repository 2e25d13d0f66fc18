"""The drift report (monitor.py) on prediction logs filled through the app: in-domain text, shifted text,
and feedback that disagrees; and its refusals."""
import re

import pytest

import monitor
from app import create_app
from serving import drift, lifecycle
from support import non_review_text


def in_domain_text(tiny_data):
    """The tiny data set's phrases: the kind of text the tiny models learned from."""
    import util

    return [p for p in util.read_kaggle_train(tiny_data / "train.tsv")["Phrase"] if p.strip()]


def fill(model_dir, url, texts, *, disagree=0):
    """Score `texts` through the app with its prediction log at `url` (flushed); send back the opposite label
    for the first `disagree` answers."""
    application = create_app({"MODEL_DIR": str(model_dir), "PREDICTION_LOG": url})
    lifecycle.start_services(application)
    client = application.test_client()
    answers = []
    for start in range(0, len(texts), 100):
        with client.post("/", json={"queries": texts[start:start + 100]}) as answer:
            answers += answer.get_json()["predictions"]
    opposite = {"Negative": "Positive", "Positive": "Negative"}
    if disagree:
        with client.post("/feedback", json={"feedback": [{"id": a["id"], "label": opposite[a["prediction"]]}
                                                          for a in answers[:disagree]]}) as sent:
            assert sent.status_code == 202, sent.get_json()
    lifecycle.stop_services(application, 10)


def run(capsys, *args):
    """monitor.main's exit status and what it printed."""
    status = monitor.main(list(args))
    return status, capsys.readouterr()


def test_in_domain_text_is_no_drift(model_dir, tiny_data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    fill(model_dir, url, in_domain_text(tiny_data))
    status, said = run(capsys, "--since", "1h", "--model", "binary", "--log", url, "--model-dir", str(model_dir))
    assert status == 0, said.out
    assert "DRIFT" not in said.out and "no drift found" in said.out
    reference, now = re.search(r"^known-token share\s+([\d.]+)\s+([\d.]+)\s", said.out, re.M).groups()
    # No drop beyond the report's margin. (These texts are the training side's own, which share more word
    # pairs with the model than the held-out reference does, so their share may stand above it.)
    assert float(now) > float(reference) - drift.KNOWN_SHARE_DROP
    assert re.search(r"^accuracy from feedback \(0 labels\)\s+1\.000\s+-\s+-\s+ok", said.out, re.M)


def test_shifted_text_and_disagreeing_feedback_are_drift_with_a_report(model_dir, tiny_data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    texts = non_review_text()
    assert len(texts) >= 200
    fill(model_dir, url, texts, disagree=60)
    report = tmp_path / "out" / "drift.html"
    status, said = run(capsys, "--since", "30m", "--model", "binary", "--log", url, "--model-dir", str(model_dir),
                       "--report", str(report))
    assert status == 1, said.out
    lines = {line.split("  ")[0]: line for line in said.out.splitlines()}
    assert "DRIFT (over 0.10 below)" in lines["known-token share"]
    assert "DRIFT (over 0.10 below)" in lines["accuracy from feedback (60 labels)"]
    assert "drift found" in said.out
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 4 and "DRIFT" in page


def test_a_window_with_too_few_texts_gives_no_verdict(model_dir, tiny_data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    fill(model_dir, url, in_domain_text(tiny_data)[:50])
    status, said = run(capsys, "--log", url, "--model-dir", str(model_dir))
    assert status == 0 and "fewer than 200 texts, so no verdict" in said.out


@pytest.mark.parametrize("args, says", [
    (["--since", "yesterday"], "is not a window"),
    (["--log", "off"], "there is no log to read"),
    (["--model-dir", "/no/such/folder"], "no model is built in /no/such/folder"),
    (["--log", "postgresql://nobody:secret@127.0.0.1:1/none"], "cannot read the prediction log"),
])
def test_bad_arguments_exit_2_with_one_line(model_dir, args, says, capsys):
    if args[0] == "--since":
        with pytest.raises(SystemExit) as exited:
            monitor.main(args)
        assert exited.value.code == 2 and says in capsys.readouterr().err
        return
    status, said = run(capsys, *(["--model-dir", str(model_dir)] if args[0] != "--model-dir" else []), *args)
    assert status == 2 and says in said.err and said.err.count("\n") == 1 and "secret" not in said.err


# --- A model of named inputs (/ratings) ------------------------------------------------------------

def fill_films(model_dir, url, instances, *, truth=None):
    """POST `instances` to /ratings through the app, recording to `url`; send back `truth(answer)` for each
    answer when given."""
    application = create_app({"MODEL_DIR": str(model_dir), "PREDICTION_LOG": url})
    lifecycle.start_services(application)
    client = application.test_client()
    answers = []
    for start in range(0, len(instances), 100):
        with client.post("/ratings", json={"instances": instances[start:start + 100]}) as answer:
            assert answer.status_code == 200, answer.get_json()
            answers += answer.get_json()["predictions"]
    if truth:
        with client.post("/feedback", json={"feedback": [{"id": a["id"], "value": truth(a)} for a in answers]}) as sent:
            assert sent.status_code == 202, sent.get_json()
    lifecycle.stop_services(application, 10)


def tiny_films(tiny_data):
    """The tiny movies.json's films as /ratings instances: the kind of films the tiny model learned from."""
    from training import movies

    frame = movies.read_movies(tiny_data / "movies.json").frame
    names = ["genre", "budget", "director", "distributor", "mpaa_rating", "running_time", "release_year",
             "source", "creative_type"]
    return [{k: v for k, v in zip(names, row) if v == v and v is not None}
            for row in frame[names].itertuples(index=False)]


def test_films_like_the_training_ones_are_no_drift_for_the_ratings_model(model_dir, tiny_data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    fill_films(model_dir, url, tiny_films(tiny_data))
    status, said = run(capsys, "--since", "1h", "--model", "ratings", "--log", url, "--model-dir", str(model_dir))
    assert status == 0, said.out
    assert re.search(r"^ratings \(served version .*\): 396 rows in the last 1h", said.out, re.M)
    assert re.search(r"^unseen: director\s", said.out, re.M) and "DRIFT" not in said.out


def test_new_directors_a_missing_input_and_far_off_values_are_drift_for_the_ratings_model(
        model_dir, tiny_data, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    films = [{**film, "director": f"Newcomer {i}"} for i, film in enumerate(tiny_films(tiny_data))]
    for film in films:
        film.pop("mpaa_rating", None)
    fill_films(model_dir, url, films, truth=lambda answer: 10.0 if answer["prediction"] < 5.5 else 1.0)
    status, said = run(capsys, "--since", "1h", "--model", "ratings", "--log", url, "--model-dir", str(model_dir))
    assert status == 1, said.out
    lines = {line.split("  ")[0]: line for line in said.out.splitlines()}
    assert "DRIFT (over 0.10 above)" in lines["unseen: director"]
    assert "DRIFT (over 0.20 away)" in lines["missing: mpaa_rating"]
    assert "DRIFT (over 1.25 times)" in lines["MAE from feedback (396 values)"]
    assert "ok" in lines["unseen: budget"]
