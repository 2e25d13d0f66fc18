"""A model added with `release.py add`, served beside the built ones: its route, its inputs checked, its
answers the pipeline's own, V2, feedback, /models, the OpenAPI document and the token."""
import json
import time

import numpy as np
import pandas as pd
import pytest

from app import create_app
from serving import lifecycle
from serving.follower import Follower
from tests.support import flush, house_pipeline, plant_pipeline, save_estimator
from training import adopt


@pytest.fixture(scope="module")
def houses():
    return house_pipeline()


@pytest.fixture(scope="module")
def plants():
    return plant_pipeline()


@pytest.fixture(scope="module")
def added(houses, plants, model_dir, tmp_path_factory):
    """The built models' folder, with the houses pipeline added at /prices and the plants classifier at
    /plants."""
    import shutil

    folder = tmp_path_factory.mktemp("added")
    models = shutil.copytree(model_dir, folder / "models", symlinks=True)
    fitted, held_out = houses
    held_out.to_csv(folder / "houses.csv", index=False)
    adopt.add("houses", save_estimator(fitted, folder / "houses.skops"), folder / "houses.csv", model_dir=models,
              route="/prices")
    fitted, held_out = plants
    held_out.to_csv(folder / "plants.csv", index=False)
    adopt.add("plants", save_estimator(fitted, folder / "plants.joblib"), folder / "plants.csv", model_dir=models)
    return models


@pytest.fixture
def client(added, own_prediction_log):
    """A client of an app serving the added model, its prediction log's writer running as in a worker."""
    application = create_app({"MODEL_DIR": str(added), "PREDICTION_LOG": own_prediction_log})
    lifecycle.start_services(application)
    yield application.test_client(), application
    lifecycle.stop_services(application, 10)


def test_get_post_and_v2_answer_the_pipelines_own_numbers(client, houses):
    client, _ = client
    fitted, held_out = houses
    inputs = held_out.drop(columns="price").iloc[:20]
    theirs = fitted.predict(inputs)
    for row, expected in zip(inputs.to_dict("records"), theirs):
        query = {name: value for name, value in row.items() if value == value}  # NaN: not given
        answer = client.get("/prices", query_string=query).get_json()
        assert answer["prediction"] == round(expected, 2) and len(answer["id"]) == 52
    instances = [{name: (None if value != value else value) for name, value in row.items()}
                 for row in inputs.to_dict("records")]
    answers = client.post("/prices", json={"instances": instances}).get_json()["predictions"]
    assert [a["prediction"] for a in answers] == [round(v, 2) for v in theirs]
    body = {"inputs": [{"name": name, "datatype": "BYTES" if name == "area" else "FP64", "shape": [len(inputs)],
                        "data": [None if v != v else v for v in inputs[name].tolist()]} for name in inputs]}
    answer = client.post("/v2/models/houses/infer", json=body).get_json()
    predicted = next(o["data"] for o in answer["outputs"] if o["name"] == "prediction")
    assert np.abs(np.array(predicted) - theirs).max() < 1e-9
    assert client.get("/houses").status_code == 404  # served at its --route only


@pytest.mark.parametrize("query, says", [
    ({"area": "downtown"}, "area 'downtown' is not one the model knows; send one of: east, north, south, west"),
    ({"rooms": "3"}, "area is missing; it is required"),
    ({"area": "north", "rooms": "1e9"}, "rooms must be a number from"),
    ({"area": "north", "rooms": "three"}, "rooms must be a number"),
    ({"area": "north", "garden": "yes"}, "garden is not an input of the houses model; its inputs are area, rooms"),
])
def test_a_bad_input_answers_400_naming_the_field(client, query, says):
    client, _ = client
    response = client.get("/prices", query_string=query)
    assert response.status_code == 400 and says in response.get_json()["message"]


def test_feedback_models_and_the_openapi_document_know_the_added_model(client):
    client, application = client
    answer = client.get("/prices", query_string={"area": "north", "rooms": "3", "distance": "-2"}).get_json()
    accepted = client.post("/feedback", json={"id": answer["id"], "value": 180.5})
    assert accepted.status_code == 202
    assert accepted.get_json()["accepted"][0] == {
        "id": answer["id"], "model": "houses", "model_version": answer["model_version"],
        "predicted": answer["prediction"], "value": 180.5, "error": round(abs(180.5 - answer["prediction"]), 6)}
    refused = client.post("/feedback", json={"id": answer["id"], "label": "Positive"})
    assert refused.status_code == 400
    assert 'send the true one as "value", a finite number' in refused.get_json()["message"]
    flush(application)
    time.sleep(0.1)
    described = next(m for m in client.get("/models").get_json()["models"] if m["name"] == "houses")
    assert described["kind"] == "tabular-regressor" and described["feedback"]["count"] == 1
    assert described["target"]["name"] == "price"
    document = client.get("/openapi.json").get_json()
    parameters = {p["name"]: p for p in document["paths"]["/prices"]["get"]["parameters"]}
    assert parameters["area"]["schema"]["enum"] == ["east", "north", "south", "west"]
    assert parameters["distance"]["schema"]["minimum"] < 0
    assert "houses" in document["paths"]["/v2/models/{model_name}/infer"]["post"]["parameters"][0]["schema"]["enum"]


def test_the_token_guards_an_added_model_as_the_built_ones(added):
    application = create_app({"MODEL_DIR": str(added), "API_TOKEN": "s3cret", "PREDICTION_LOG": "off"})
    client = application.test_client()
    assert client.get("/prices", query_string={"area": "north"}).status_code == 401
    assert client.get("/prices", query_string={"area": "north"},
                      headers={"Authorization": "Bearer s3cret"}).status_code == 200
    document = client.get("/openapi.json").get_json()
    assert document["paths"]["/prices"]["get"]["security"] == [{"bearerToken": []}]


def test_a_manifest_naming_a_route_the_service_answers_itself_is_not_served(added, tmp_path):
    import json
    import shutil

    from store import artifacts

    models = shutil.copytree(added, tmp_path / "models", symlinks=True)
    folder = (models / "houses").resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["route"] = "/health"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(artifacts.ModelError, match="the houses model cannot be served: '/health' cannot be"):
        create_app({"MODEL_DIR": str(models), "PREDICTION_LOG": "off"})


def test_an_added_classifier_answers_its_labels_and_probabilities(client, plants):
    client, application = client
    fitted, held_out = plants
    inputs = held_out.drop(columns="species").iloc[:30]
    expected = fitted.predict_proba(inputs)
    instances = [{name: (None if value != value else value) for name, value in row.items()}
                 for row in inputs.to_dict("records")]
    answers = client.post("/plants", json={"instances": instances}).get_json()["predictions"]
    assert [a["prediction"] for a in answers] == fitted.predict(inputs).tolist()
    assert [a["confidence"] for a in answers] == [round(p, 3) for p in expected.max(axis=1)]
    one = client.get("/plants", query_string={"soil": "clay", "height": "30"}).get_json()
    assert set(one) == {"prediction", "confidence", "probabilities", "unseen", "id", "model_version"}
    body = {"inputs": [{"name": name, "datatype": "BYTES" if name == "soil" else "FP64", "shape": [len(inputs)],
                        "data": [None if v != v else v for v in inputs[name].tolist()]} for name in inputs]}
    outputs = {o["name"]: o for o in client.post("/v2/models/plants/infer", json=body).get_json()["outputs"]}
    assert outputs["probabilities"]["shape"] == [len(inputs), 3]
    assert np.abs(np.array(outputs["probabilities"]["data"]).reshape(-1, 3) - expected).max() < 1e-9
    assert outputs["label"]["data"] == fitted.predict(inputs).tolist()
    accepted = client.post("/feedback", json={"id": one["id"], "label": "palm"})
    assert accepted.status_code == 202 and accepted.get_json()["accepted"][0]["label"] == "palm"
    refused = client.post("/feedback", json={"id": one["id"], "label": "rose"})
    assert refused.status_code == 400 and "send one of: fern, moss, palm" in refused.get_json()["message"]
    flush(application)
    time.sleep(0.1)
    described = next(m for m in client.get("/models").get_json()["models"] if m["name"] == "plants")
    assert described["kind"] == "tabular-classifier" and described["labels"] == ["fern", "moss", "palm"]
    assert described["feedback"]["count"] == 1 and described["feedback"]["accuracy"] in (0.0, 1.0)
    assert described["metrics"]["accuracy"] > described["metrics"]["baseline"]["accuracy"]
    document = client.get("/openapi.json").get_json()
    answer = document["paths"]["/plants"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/LabelPrediction"}


def test_monitor_compares_an_added_classifiers_inputs_and_labels(client, added, own_prediction_log, capsys):
    import monitor

    client, application = client
    instances = [{"soil": "clay", "height": 12.0}] * 150 + [{"soil": "gravel"}] * 100  # a soil never seen, no height
    for start in range(0, len(instances), 50):
        response = client.post("/plants", json={"instances": instances[start:start + 50]})
        assert response.status_code == 200
        response.close()  # its rows are queued once the answer is sent: when the server closes it
    flush(application)
    time.sleep(0.1)
    code = monitor.main(["--log", own_prediction_log, "--model-dir", str(added), "--model", "plants"])
    said = capsys.readouterr().out
    assert "plants (served version" in said and "250 rows" in said
    assert "unseen: soil" in said and "missing: height" in said and "label share: fern" in said
    assert code == 1 and "drift found" in said  # two fifths of the soils never seen, and heights missing


def test_predict_py_scores_an_added_model_offline(added, plants, tmp_path, capsys):
    import predict

    fitted, held_out = plants
    inputs = held_out.drop(columns="species").iloc[:5]
    lines = [json.dumps({k: v for k, v in row.items() if v == v}) for row in inputs.to_dict("records")]
    (tmp_path / "plants.jsonl").write_text("\n".join(lines) + "\n")
    assert predict.main([str(tmp_path / "plants.jsonl"), "--model", "plants", "--model-dir", str(added),
                         "-o", str(tmp_path / "out.csv")]) == 0
    table = pd.read_csv(tmp_path / "out.csv")
    assert list(table.columns) == ["line", "prediction", "confidence", "fern", "moss", "palm", "unseen"]
    assert table["prediction"].tolist() == fitted.predict(inputs).tolist()
    assert np.allclose(table[["fern", "moss", "palm"]].to_numpy(), fitted.predict_proba(inputs).round(3))


def test_the_document_has_the_added_models_paths_and_no_others(client):
    from tests.web.test_openapi import document_operations, url_map_operations

    client, application = client
    document = client.get("/openapi.json").get_json()
    assert set(document_operations(document)) == url_map_operations(application, added=["/prices", "/plants"])


def test_a_model_added_while_the_server_runs_is_answered_without_a_restart(added, houses, tmp_path):
    import shutil

    models = shutil.copytree(added, tmp_path / "models", symlinks=True)
    application = create_app({"MODEL_DIR": str(models), "PREDICTION_LOG": "off", "MODEL_POLL_SECONDS": 0,
                              "API_TOKEN": "s3cret"})
    client = application.test_client()
    bearer = {"Authorization": "Bearer s3cret"}
    assert client.get("/condos", query_string={"area": "north"}, headers=bearer).status_code == 404
    assert client.delete("/condos").status_code == 404 and client.post("/health").status_code == 405
    fitted, held_out = houses
    held_out.to_csv(tmp_path / "condos.csv", index=False)
    adopt.add("condos", save_estimator(fitted, tmp_path / "condos.skops"), tmp_path / "condos.csv", model_dir=models)
    follower = next(s for s in application.extensions[lifecycle.SERVICES] if isinstance(s, Follower))
    follower.check()  # what its thread does every MODEL_POLL_SECONDS
    assert client.get("/condos", query_string={"area": "north"}).status_code == 401  # behind the token too
    answer = client.get("/condos", query_string={"area": "north", "rooms": "3"}, headers=bearer).get_json()
    assert answer["prediction"] == round(fitted.predict(pd.DataFrame([{"area": "north", "rooms": 3.0, "age": None,
                                                                         "distance": None}]))[0], 2)
    assert client.delete("/condos", headers=bearer).status_code == 405
    allowed = client.options("/condos")
    assert allowed.status_code == 200 and allowed.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert client.options("/nothing-here").status_code == 404
    assert "condos" in [m["name"] for m in client.get("/models", headers=bearer).get_json()["models"]]


def test_an_added_linear_models_answers_are_explained_on_request(client):
    client, _ = client
    answer = client.get("/plants", query_string={"soil": "clay", "height": "30", "explain": "true"}).get_json()
    explanation = answer["explanation"]
    assert explanation["label"] == answer["prediction"] and explanation["of"] == "logit"
    assert set(explanation["contributions"]) == {"soil", "height", "leaf"}
    prices = client.get("/prices", query_string={"area": "north", "rooms": "3", "explain": "1"}).get_json()
    total = prices["explanation"]["intercept"] + sum(prices["explanation"]["contributions"].values())
    assert round(total, 2) == prices["prediction"]
