"""The ratings model built from vega-datasets' real movies.json: honest figures, a gate by MAE, and the
served arithmetic equal to scikit-learn's."""
import math

import numpy as np

import kinds
import util
from support import build_models
from training import movies, ratings
from training.build import main as build_main


def test_on_the_real_films_the_model_beats_the_mean_on_a_random_and_a_time_split(movies_file, tmp_path):
    assert build_main(["--only", "ratings", "--movies", str(movies_file), "--out", str(tmp_path)]) == 0
    metrics = util.read_json(tmp_path / "ratings" / "metrics.json")
    assert metrics["mae"] <= 0.87 and metrics["mae"] <= 0.9 * metrics["baseline"]["mae"]
    assert {"mae", "rmse", "r2"} <= set(metrics) and metrics["r2"] > 0
    assert metrics["time_split"]["mae"] < metrics["time_split"]["baseline"]["mae"]
    manifest = util.read_json(tmp_path / "ratings" / "manifest.json")
    assert manifest["kind"] == "tabular-regressor" and manifest["labels"] is None
    assert [spec["name"] for spec in manifest["inputs"]] == ["genre", "budget", "director", "distributor",
                                                               "mpaa_rating", "running_time", "release_year",
                                                               "source", "creative_type"]
    assert {spec["name"] for spec in manifest["inputs"] if spec["required"]} == {"genre", "budget"}
    films = movies.read_movies(movies_file)
    served = kinds.load(tmp_path / "ratings")
    table = ratings.features(films.frame)
    fitted = ratings.make_pipeline().fit(table, films.frame["rating"].to_numpy())
    rows = [{k: None if v == ratings.MISSING or (isinstance(v, float) and math.isnan(v)) else v
             for k, v in record.items()} for record in table.to_dict("records")]
    assert np.abs(np.array([served.predict_value(r) for r in rows]) - fitted.predict(table)).max() < 1e-9


def test_a_worse_ratings_build_is_held_back_by_the_gate(tiny_data, tmp_path):
    build_models(tiny_data / "train.tsv", tmp_path, movies=tiny_data / "movies.json", args=["--only", "ratings"])
    live = util.read_json(tmp_path / "ratings" / "metrics.json")["mae"]
    noisy = tmp_path / "noisy.json"
    films = util.read_json(tiny_data / "movies.json")
    rng = np.random.default_rng(0)
    for film in films:
        if film["IMDB Rating"] is not None:
            film["IMDB Rating"] = float(np.round(rng.uniform(1, 10), 1))
    noisy.write_text(__import__("json").dumps(films))
    assert build_main(["--only", "ratings", "--movies", str(noisy), "--out", str(tmp_path)]) == 3
    assert util.read_json(tmp_path / "ratings" / "metrics.json")["mae"] == live  # the live one still serves


def test_the_true_ratings_sent_back_join_the_next_build_a_fifth_held_out(model_dir, tiny_data, tmp_path):
    import shutil

    from app import create_app
    from serving import lifecycle

    models = tmp_path / "models"
    shutil.copytree(model_dir, models, symlinks=True)
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    application = create_app({"MODEL_DIR": str(models), "PREDICTION_LOG": url})
    lifecycle.start_services(application)
    client = application.test_client()
    films = [{"genre": genre, "budget": 10 ** (5 + i % 30 / 10), "director": f"Director {i % 30}"}
             for i, genre in enumerate(["Drama", "Comedy", "Horror"] * 40)]
    with client.post("/ratings", json={"instances": films}) as answered:
        answers = answered.get_json()["predictions"]
    with client.post("/feedback", json={"feedback": [{"id": a["id"], "value": 9.0} for a in answers]}) as sent:
        assert sent.status_code == 202
    lifecycle.stop_services(application, 10)
    # One logged film the service could never have taken (a log edited by hand): left out, not fitted.
    import sqlite3

    with sqlite3.connect(tmp_path / "log.sqlite3") as connection:
        connection.execute("""UPDATE predictions SET inputs = replace(inputs, '"running_time":null',
                              '"running_time":-5.0') WHERE id = ?""", (answers[0]["id"],))
    assert build_main(["--only", "ratings", "--movies", str(tiny_data / "movies.json"), "--out", str(models),
                       "--feedback", url, "--promote"]) == 0
    manifest = util.read_json(models / "ratings" / "manifest.json")
    feedback = manifest["training_data"]["feedback"]
    assert feedback["rows"] == 119 and feedback["held_out"] + feedback["trained_on"] == 119
    assert 0 < feedback["held_out"] < 60
    metrics = util.read_json(models / "ratings" / "metrics.json")
    assert metrics["feedback"]["rows"] == feedback["held_out"]
    # The users said 9: the new build, trained on four fifths of it, is nearer than the live one was.
    assert metrics["feedback"]["mae"] < metrics["feedback"]["live_model"]["mae"]
    assert manifest["training_data"]["rows_used"] == 396 + feedback["trained_on"]
