"""The HTTP API through Flask's test client: answers, the three ways to send a query, and errors."""
import pytest


def test_get_query_string_answers_prediction_confidence_and_probabilities(client):
    response = client.get("/", query_string={"query": "a brilliant superb film"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["prediction"] == "Positive"
    assert set(body["probabilities"]) == {"Negative", "Positive"}
    assert body["confidence"] == body["probabilities"]["Positive"] == max(body["probabilities"].values())


def test_confidence_is_the_probability_of_the_predicted_label_even_when_negative(client):
    body = client.get("/", query_string={"query": "awful dreadful worst"}).get_json()
    assert body["prediction"] == "Negative"
    assert body["confidence"] == body["probabilities"]["Negative"] > 0.5


@pytest.mark.parametrize("send", [
    lambda c, text: c.get("/", query_string={"query": text}),
    lambda c, text: c.get("/", data={"query": text}),  # curl -X GET URL -d query=...
    lambda c, text: c.get("/", json={"query": text}),  # HTTPie: http GET URL query=...
], ids=["query-string", "form-body", "json-body"])
def test_all_three_ways_to_send_the_query_give_the_same_answer(client, send):
    expected = client.get("/?query=dreadful+awful+movie").get_json()
    response = send(client, "dreadful awful movie")
    assert response.status_code == 200
    assert response.get_json() == expected


def test_fine_grained_answers_one_of_five_labels(client):
    body = client.get("/fine-grained", query_string={"query": "brilliant masterpiece"}).get_json()
    assert body["prediction"] == "Positive"
    assert list(body["probabilities"]) == ["Negative", "Somewhat negative", "Neutral", "Somewhat positive",
                                           "Positive"]


def test_post_batch_answers_in_order(client):
    texts = ["awful worst", "brilliant superb", "dreadful"]
    response = client.post("/", json={"queries": texts})
    assert response.status_code == 200
    single = [client.get("/", query_string={"query": t}).get_json() for t in texts]
    assert response.get_json() == {"predictions": single}


@pytest.mark.parametrize("request_args, status, hint", [
    ({"path": "/"}, 400, "?query="),
    ({"path": "/?query="}, 400, "empty"),
    ({"path": "/?query=%20%09"}, 400, "whitespace"),
    ({"path": "/?query=" + "a" * 10_001}, 413, "limit is 10,000"),
    ({"path": "/", "data": "{not json", "content_type": "application/json"}, 400, "not valid JSON"),
    ({"path": "/", "json": {"query": 5}}, 400, "must be a string"),
    ({"path": "/", "json": ["query"]}, 400, "must be an object"),
    ({"path": "/?query=a&query=b"}, 400, "send it once"),
    ({"path": "/no-such-thing"}, 404, "/openapi.json"),
], ids=["missing", "empty", "whitespace", "too-long", "bad-json", "wrong-type", "wrong-shape", "repeated",
        "unknown-path"])
def test_bad_get_requests_answer_json_errors_with_a_hint(client, request_args, status, hint):
    path = request_args.pop("path")
    response = client.get(path, **request_args)
    assert response.status_code == status
    assert response.is_json
    assert hint in response.get_json()["message"]
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("body, status, hint", [
    ({"queries": []}, 400, "at least one"),
    ({"queries": "text"}, 400, "array of strings"),
    ({"queries": ["good", ""]}, 400, "queries[1]"),
    ({"queries": ["good", 7]}, 400, "queries[1] must be a string"),
    ({"queries": ["x"] * 1001}, 413, "limit is 1,000"),
    ({"query": "one"}, 400, '{"queries"'),
], ids=["empty", "not-a-list", "blank-element", "number-element", "too-many", "wrong-key"])
def test_bad_batches_answer_json_errors_naming_the_problem(client, body, status, hint):
    response = client.post("/", json=body)
    assert response.status_code == status
    assert hint in response.get_json()["message"]


def test_wrong_method_answers_405_json_with_allow(client):
    response = client.delete("/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]
    assert "DELETE is not allowed" in response.get_json()["message"]


def test_health_and_models_describe_the_served_models_without_paths(client, model_dir):
    assert client.get("/health").get_json() == {"status": "ok", "models": ["binary", "fine-grained"]}
    body = client.get("/models")
    models = {m["name"]: m for m in body.get_json()["models"]}
    assert set(models) == {"binary", "fine-grained"}
    assert models["binary"]["metrics"]["accuracy"] > 0.5
    assert len(models["binary"]["training_data"]["sha256"]) == 64
    assert str(model_dir) not in body.get_data(as_text=True)


def test_fine_grained_endpoint_explains_how_to_enable_it_when_not_built(tmp_path, model_dir):
    from app import create_app
    (tmp_path / "binary").symlink_to((model_dir / "binary").resolve())
    response = create_app({"MODEL_DIR": str(tmp_path)}).test_client().get("/fine-grained?query=good")
    assert response.status_code == 404
    assert "build_model.py --data" in response.get_json()["message"]
