"""The tabular regressor: the ratings model loaded from plain numbers, scored exactly as scikit-learn's
pipeline, its inputs checked one by one."""
import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kinds
from kinds.tabular import REGRESSOR_FILE, TabularRegressor
from serving.config import Settings
from serving.errors import BadQuery, TooLarge
from store import artifacts
from training import movies, ratings

SETTINGS = Settings.from_mapping({})


@pytest.fixture(scope="module")
def regressor(model_dir):
    return kinds.load(model_dir / "ratings")


def rows_of(frame):
    """A frame's films as the checked inputs the kind scores: None for a missing value."""
    table = ratings.features(frame)
    return [{name: (None if value == ratings.MISSING or (isinstance(value, float) and math.isnan(value)) else value)
             for name, value in record.items()} for record in table.to_dict("records")]


def test_the_served_sum_is_scikit_learns_prediction(regressor, tiny_data):
    films = movies.read_movies(tiny_data / "movies.json")
    fitted = ratings.make_pipeline().fit(ratings.features(films.frame), films.frame["rating"].to_numpy())
    ours = np.array([regressor.predict_value(row) for row in rows_of(films.frame)])
    assert np.abs(ours - fitted.predict(ratings.features(films.frame))).max() < 1e-9


def test_a_get_reads_typed_values_and_refuses_what_is_wrong(regressor):
    def get(query):
        return regressor.inputs_from_get(query_string=query.encode(), mimetype="", body=b"", settings=SETTINGS)
    (row,), explain = get("genre=Drama&budget=1e6&release_year=2001&director=+Someone+")
    assert row["genre"] == "Drama" and row["budget"] == 1e6 and row["release_year"] == 2001.0
    assert row["director"] == "Someone" and row["mpaa_rating"] is None and explain is False
    for query, message in [
            ("budget=5e6", "genre is missing; it is required"),
            ("genre=Drama", "budget is missing"),
            ("genre=Dramaa&budget=5e6", "send one of: "),
            ("genre=Drama&budget=0", "finite positive number"),
            ("genre=Drama&budget=nan", "finite positive number"),
            ("genre=Drama&budget=1_000", "must be a number"),
            ("genre=Drama&budget=lots", "must be a number"),
            ("genre=Drama&budget=5e6&release_year=1800", "must be a whole year"),
            ("genre=Drama&budget=5e6&release_year=2001.5", "must be a whole year"),
            ("genre=Drama&budget=5e6&title=x", "title is not an input of the ratings model"),
            ("genre=Drama&budget=5e6&director=", "director is empty"),
            ("genre=Drama&genre=Comedy&budget=5e6", "genre was sent 2 times")]:
        with pytest.raises(BadQuery, match=message):
            get(query)


def test_a_post_names_the_bad_instance_and_field(regressor):
    def post(body):
        return regressor.inputs_from_post(body=json.dumps(body).encode(), settings=SETTINGS)
    inputs, _ = post({"instances": [{"genre": "Drama", "budget": 5e6}, {"genre": "Comedy", "budget": 7.5e7}]})
    assert [row["budget"] for row in inputs] == [5e6, 7.5e7]
    for body, message in [({"instances": [{"genre": "Drama", "budget": 5e6}, {"genre": "Drama", "budget": True}]},
                           r"instances\[1\]\.budget must be a number"),
                          ({"instances": [{"genre": "Drama", "budget": "5e6"}, 3]},
                           r"instances\[1\] must be an object"),
                          ({"instances": [{"genre": 3, "budget": 5e6}]}, r"instances\[0\]\.genre must be a string"),
                          ({"instances": []}, "instances is empty"), ({"rows": []}, "POST takes a JSON object"),
                          ({"instances": [], "extra": 1}, "Unknown field 'extra'")]:
        with pytest.raises(BadQuery, match=message):
            post(body)
    with pytest.raises(TooLarge):
        post({"instances": [{"genre": "Drama", "budget": 5e6}] * (SETTINGS.MAX_BATCH_SIZE + 1)})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["genre", "budget", "director", "release_year", "running_time", "other"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                                 st.lists(st.integers(), max_size=2)), max_size=6))
def test_any_instance_is_scored_or_refused_with_a_named_error(model_dir, instance):
    regressor = kinds.load(model_dir / "ratings")
    try:
        inputs, _ = regressor.inputs_from_post(body=json.dumps({"instances": [instance]}).encode(), settings=SETTINGS)
    except BadQuery as exc:
        assert exc.description.startswith("instances[0]")
        return
    (answer,) = regressor.score(inputs).answers
    assert math.isfinite(answer["prediction"])


def test_a_json_integer_too_large_for_a_float_is_refused_not_a_crash(regressor):
    huge = 10 ** 400  # JSON has no limit on an integer's digits; Python's float has one
    for field in ("budget", "running_time", "release_year"):
        instance = {"genre": "Drama", "budget": 5e6, field: huge}
        with pytest.raises(BadQuery, match=rf"instances\[0\]\.{field} must be a finite positive number"):
            regressor.inputs_from_post(body=json.dumps({"instances": [instance]}).encode(), settings=SETTINGS)
        assert regressor.columns_of([instance]) is None  # left to check_input, which refuses it
    assert regressor.check_target(huge) is None


def test_numbers_far_outside_the_training_range_are_refused_and_answers_stay_on_the_scale(regressor):
    spec = regressor.by_name["running_time"]
    highest = spec["max"] * 10  # NUMBER_MARGIN times the longest film it learned from
    for sent in (spec["min"] / 10 / 2, highest * 2, 5e-324, 1.7e308):
        with pytest.raises(BadQuery, match="running_time must be from .* the model was trained on"):
            regressor.check_input({"genre": "Drama", "budget": 5e6, "running_time": sent}, where="")
    row = regressor.check_input({"genre": "Drama", "budget": 5e6, "running_time": highest}, where="")
    assert regressor.unseen(row) == ["running_time"]
    low, high = regressor.target["min"], regressor.target["max"]
    assert low <= regressor.predict_value(row) <= high
    columns = regressor.columns_of([{"genre": "Drama", "budget": 5e6, "running_time": highest}])
    assert regressor.predict_columns(columns, 1).tolist() == [regressor.predict_value(row)]


def test_columns_score_every_film_to_the_bit_as_one_by_one(regressor, tiny_data):
    films = [{name: value for name, value in row.items() if value is not None}
             for row in rows_of(movies.read_movies(tiny_data / "movies.json").frame)]
    films += [{"genre": "Drama", "budget": 1e9, "director": "Nobody Yet"},
              {"genre": "Comedy", "budget": 2e7, "running_time": 500}]
    columns = regressor.columns_of(films)
    rows = [regressor.check_input(film, where="") for film in films]
    assert regressor.predict_columns(columns, len(films)).tolist() == [regressor.predict_value(r) for r in rows]
    assert regressor.unseen_columns(columns, len(films)) == [";".join(regressor.unseen(r)) for r in rows]
    assert regressor.unseen_columns(columns, len(films))[-2:] == ["director;budget", "running_time"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(
    st.sampled_from(["genre", "budget", "director", "release_year", "running_time", "other"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from(["Drama", "Comedy", " x", ""]),
              st.text(max_size=8), st.lists(st.integers(), max_size=2)), max_size=6), max_size=4))
def test_columns_are_taken_only_when_every_film_would_be(model_dir, documents):
    regressor = kinds.load(model_dir / "ratings")
    columns = regressor.columns_of(documents)
    if columns is None:
        return  # predict.py then checks film by film, as the API does
    rows = [regressor.check_input(document, where="") for document in documents]  # raises if one was bad
    assert regressor.predict_columns(columns, len(rows)).tolist() == [regressor.predict_value(r) for r in rows]
    assert regressor.unseen_columns(columns, len(rows)) == [";".join(regressor.unseen(r)) for r in rows]


def test_many_numbers_are_rounded_as_pythons_round_rounds_each():
    from kinds.tabular import rounded

    rng = np.random.default_rng(0)
    halves = (rng.integers(-10 ** 7, 10 ** 7, 20_000) + 0.5) / 100  # each near a halfway point, one side or other
    values = np.concatenate([rng.uniform(0, 10, 20_000), rng.uniform(-1e6, 1e6, 20_000), halves,
                             np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf), [2.675, 0.005, 1e8, 3e15]])
    assert rounded(values) == [round(value, 2) for value in values.tolist()]


def test_unseen_names_and_numbers_outside_the_training_range_are_said(regressor):
    known = sorted(regressor.categories[[n for n, _ in regressor.categories].index("director")][1])[-1]
    row = dict.fromkeys((spec["name"] for spec in regressor.inputs), None)
    assert regressor.unseen({**row, "genre": "Drama", "budget": 1e6, "director": known}) == []
    assert regressor.unseen({**row, "genre": "Drama", "budget": 1e9, "director": "Nobody Yet"}) == \
        ["director", "budget"]


def test_feedback_is_a_number_on_the_target_scale(regressor):
    assert regressor.check_target(7.2) == 7.2 and regressor.check_target(10) == 10.0
    assert all(regressor.check_target(v) is None for v in (0.5, 11, True, "7", float("nan"), None))
    assert regressor.error_of(6.5, 7.25) == 0.75


@pytest.mark.parametrize("damage", [
    lambda w: w.update(intercept="x"), lambda w: w.update(format=9),
    lambda w: w["categories"]["genre"].update(Drama=float("inf")),
    lambda w: w["numbers"]["budget"].update(scale=0), lambda w: w["categories"].pop("genre"),
    lambda w: w["numbers"]["running_time"].update(fill=None)])
def test_weights_that_are_not_a_model_are_refused_naming_the_file(model_dir, tmp_path, damage):
    folder = shutil.copytree((model_dir / "ratings").resolve(), tmp_path / "ratings")
    weights = json.loads((folder / REGRESSOR_FILE).read_text())
    damage(weights)
    (folder / REGRESSOR_FILE).write_text(json.dumps(weights))
    manifest = json.loads((folder / artifacts.MANIFEST_FILE).read_text())
    manifest["artifacts"][REGRESSOR_FILE] = __import__("util").sha256_file(folder / REGRESSOR_FILE)
    (folder / artifacts.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(artifacts.ModelError, match=REGRESSOR_FILE):
        TabularRegressor.load(folder)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["genre", "budget", "director", "release_year", "running_time",
                                        "mpaa_rating", "query"]),
                       st.one_of(st.text(max_size=12), st.sampled_from(["Drama", "1e6", "2001", "-1", "nan", "R"])),
                       max_size=6))
def test_any_query_string_is_scored_or_refused_with_a_named_error(model_dir, query):
    from urllib.parse import urlencode

    regressor = kinds.load(model_dir / "ratings")
    try:
        (row,), _ = regressor.inputs_from_get(query_string=urlencode(query).encode(), mimetype="", body=b"",
                                              settings=SETTINGS)
    except BadQuery as exc:
        assert any(name in exc.description for name in (*query, "genre", "budget")), exc.description
        return
    assert row["genre"] in regressor.by_name["genre"]["values"] and row["budget"] > 0
    assert math.isfinite(regressor.score([row]).answers[0]["prediction"])
