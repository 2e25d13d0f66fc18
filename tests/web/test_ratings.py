"""/ratings through the app: a film's rating from typed query parameters or a batch of instances, with an
id, a row in the prediction log, feedback as a number, drift signals and its place in the contract."""
import json
import time

import pytest
from openapi_spec_validator import validate

from app import create_app
from serving import prediction_log
from support import assert_json_error, flush, samples, value

FILM = {"genre": "Drama", "budget": "20000000", "director": "Director 3", "release_year": "2004"}


def test_a_get_answers_a_rating_with_its_typical_error_id_and_version(client):
    response = client.get("/ratings", query_string=FILM)
    assert response.status_code == 200
    answer = response.get_json()
    assert set(answer) == {"prediction", "typical_error", "unseen", "id", "model_version"}
    assert 1 <= answer["prediction"] <= 10 and answer["typical_error"] > 0 and answer["unseen"] == []
    unknown = client.get("/ratings", query_string={**FILM, "director": "A Newcomer"}).get_json()
    assert unknown["unseen"] == ["director"]


def test_a_post_answers_each_instance_in_order_as_a_get_would(client):
    instances = [{"genre": "Horror", "budget": 1e6}, {"genre": "Documentary", "budget": 5e5, "mpaa_rating": "PG"}]
    response = client.post("/ratings", json={"instances": instances})
    assert response.status_code == 200
    batch = [a["prediction"] for a in response.get_json()["predictions"]]
    singles = [client.get("/ratings", query_string={k: str(v) for k, v in i.items()}).get_json()["prediction"]
               for i in instances]
    assert batch == singles and batch[0] < batch[1]  # the tiny films: documentaries rate above horror


@pytest.mark.parametrize("query, status, hint", [
    ({"budget": "5e6"}, 400, "genre is missing"),
    ({"genre": "Noir", "budget": "5e6"}, 400, "send one of: "),
    ({"genre": "Drama", "budget": "-3"}, 400, "budget must be a finite positive number"),
    ({"genre": "Drama", "budget": "5e6", "query": "good"}, 400, "query is not an input of the ratings model"),
])
def test_a_bad_get_answers_400_naming_the_field(client, query, status, hint):
    response = client.get("/ratings", query_string=query)
    assert_json_error(response.status_code, response.get_data(as_text=True), status, hint)


@pytest.mark.parametrize("path, body, hint", [
    ("/ratings", '{"instances": [{"genre": "Drama", "budget": 5e6, "director": "x\\ud800"}]}', "lone surrogate"),
    ("/v2/models/ratings/infer",
     {"inputs": [{"name": ["genre"], "datatype": "BYTES", "shape": [1], "data": ["Drama"]}]},
     "is not an input of the model"),
    ("/v2/models/ratings/infer", {"inputs": [{"name": "budget", "datatype": {"x": 1}, "shape": [1], "data": [5e6]}]},
     "datatype must be"),
])
def test_a_body_no_parser_expected_answers_400_not_500(client, path, body, hint):
    sent = {"data": body, "content_type": "application/json"} if isinstance(body, str) else {"json": body}
    response = client.post(path, **sent)
    assert response.status_code == 400, response.get_data(as_text=True)
    (message,) = response.get_json().values()  # {"message": ...}, or the protocol's {"error": ...}
    assert hint in message and "Traceback" not in message


def test_without_the_ratings_model_the_route_says_how_to_build_it(model_dir, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(model_dir, models, symlinks=True)
    (models / "ratings").unlink()
    response = create_app({"MODEL_DIR": str(models)}).test_client().get("/ratings", query_string=FILM)
    assert_json_error(response.status_code, response.get_data(as_text=True), 404, "build_model.py --only ratings")


def test_feedback_takes_the_true_rating_and_models_shows_the_error(recording, own_prediction_log):
    client = recording.test_client()
    with client.get("/ratings", query_string=FILM) as response:
        answer = response.get_json()
    taken = client.post("/feedback", json={"id": answer["id"], "value": 7.5})
    assert taken.status_code == 202
    (accepted,) = taken.get_json()["accepted"]
    assert accepted["predicted"] == answer["prediction"] and accepted["value"] == 7.5
    assert accepted["error"] == round(abs(7.5 - answer["prediction"]), 6)  # no float noise in the answer
    refused = client.post("/feedback", json={"id": answer["id"], "label": "Positive"})
    assert_json_error(refused.status_code, refused.get_data(as_text=True), 400, 'send the true one as "value"')
    out_of_scale = client.post("/feedback", json={"id": answer["id"], "value": 12})
    assert out_of_scale.status_code == 400
    flush(recording)
    time.sleep(0.1)
    rows = prediction_log.read_predictions(own_prediction_log, model="ratings")
    assert rows["id"].tolist() == [answer["id"]] and rows["label"].isna().all()
    assert round(rows["value"].iloc[0], 2) == answer["prediction"] and '"genre":"Drama"' in rows["inputs"].iloc[0]
    summary = {m["name"]: m["feedback"] for m in client.get("/models").get_json()["models"]}
    assert summary["ratings"]["count"] == 1 and summary["ratings"]["mae"] == pytest.approx(accepted["error"], abs=1e-4)
    table = samples(client.get("/metrics").get_data(as_text=True))
    assert value(table, "sentiment_feedback_absolute_error_count", model="ratings") == 1
    assert value(table, "sentiment_feedback_absolute_error_sum", model="ratings") == pytest.approx(accepted["error"])


def test_the_drift_signals_count_missing_and_unseen_inputs(client):
    client.get("/ratings", query_string=FILM)
    client.get("/ratings", query_string={"genre": "Comedy", "budget": "1e9", "director": "A Newcomer"})
    table = samples(client.get("/metrics").get_data(as_text=True))
    assert value(table, "sentiment_rows_scored_total", model="ratings") == 2
    assert value(table, "sentiment_input_unseen_total", model="ratings", input="director") == 1
    assert value(table, "sentiment_input_unseen_total", model="ratings", input="budget") == 1
    assert value(table, "sentiment_input_missing_total", model="ratings", input="mpaa_rating") == 2
    # Present at 0, not merely absent: every input's series exists from the model's load.
    assert table[("sentiment_input_missing_total", frozenset({"model": "ratings", "input": "director"}.items()))] == 0
    assert table[("sentiment_input_unseen_total", frozenset({"model": "ratings", "input": "genre"}.items()))] == 0
    assert value(table, "sentiment_predicted_value_count", model="ratings") == 2
    assert ("sentiment_texts_scored_total", frozenset({"model": "ratings"}.items())) not in table  # none for it


def test_the_contract_lists_each_input_typed_with_its_allowed_values(client):
    document = client.get("/openapi.json").get_json()
    validate(document)
    parameters = {p["name"]: p for p in document["paths"]["/ratings"]["get"]["parameters"]}
    assert list(parameters) == ["genre", "budget", "director", "distributor", "mpaa_rating", "running_time",
                                "release_year", "source", "creative_type", "explain"]
    assert parameters["explain"]["schema"] == {"type": "boolean"} and not parameters["explain"]["required"]
    assert parameters["genre"]["required"] and parameters["budget"]["required"]
    assert "Drama" in parameters["genre"]["schema"]["enum"]
    (ratings,) = [m for m in client.get("/models").get_json()["models"] if m["name"] == "ratings"]
    budget = {spec["name"]: spec for spec in ratings["inputs"]}["budget"]
    assert parameters["budget"]["schema"] == {"type": "number", "minimum": budget["min"] / 10,
                                              "maximum": budget["max"] * 10}  # NUMBER_MARGIN either way
    assert parameters["release_year"]["schema"]["type"] == "integer"


def test_the_builds_reference_is_exported_beside_the_live_signals(client, model_dir):
    import util

    reference = util.read_json(model_dir / "ratings" / "metrics.json")["reference"]
    assert set(reference["input_unseen_shares"]) == {"director", "distributor", "budget", "running_time",
                                                     "release_year"}
    table = samples(client.get("/metrics").get_data(as_text=True))
    assert value(table, "sentiment_reference_mae", model="ratings") == pytest.approx(reference["mae"])
    assert value(table, "sentiment_reference_input_missing_share", model="ratings", input="director") == \
        pytest.approx(reference["input_missing_shares"]["director"])
    assert value(table, "sentiment_reference_predicted_value_mean", model="ratings") == \
        pytest.approx(reference["predicted_value_mean"])


# --- The Open Inference Protocol: one tensor per input --------------------------------------------

def tensor(name, datatype, data):
    """One input tensor, in JSON."""
    return {"name": name, "datatype": datatype, "shape": [len(data)], "data": data}


def test_v2_takes_a_tensor_per_input_and_answers_the_unrounded_prediction_and_ids(client):
    metadata = client.get("/v2/models/ratings").get_json()
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]][:2] == [("genre", "BYTES"), ("budget", "FP64")]
    assert [o["name"] for o in metadata["outputs"]] == ["prediction", "id"]
    body = {"inputs": [tensor("genre", "BYTES", ["Drama", "Horror"]), tensor("budget", "FP64", [2e7, 1e6]),
                       tensor("director", "BYTES", ["Director 3", None])]}
    answer = client.post("/v2/models/ratings/infer", json=body).get_json()
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    gets = [client.get("/ratings", query_string=q).get_json() for q in (
        {"genre": "Drama", "budget": "20000000", "director": "Director 3"}, {"genre": "Horror", "budget": "1000000"})]
    assert [round(p, 2) for p in outputs["prediction"]] == [g["prediction"] for g in gets]
    assert len(outputs["id"]) == 2 and all(len(i) == 52 for i in outputs["id"])


def test_v2_binary_tensors_as_tritonclient_sends_them(client):
    import struct

    genres = b"".join(struct.pack("<I", len(g)) + g for g in (b"Drama", b"Comedy"))
    budgets = struct.pack("<2d", 2e7, float("nan"))  # NaN: missing, as pandas writes it; budget is required
    json_part = json.dumps({"inputs": [
        {"name": "genre", "datatype": "BYTES", "shape": [2, 1], "parameters": {"binary_data_size": len(genres)}},
        {"name": "budget", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": len(budgets)}}]})
    response = client.post("/v2/models/ratings/infer", data=json_part.encode() + genres + budgets,
                           headers={"Inference-Header-Content-Length": str(len(json_part))},
                           content_type="application/octet-stream")
    assert response.status_code == 400 and "row 1: budget is missing" in response.get_json()["error"]
    budgets = struct.pack("<2d", 2e7, 3e6)
    response = client.post("/v2/models/ratings/infer", data=json_part.encode() + genres + budgets,
                           headers={"Inference-Header-Content-Length": str(len(json_part))},
                           content_type="application/octet-stream")
    assert response.status_code == 200 and len(response.get_json()["outputs"][0]["data"]) == 2


@pytest.mark.parametrize("inputs, message", [
    ([], "one input per column"),
    ([tensor("genre", "BYTES", ["Drama"])], "row 0: budget is missing"),
    ([tensor("genre", "FP64", [1.0])], "datatype must be BYTES for genre"),
    ([tensor("plot", "BYTES", ["x"])], 'inputs[0].name "plot" is not an input'),
    ([tensor("genre", "BYTES", ["Drama"]), tensor("budget", "FP64", [1.0, 2.0])], "the inputs before it 1"),
    ([tensor("genre", "BYTES", ["Drama"]), tensor("genre", "BYTES", ["Drama"])], "sent twice"),
])
def test_a_bad_v2_request_answers_400_naming_the_tensor(client, inputs, message):
    response = client.post("/v2/models/ratings/infer", json={"inputs": inputs})
    assert response.status_code == 400 and message in response.get_json()["error"], response.get_json()


def test_an_explained_rating_is_its_intercept_and_one_exact_contribution_per_input(client):
    query = {"genre": "Drama", "budget": "20000000", "director": "Someone New", "explain": "true"}
    answer = client.get("/ratings", query_string=query).get_json()
    explanation = answer["explanation"]
    assert list(explanation["contributions"]) == ["genre", "budget", "director", "distributor", "mpaa_rating",
                                                  "running_time", "release_year", "source", "creative_type"]
    assert explanation["contributions"]["director"] == 0.0  # a name never seen adds nothing
    total = explanation["intercept"] + sum(explanation["contributions"].values())
    assert round(total, 2) == answer["prediction"]
    plain = client.get("/ratings", query_string={**query, "explain": "false"}).get_json()
    assert "explanation" not in plain and plain["prediction"] == answer["prediction"]
    batch = client.post("/ratings", json={"instances": [{"genre": "Drama", "budget": 2e7}], "explain": True})
    assert "explanation" in batch.get_json()["predictions"][0]
    refused = client.get("/ratings", query_string={**query, "explain": "maybe"})
    assert refused.status_code == 400 and "explain='maybe' is not a flag" in refused.get_json()["message"]
