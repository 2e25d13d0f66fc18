"""The Open Inference Protocol spoken to a real gunicorn by clients other people wrote: NVIDIA's
`tritonclient[http]` (in its default binary mode and with binary_data=False) and MLServer's codecs and
types (the requests MLServer's own clients build). Health, metadata, inference on both models, a batch,
an error. The same endpoints through Flask's test client are in test_open_inference.py.
"""
import numpy as np
import pytest
import requests
import tritonclient.http as triton
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse, RequestOutput
from tritonclient.utils import InferenceServerException

TEXTS = ["a superb and moving film", "that movie was boring", "it was fine, i guess"]


@pytest.fixture(scope="module")
def triton_client(live_server):
    """tritonclient's HTTP client on the live server."""
    client = triton.InferenceServerClient(live_server.url.removeprefix("http://"))
    yield client
    client.close()


def versions(server):
    """Each served model's version, as GET /models shows it."""
    return {m["name"]: m["version"] for m in requests.get(server.url + "/models", timeout=10).json()["models"]}


def the_apis_answers(server, name, texts):
    """The service's own answers (POST) for `texts` with model `name`."""
    route = {"binary": "/", "fine-grained": "/fine-grained"}[name]
    return requests.post(server.url + route, json={"queries": texts}, timeout=10).json()["predictions"]


def post_json(server, path, request):
    """POST an MLServer request object as its JSON, as MLServer's REST clients send it."""
    return requests.post(server.url + path, data=request.model_dump_json(exclude_none=True),
                         headers={"Content-Type": "application/json"}, timeout=10)


def test_tritonclient_sees_a_live_ready_server_and_its_models(triton_client, live_server):
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    for name, version in versions(live_server).items():
        assert triton_client.is_model_ready(name) and triton_client.is_model_ready(name, version)
        assert not triton_client.is_model_ready(name, "19990101T000000Z-00000000")
        metadata = triton_client.get_model_metadata(name, version)
        assert metadata["versions"] == [version]
        assert [i["name"] for i in metadata["inputs"]][:1] == (["genre"] if name == "ratings" else ["text"])


@pytest.mark.parametrize("binary", [True, False], ids=["binary-data", "json"])
@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_tritonclient_scores_a_batch_with_the_services_answers(triton_client, live_server, name, binary):
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary)
               for n in ("label", "confidence", "probabilities", "id")]
    version = versions(live_server)[name]
    result = triton_client.infer(name, [text], model_version=version, outputs=outputs, request_id="nb-7")
    assert result.get_response()["id"] == "nb-7" and result.get_response()["model_version"] == version
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")]
    ours = the_apis_answers(live_server, name, TEXTS)
    assert labels == [a["prediction"] for a in ours]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(TEXTS), len(ours[0]["probabilities"]))
    assert np.round(probabilities, 3).tolist() == [list(a["probabilities"].values()) for a in ours]
    assert np.allclose(result.as_numpy("confidence"), probabilities.max(axis=1), atol=1e-12)
    assert len(set(result.as_numpy("id").tolist())) == len(TEXTS)


def test_tritonclients_default_request_gets_every_output_as_binary_data(triton_client):
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array(["a superb film"], dtype=object))
    result = triton_client.infer("binary", [text])  # no outputs named: tritonclient asks for binary_data_output
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    assert result.as_numpy("label").tolist() == [b"Positive"]


def test_tritonclient_raises_the_services_message_for_a_bad_request(triton_client):
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array(["   "], dtype=object))
    with pytest.raises(InferenceServerException) as refused:
        triton_client.infer("binary", [text])
    assert refused.value.status() == "400" and "empty or only whitespace" in refused.value.message()
    with pytest.raises(InferenceServerException) as refused:
        triton_client.get_model_metadata("sentiment")
    assert refused.value.status() == "404" and "this server has binary" in refused.value.message()


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
def test_mlserver_codecs_build_a_request_the_service_answers(live_server, name):
    request = InferenceRequest(id="ml-1", inputs=[StringCodec.encode_input("text", TEXTS, use_bytes=False)],
                               outputs=[RequestOutput(name="label"), RequestOutput(name="probabilities")])
    response = post_json(live_server, f"/v2/models/{name}/infer", request)
    assert response.status_code == 200, response.text
    answer = InferenceResponse.model_validate_json(response.content)
    assert answer.id == "ml-1" and answer.model_name == name
    ours = the_apis_answers(live_server, name, TEXTS)
    assert StringCodec.decode_output(answer.outputs[0]) == [a["prediction"] for a in ours]
    probabilities = NumpyCodec.decode_output(answer.outputs[1])
    assert np.round(probabilities, 3).tolist() == [list(a["probabilities"].values()) for a in ours]


def test_mlserver_codecs_see_health_and_an_error(live_server):
    assert requests.get(live_server.url + "/v2/health/ready", timeout=10).json() == {"ready": True}
    request = InferenceRequest(inputs=[StringCodec.encode_input("words", ["x"], use_bytes=False)])
    response = post_json(live_server, "/v2/models/binary/infer", request)
    assert response.status_code == 400 and "inputs[0].name must be 'text'" in response.json()["error"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary-data", "json"])
def test_tritonclient_predicts_ratings_from_a_tensor_per_input(triton_client, live_server, binary):
    genre = triton.InferInput("genre", [2, 1], "BYTES")
    genre.set_data_from_numpy(np.array([["Drama"], ["Horror"]], dtype=object), binary_data=binary)
    budget = triton.InferInput("budget", [2], "FP64")
    budget.set_data_from_numpy(np.array([2e7, 1e6]), binary_data=binary)
    year = triton.InferInput("release_year", [2], "INT64")
    year.set_data_from_numpy(np.array([2004, 1999], dtype=np.int64), binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("prediction", "id")]
    result = triton_client.infer("ratings", [genre, budget, year], outputs=outputs)
    predicted = result.as_numpy("prediction")
    answers = requests.post(live_server.url + "/ratings", json={"instances": [
        {"genre": "Drama", "budget": 2e7, "release_year": 2004}, {"genre": "Horror", "budget": 1e6,
                                                                  "release_year": 1999}]}, timeout=10).json()
    assert [round(float(p), 2) for p in predicted] == [a["prediction"] for a in answers["predictions"]]
    assert len(result.as_numpy("id")) == 2
