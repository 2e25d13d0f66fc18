"""The Open Inference Protocol: its request parsing and answers (no HTTP), then its endpoints through
the app (Flask's test client). Real outside clients (tritonclient, MLServer's codecs) against a real
gunicorn are in e2e/test_open_inference_live.py.
"""
import json
import struct
from types import SimpleNamespace

import pytest

import kinds
from app import create_app
from kinds.text import Scored, TextClassifier
from kinds.text_inputs import texts_from_v2
from serving import prediction_log
from serving.errors import BadQuery, TooLarge
from support import flush
from web import open_inference
from web.open_inference import HEADER_LENGTH, bytes_tensor, infer_response, parse_infer

LIMITS = {"max_length": 50, "max_batch": 3}


def read_texts(inputs, binary):
    """The text kind's reading of a request's input tensors (`ModelKind.inputs_from_v2`), with LIMITS."""
    return texts_from_v2(inputs, binary, **LIMITS)


def request_body(texts, **extra):
    """A plain JSON inference request for `texts`."""
    return json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}],
                       **extra}).encode()


def binary_request(texts, **extra):
    """A request as tritonclient sends it by default: the texts as binary data after the JSON part."""
    data = bytes_tensor(texts)
    header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                                     "parameters": {"binary_data_size": len(data)}}], **extra}).encode()
    return header + data, str(len(header))


def split_answer(body, headers):
    """(the answer's JSON, {output name: its binary data}) of an answer with binary outputs."""
    size = int(headers[HEADER_LENGTH])
    document, offset, chunks = json.loads(body[:size]), size, {}
    for output in document["outputs"]:
        length = output.get("parameters", {}).get("binary_data_size")
        if length is not None:
            chunks[output["name"]] = body[offset:offset + length]
            offset += length
    assert offset == len(body)
    return document, chunks


# --- Parsing -------------------------------------------------------------------------------------

def test_a_json_request_gives_its_texts_its_id_and_every_output_as_json():
    parsed = parse_infer(request_body(["a fine film", "dull"], id="req-1"), None, read_inputs=read_texts)
    assert parsed.inputs == ["a fine film", "dull"] and parsed.id == "req-1"
    assert parsed.outputs == [(name, False) for name in open_inference.OUTPUTS]


def test_binary_texts_after_the_json_part_read_as_the_same_texts():
    body, length = binary_request(["a fine film", "héllo ✓"])
    assert parse_infer(body, length, read_inputs=read_texts).inputs == ["a fine film", "héllo ✓"]


@pytest.mark.parametrize("shape, data", [([2, 1], ["a", "b"]), ([2, 1], [["a"], ["b"]]), ([2], [["a", "b"]])])
def test_a_column_of_texts_and_nested_data_are_taken_as_the_protocol_allows(shape, data):
    body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": shape, "data": data}]}).encode()
    assert parse_infer(body, None, read_inputs=read_texts).inputs == ["a", "b"]


def test_requested_outputs_are_answered_in_their_order_each_binary_or_not():
    body = request_body(["x"], outputs=[{"name": "probabilities", "parameters": {"binary_data": True}},
                                        {"name": "label"}])
    assert parse_infer(body, None, read_inputs=read_texts).outputs == [("probabilities", True), ("label", False)]
    body = request_body(["x"], parameters={"binary_data_output": True}, outputs=[{"name": "id"}])
    assert parse_infer(body, None, read_inputs=read_texts).outputs == [("id", True)]


@pytest.mark.parametrize("body, length, says", [
    (b"", None, "empty"),
    (b"[1]", None, "JSON object"),
    (b'{"inputs": [', None, "not valid JSON"),
    (request_body(["x"])[:-1] + b', "id": 7}', None, "id must be a string"),
    (request_body(["x"])[:-1] + b', "id": null}', None, "id must be a string"),
    (json.dumps({"inputs": []}).encode(), None, "one input"),
    (json.dumps({"inputs": [{"name": "words", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}).encode(), None,
     "must be 'text'"),
    (json.dumps({"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]}).encode(), None,
     "BYTES"),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 2], "data": ["x", "y"]}]}).encode(),
     None, "shape must be [n]"),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [0], "data": []}]}).encode(), None,
     "at least one text"),
    (json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["x"]}]}).encode(), None,
     "make them agree"),
    (request_body(["   "]), None, "inputs[0].data[0] is empty"),
    (request_body(["x"], outputs=[{"name": "logits"}]), None, "ask for any of label"),
    (request_body(["x"], parameters={"binary_data_output": "yes"}), None, "true or false"),
    (request_body(["x"]), "12345", "Inference-Header-Content-Length"),
    (request_body(["x"]), "ten", "Inference-Header-Content-Length"),
    (request_body(["x"]) + b"\x01\x00\x00\x00a", str(len(request_body(["x"]))), "no input says"),
])
def test_a_bad_request_says_what_to_change(body, length, says):
    with pytest.raises(BadQuery) as refused:
        parse_infer(body, length, read_inputs=read_texts)
    assert says in refused.value.description


def test_broken_binary_data_is_refused_naming_the_text():
    body, length = binary_request(["good", "also good"])
    with pytest.raises(BadQuery, match="binary_data_size says"):
        parse_infer(body[:-1], length, read_inputs=read_texts)
    cut = body[:-3]
    header = json.loads(cut[:int(length)])
    header["inputs"][0]["parameters"]["binary_data_size"] = len(cut) - int(length)
    fixed = json.dumps(header).encode()
    with pytest.raises(BadQuery, match="ends inside text 1"):
        parse_infer(fixed + cut[int(length):], str(len(fixed)), read_inputs=read_texts)
    body, length = binary_request(["x"])
    bad = body[:-1] + b"\xff"
    with pytest.raises(BadQuery, match=r"data\[0\] is not valid UTF-8"):
        parse_infer(bad, length, read_inputs=read_texts)


def test_too_many_or_too_long_texts_are_413():
    with pytest.raises(TooLarge, match="limit is 3"):
        parse_infer(request_body(["x"] * 4), None, read_inputs=read_texts)
    with pytest.raises(TooLarge, match="limit is 50"):
        parse_infer(request_body(["x" * 51]), None, read_inputs=read_texts)


# --- Answers -------------------------------------------------------------------------------------

def scored_two():
    """A `Scored` of two texts with ids, as the app has it when it answers."""
    probabilities = [[0.8, 0.2], [0.1234567891234, 0.8765432108766]]
    answers = [{"prediction": "Negative", "id": "id-1"}, {"prediction": "Positive", "id": "id-2"}]
    return Scored(answers, [2, 3], [2, 3], probabilities)


def text_columns(scored):
    """The text kind's output columns of `scored`, for a model labelled Negative and Positive."""
    return TextClassifier.v2_columns(SimpleNamespace(labels=["Negative", "Positive"]), scored)


def test_a_json_answer_has_every_output_unrounded_and_echoes_the_id():
    parsed = parse_infer(request_body(["a", "b"], id="r-9"), None, read_inputs=read_texts)
    scored = scored_two()
    body, headers = infer_response(parsed, model_name="binary", model_version="v1", columns=text_columns(scored),
                                   scored=scored)
    assert headers == {"Content-Type": "application/json"}
    answer = json.loads(body)
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("binary", "v1", "r-9")
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["Negative", "Positive"]}
    assert outputs["confidence"]["data"] == [0.8, 0.8765432108766]
    assert outputs["probabilities"]["shape"] == [2, 2]
    assert outputs["probabilities"]["data"] == [0.8, 0.2, 0.1234567891234, 0.8765432108766]
    assert outputs["id"]["data"] == ["id-1", "id-2"]


def test_binary_outputs_follow_the_json_part_with_its_length_in_the_header():
    parsed = parse_infer(request_body(["a", "b"], outputs=[{"name": "label", "parameters": {"binary_data": True}},
                                                           {"name": "probabilities",
                                                            "parameters": {"binary_data": True}},
                                                           {"name": "confidence"}]), None, read_inputs=read_texts)
    scored = scored_two()
    body, headers = infer_response(parsed, model_name="binary", model_version="v1", columns=text_columns(scored),
                                   scored=scored)
    assert headers["Content-Type"] == open_inference.BINARY_TYPE
    document, chunks = split_answer(body, headers)
    assert [o["name"] for o in document["outputs"]] == ["label", "probabilities", "confidence"]
    assert chunks["label"] == b"\x08\x00\x00\x00Negative\x08\x00\x00\x00Positive"
    assert struct.unpack("<4d", chunks["probabilities"]) == (0.8, 0.2, 0.1234567891234, 0.8765432108766)
    assert "id" not in document  # the request had none


# --- Through the app -----------------------------------------------------------------------------

def test_health_server_and_model_metadata(client):
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get("/v2").get_json()["extensions"] == ["binary_tensor_data"]
    versions = {m["name"]: m["version"] for m in client.get("/models").get_json()["models"] if m["labels"]}
    for name, version in versions.items():
        metadata = client.get(f"/v2/models/{name}").get_json()
        assert metadata == client.get(f"/v2/models/{name}/versions/{version}").get_json()
        assert metadata["versions"] == [version] and metadata["inputs"][0]["name"] == "text"
        labels = metadata["parameters"]["labels"]
        assert {o["name"]: o["shape"] for o in metadata["outputs"]}["probabilities"] == [-1, len(labels)]
        assert client.get(f"/v2/models/{name}/ready").get_json() == {"name": name, "ready": True}
        assert client.get(f"/v2/models/{name}/versions/{version}/ready").status_code == 200


@pytest.mark.parametrize("path", ["/v2/models/sentiment", "/v2/models/binary/versions/20200101T000000Z-00000000",
                                  "/v2/models/binary/versions/x/ready", "/v2/nothing"])
def test_a_model_or_version_not_served_is_404_as_the_protocol_says(client, path):
    response = client.get(path)
    assert response.status_code == 404 and list(response.get_json()) == ["error"]
    if "models" in path:
        assert "serves" in response.get_json()["error"] or "this server has binary" in response.get_json()["error"]


def test_inference_gives_the_same_numbers_as_the_api_before_rounding(client):
    texts = ["a superb and moving film", "dull", "it was fine i guess"]
    for name, route in (("binary", "/"), ("fine-grained", "/fine-grained")):
        answer = client.post(f"/v2/models/{name}/infer", data=request_body(texts, id="mine")).get_json()
        assert answer["id"] == "mine" and answer["model_name"] == name
        outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        ours = client.post(route, json={"queries": texts}).get_json()["predictions"]
        labels = list(ours[0]["probabilities"])
        rows = [outputs["probabilities"][i * len(labels):(i + 1) * len(labels)] for i in range(len(texts))]
        assert outputs["label"] == [a["prediction"] for a in ours]
        for row, confidence, a in zip(rows, outputs["confidence"], ours):
            assert [round(p, 3) for p in row] == list(a["probabilities"].values())
            assert confidence == max(row)
        assert answer["model_version"] == ours[0]["model_version"]


def test_probabilities_equal_the_models_to_1e_9(client, model_dir):

    texts = ["a superb and moving film", "dull and long"]
    served = kinds.load_models(model_dir)["fine-grained"]
    answer = client.post("/v2/models/fine-grained/infer", data=request_body(texts)).get_json()
    got = {o["name"]: o["data"] for o in answer["outputs"]}["probabilities"]
    expected = served.predict_proba_sklearn(texts).ravel().tolist()
    assert got == pytest.approx(expected, abs=1e-9)


def test_binary_requests_and_answers_through_the_app(client):
    body, length = binary_request(["a superb film", "dull"], parameters={"binary_data_output": True})
    response = client.post("/v2/models/binary/infer", data=body, headers={HEADER_LENGTH: length},
                           content_type="application/octet-stream")
    assert response.status_code == 200
    document, chunks = split_answer(response.get_data(), response.headers)
    assert len(struct.unpack("<4d", chunks["probabilities"])) == 4
    assert chunks["label"].count(b"\x00\x00\x00") == 2


def test_errors_answer_error_not_message_and_never_5xx(client):
    for body in (b"{", b'{"inputs": 3}', request_body(["x"] * 1001), request_body(["y" * 10_001])):
        response = client.post("/v2/models/binary/infer", data=body, content_type="application/json")
        assert response.status_code in (400, 413) and list(response.get_json()) == ["error"]
    response = client.get("/v2/models/binary/infer")
    assert response.status_code == 405 and "POST" in response.get_json()["error"]
    assert list(client.get("/nothing").get_json()) == ["message"]  # the API's own paths keep theirs
    assert list(client.get("/v2x").get_json()) == ["message"]


def test_inference_is_behind_the_token_and_health_and_metadata_are_not(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "API_TOKEN": "s3cret"}).test_client()
    refused = client.post("/v2/models/binary/infer", data=request_body(["x"]))
    assert refused.status_code == 401 and "API token" in refused.get_json()["error"]
    assert client.post("/v2/models/binary/infer", data=request_body(["x"]),
                       headers={"Authorization": "Bearer s3cret"}).status_code == 200
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/binary", "/v2/models/binary/ready"):
        assert client.get(path).status_code == 200, path


def test_inference_is_counted_and_recorded_with_the_ids_it_answers(recording, own_prediction_log):
    client = recording.test_client()
    with client.post("/v2/models/fine-grained/infer", data=request_body(["superb", "dull"]),
                     headers={"X-Request-ID": "v2-req"}) as response:
        outputs = {o["name"]: o["data"] for o in response.get_json()["outputs"]}
    flush(recording)
    rows = prediction_log.read_predictions(own_prediction_log).set_index("id")
    assert list(rows.index) == outputs["id"] and set(rows["request_id"]) == {"v2-req"}
    assert list(rows["label"]) == outputs["label"] and set(rows["model"]) == {"fine-grained"}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'sentiment_texts_scored_total{model="fine-grained"} 2.0' in metrics
    assert 'endpoint="v2_infer"' in metrics
    # The ids take feedback like any other answer's.
    accepted = client.post("/feedback", json={"id": outputs["id"][0], "label": "Positive"})
    assert accepted.status_code == 202
