"""`release.py add`: a pipeline trained elsewhere, read without running it, checked against its data,
evaluated by the model as served, gated, and published as a version (training/adopt.py)."""
import json

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.metrics import mean_absolute_error
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

import kinds
import release
from serving.config import ConfigError
from serving.errors import BadQuery
from store import artifacts, releases
from tests.support import house_pipeline, plant_pipeline, save_estimator
from training import adopt
from training.gate import GATE_HELD_BACK
from util import DataError


@pytest.fixture(scope="module")
def houses():
    return house_pipeline()


@pytest.fixture
def handed(houses, tmp_path):
    """The model file and its data, as a data scientist hands them over."""
    fitted, held_out = houses
    held_out.to_csv(tmp_path / "houses.csv", index=False)
    return save_estimator(fitted, tmp_path / "houses.skops"), tmp_path / "houses.csv"


@pytest.mark.parametrize("saved_as", ["houses.skops", "houses.joblib", "houses.pkl"])
def test_an_added_pipeline_answers_as_it_does_in_the_notebook(houses, tmp_path, saved_as):
    fitted, held_out = houses
    held_out.to_csv(tmp_path / "houses.csv", index=False)
    path = save_estimator(fitted, tmp_path / saved_as)
    folder, metrics, live = adopt.add("houses", path, tmp_path / "houses.csv", model_dir=tmp_path / "models")
    assert live and (tmp_path / "models" / "houses").resolve() == folder.resolve()
    served = kinds.load(tmp_path / "models" / "houses")
    inputs = held_out.drop(columns="price")
    rows = [served.check_input({k: v for k, v in row.items() if v == v}, where="") for row in inputs.to_dict("records")]
    ours = np.array([served.predict_value(row) for row in rows])
    theirs = fitted.predict(inputs)
    assert np.abs(ours - theirs).max() < 1e-9
    assert held_out["age"].isna().any()  # a value not given is filled as the pipeline's imputer fills it
    assert metrics["mae"] == pytest.approx(mean_absolute_error(held_out["price"], theirs), abs=1e-9)
    assert metrics["mae"] < metrics["baseline"]["mae"] / 2
    assert served.route == "/houses" and served.KIND == "tabular-regressor"
    specs = {spec["name"]: spec for spec in served.inputs}
    assert specs["area"] == {"name": "area", "type": "category", "required": True,
                             "values": ["east", "north", "south", "west"]}
    assert specs["age"]["required"] is False and specs["rooms"]["required"] is False
    distance = held_out["distance"]
    assert (specs["distance"]["min"], specs["distance"]["max"]) == (distance.min(), distance.max())
    assert specs["distance"]["bounds"][0] < distance.min() < 0  # a negative number is a number like any other
    manifest = artifacts.read_manifest(folder)
    assert manifest["hyperparameters"]["model"] == "Ridge" and manifest["target"]["name"] == "price"
    assert manifest["training_data"]["rows_used"] == len(held_out)
    assert set(metrics["reference"]["input_missing_shares"]) == {"area", "rooms", "age", "distance"}


def test_a_number_beyond_its_bounds_and_an_unknown_area_are_refused_naming_them(handed, tmp_path):
    adopt.add("houses", *handed, model_dir=tmp_path / "models")
    served = kinds.load(tmp_path / "models" / "houses")
    low, high = next(spec for spec in served.inputs if spec["name"] == "rooms")["bounds"]
    with pytest.raises(BadQuery, match="rooms must be a number from"):
        served.check_input({"area": "north", "rooms": high * 2}, where="")
    assert served.check_input({"area": "north", "rooms": low}, where="")["rooms"] == low
    with pytest.raises(BadQuery, match="area 'downtown' is not one the model knows; send one of: east"):
        served.check_input({"area": "downtown"}, where="")
    with pytest.raises(BadQuery, match="area is missing; it is required"):
        served.check_input({"rooms": 3}, where="")


@pytest.mark.parametrize("change, target, says", [
    (lambda f: f.drop(columns="rooms"), None, "the model's inputs rooms are not columns of it"),
    (lambda f: f.assign(note="x"), None, "besides the model's inputs it holds price, note; name the true value's"),
    (lambda f: f.assign(note="x"), "price", "note are neither inputs of the model nor the target price"),
    (lambda f: f, "rooms", "--target rooms: an input of the model"),
    (lambda f: f, "cost", "--target cost: not a column of"),
    (lambda f: f.assign(price=f["price"].astype(object).where(f.index != 3, "cheap")), None,
     "row 5 (line of the file): price must be a finite number"),
    (lambda f: f.assign(area=f["area"].where(f.index != 0, "downtown")), None,
     "line 2: area 'downtown' is not one the model knows"),
    (lambda f: f.iloc[:0], None, "a header but no rows"),
])
def test_the_data_is_checked_against_the_models_inputs_in_one_line(houses, handed, tmp_path, change, target, says):
    path, data = handed
    change(houses[1]).to_csv(data, index=False)
    with pytest.raises(DataError, match=says.replace("(", r"\(").replace(")", r"\)")):
        adopt.add("houses", path, data, model_dir=tmp_path / "models", target=target)
    assert not (tmp_path / "models" / "houses").exists()


@pytest.mark.parametrize("name, route, says", [
    ("Houses!", None, "cannot name a model"),
    ("houses", "/health", "cannot be a model's route"),
    ("houses", "/v2/houses", "cannot be a model's route"),
    ("houses", "/ratings", "is the ratings model's route"),
    ("models", None, "cannot be a model's route"),
    ("ratings", None, "ratings is a model build_model.py builds; give the added model another name"),
])
def test_a_name_or_route_the_service_cannot_take_is_refused(handed, tmp_path, name, route, says):
    with pytest.raises(ConfigError, match=says):
        adopt.add(name, *handed, model_dir=tmp_path / "models", route=route)


def test_a_second_add_is_a_new_version_and_a_worse_one_waits_as_a_candidate(handed, houses, tmp_path):
    path, data = handed
    models = tmp_path / "models"
    first, _, _ = adopt.add("houses", path, data, model_dir=models)
    second, _, live = adopt.add("houses", path, data, model_dir=models)
    assert live and second != first and len(releases.version_folders(models, "houses")) == 2
    worse = save_estimator(house_pipeline(alpha=1e5)[0], tmp_path / "worse.skops")
    third, metrics, live = adopt.add("houses", worse, data, model_dir=models)
    gate = artifacts.read_manifest(third)["release"]["gate"]
    assert not live and not gate["passed"] and "given_data mae" in gate["why"]
    assert (models / "houses").resolve() == second.resolve()
    assert gate["checks"]["given_data"]["mae"]["new"] == metrics["mae"]
    _, _, live = adopt.add("houses", worse, data, model_dir=models, promote=True)
    assert live


def test_a_route_taken_by_another_added_model_is_refused(handed, tmp_path):
    adopt.add("houses", *handed, model_dir=tmp_path / "models", route="/prices")
    with pytest.raises(ConfigError, match="/prices is the houses model's route"):
        adopt.add("flats", *handed, model_dir=tmp_path / "models", route="/prices")


def test_what_is_not_served_is_refused_naming_it(houses, handed, tmp_path):
    fitted, held_out = houses
    _, data = handed
    fitted_plants, plants = plant_pipeline()
    numbers = ["height"]
    bayes = Pipeline([("prepare", ColumnTransformer([("n", MinMaxScaler(), numbers)])), ("model", MultinomialNB())])
    bayes.fit(plants[numbers], plants["species"])
    with pytest.raises(artifacts.ModelError, match=r"a tabular classifier \(MultinomialNB\); `release.py add` "
                                                   "serves tabular pipelines: a ColumnTransformer, then one of "
                                                   "DecisionTreeClassifier"):
        adopt.add("houses", save_estimator(bayes, tmp_path / "bayes.skops"), data, model_dir=tmp_path / "models")
    hand_made = Pipeline([("log", FunctionTransformer(np.log1p)), ("model", fitted.steps[-1][1])])
    with pytest.raises(artifacts.ModelError, match="FunctionTransformer"):
        adopt.add("houses", save_estimator(hand_made, tmp_path / "f.pkl"), data, model_dir=tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_release_add_says_where_the_model_is_served_or_why_not(handed, houses, tmp_path, capsys):
    path, data = handed
    models = tmp_path / "models"
    assert release.main(["--model-dir", str(models), "add", "houses", str(path), "--data", str(data)]) == 0
    said = capsys.readouterr()
    assert "is live at /houses" in said.out and "MAE" in said.out + said.err
    worse = save_estimator(house_pipeline(alpha=1e5)[0], tmp_path / "worse.skops")
    assert release.main(["--model-dir", str(models), "add", "houses", str(worse), "--data", str(data)]) == \
        GATE_HELD_BACK
    assert "is a candidate, not live: worse than the live model" in capsys.readouterr().out
    assert release.main(["--model-dir", str(models), "add", "houses", str(tmp_path / "none.skops"),
                         "--data", str(data)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and "none.skops" in error
    assert release.main(["--model-dir", str(models), "list", "houses"]) == 0
    listing = capsys.readouterr().out
    assert "MAE" in listing and "houses.csv" in listing and "candidate" in listing
    history = [json.loads(line) for line in (models / ".versions" / "releases.jsonl").read_text().splitlines()]
    assert [entry["action"] for entry in history] == ["publish", "candidate"]


def test_an_added_classifier_is_gated_on_accuracy_and_its_labels_checked(tmp_path):
    from sklearn.metrics import accuracy_score

    fitted, held_out = plant_pipeline()
    held_out.to_csv(tmp_path / "plants.csv", index=False)
    models = tmp_path / "models"
    folder, metrics, live = adopt.add("plants", save_estimator(fitted, tmp_path / "p.skops"), tmp_path / "plants.csv",
                                      model_dir=models)
    inputs = held_out.drop(columns="species")
    assert live and metrics["accuracy"] == pytest.approx(accuracy_score(held_out["species"], fitted.predict(inputs)))
    assert metrics["baseline"]["method"].startswith("always the data's most common label")
    assert set(metrics["reference"]["label_shares"]) == {"fern", "moss", "palm"}
    manifest = artifacts.read_manifest(folder)
    assert manifest["kind"] == "tabular-classifier" and manifest["labels"] == ["fern", "moss", "palm"]
    weak = save_estimator(plant_pipeline(C=1e-4)[0], tmp_path / "weak.skops")  # near the most common label
    _, _, live = adopt.add("plants", weak, tmp_path / "plants.csv", model_dir=models)
    assert not live and (models / "plants").resolve() == folder.resolve()
    held_out.assign(species=held_out["species"].where(held_out.index != 2, "cactus")).to_csv(
        tmp_path / "plants.csv", index=False)
    with pytest.raises(DataError, match=r"row 4 \(line of the file\): species must be one of the model's labels: "
                                        "fern, moss, palm, not 'cactus'"):
        adopt.add("plants", weak, tmp_path / "plants.csv", model_dir=models)


def test_a_regressors_answers_show_its_typical_error_to_two_digits_and_a_shadow_agrees_within_a_share(handed, tmp_path):
    from kinds.tabular import SHADOW_SHARE

    folder, metrics, _ = adopt.add("houses", *handed, model_dir=tmp_path / "models")
    served = kinds.load(folder)
    typical = metrics["absolute_error_quantiles"]["0.5"]
    assert 1 <= typical < 10 and served.decimals == 2 and served.typical_error == round(typical, 2)
    assert served.tolerance == pytest.approx(SHADOW_SHARE * typical)
    assert adopt.answer_decimals({"absolute_error_quantiles": {"0.5": 0.0042}}) == 5
    assert adopt.answer_decimals({"absolute_error_quantiles": {"0.5": 4200.0}}) == 0
    row = served.check_input({"area": "north", "rooms": 3}, where="")
    assert served.score([row]).answers[0]["prediction"] == round(served.predict_value(row), 2)


def test_a_live_version_of_other_labels_holds_a_new_one_back_saying_why(tmp_path):
    two, held_two = plant_pipeline(classes=("fern", "moss"))
    three, held_three = plant_pipeline(classes=("fern", "moss", "palm"))
    held_two.to_csv(tmp_path / "two.csv", index=False)
    held_three.to_csv(tmp_path / "three.csv", index=False)
    models = tmp_path / "models"
    adopt.add("plants", save_estimator(two, tmp_path / "two.skops"), tmp_path / "two.csv", model_dir=models)
    folder, _, live = adopt.add("plants", save_estimator(three, tmp_path / "three.skops"), tmp_path / "three.csv",
                                model_dir=models)
    gate = artifacts.read_manifest(folder)["release"]["gate"]
    assert not live and "the live version cannot score this data (it answers fern, moss)" in gate["why"]
