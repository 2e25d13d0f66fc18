"""The HTTP API (app.py) through Flask's test client: answers, every way to send a text, the JSON errors
for every family of unusable request, the optional bearer token, and no internals in any answer.
What only a real server sees (raw bytes, body limits, traversal) is in e2e/test_operations_live.py."""
import itertools
import json
import re
import string
import time

import pytest

import kinds
from app import create_app
from kinds import text as model
from kinds import text_scoring
from support import TEXT_ROUTES, TOKEN, assert_json_error, flush


# What a stack trace or an internal message would show: none of it may reach a caller.
def assert_error_response(response, expected_status, hint=""):
    """`assert_json_error` on a test-client response, which must also say it is JSON."""
    assert response.headers["Content-Type"] == "application/json"
    assert_json_error(response.status_code, response.get_data(as_text=True), expected_status, hint)


def scored(answer):
    """An answer without the `id` and `model_version` the service adds: what the model itself computed."""
    assert 0 < len(answer["id"]) <= 64 and answer["model_version"]
    return {name: value for name, value in answer.items() if name not in ("id", "model_version")}


@pytest.fixture(scope="module")
def binary_model(model_dir):
    """The binary model, loaded directly: what the API's answers must equal."""
    return kinds.load(model_dir / "binary")


# --- Answers -------------------------------------------------------------------------------------

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


# Ordinary text, and odd but valid text: any script, emoji, controls, markup; none of it is an error.
TEXTS = {
    "plain": "dreadful awful movie", "emoji": "😀 what a film 🎬🍿", "arabic-rtl": "فيلم رائع جدا",
    "hebrew-rtl": "מסריט נהדר", "japanese": "素晴らしい映画です", "chinese": "这部电影太棒了", "korean": "영화 최고",
    "nul": "a\x00b", "controls": "\x01\x02\x7f control", "zero-width": "\u200b\u200d zero width",
    "combining": "e\u0301\u0301\u0301 combining", "many-emoji": "\U0001F600" * 2000,
    "literal-percent": "%ZZ invalid escape", "html": "<script>alert(1)</script>",
    "sql": "'; DROP TABLE reviews; --", "ampersand-and-plus": "superb & brilliant + awful = ?",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS)
def test_every_way_to_send_a_text_gets_the_models_own_answer_for_it(client, binary_model, text):
    answers = [client.get("/", query_string={"query": text}),
               client.get("/", data={"query": text}),  # curl -X GET URL -d query=...
               client.get("/", json={"query": text}),  # HTTPie: http GET URL query=...
               client.post("/", json={"queries": [text]})]
    assert [r.status_code for r in answers] == [200] * 4
    singles = [r.get_json() for r in answers[:3]] + answers[3].get_json()["predictions"]
    assert [scored(a) for a in singles] == [binary_model.predict([text])[0]] * 4  # the text arrived unchanged


def test_fine_grained_answers_one_of_five_labels(client):
    body = client.get("/fine-grained", query_string={"query": "brilliant masterpiece"}).get_json()
    assert body["prediction"] == "Positive"
    assert list(body["probabilities"]) == ["Negative", "Somewhat negative", "Neutral", "Somewhat positive",
                                           "Positive"]


def test_post_batch_answers_in_order(client):
    texts = ["awful worst", "brilliant superb", "dreadful"]
    response = client.post("/", json={"queries": texts})
    assert response.status_code == 200
    single = [scored(client.get("/", query_string={"query": t}).get_json()) for t in texts]
    assert [scored(a) for a in response.get_json()["predictions"]] == single
    assert [a["prediction"] for a in single] == ["Negative", "Positive", "Negative"]


def test_health_and_models_describe_the_served_models_without_paths(client, model_dir):
    assert client.get("/health").get_json() == {"status": "ok", "models": ["binary", "fine-grained", "ratings"]}
    body = client.get("/models")
    models = {m["name"]: m for m in body.get_json()["models"]}
    assert set(models) == {"binary", "fine-grained", "ratings"}
    assert models["binary"]["metrics"]["accuracy"] > 0.5
    assert len(models["binary"]["training_data"]["sha256"]) == 64
    assert str(model_dir) not in body.get_data(as_text=True)


def test_fine_grained_endpoint_explains_how_to_enable_it_when_not_built(tmp_path, model_dir):
    (tmp_path / "binary").symlink_to((model_dir / "binary").resolve())
    client = create_app({"MODEL_DIR": str(tmp_path)}).test_client()
    assert client.get("/?query=good").status_code == 200
    for response in (client.get("/fine-grained?query=good"), client.post("/fine-grained", json={"queries": ["a"]})):
        assert_error_response(response, 404, "The fine-grained model is not built on this server")
        assert "build_model.py --data" in response.get_json()["message"]


# --- Unusable requests: one family each ---------------------------------------------------------

def json_body(document):
    """Test-client arguments sending `document` as a JSON body."""
    return {"data": json.dumps(document), "content_type": "application/json"}


# GET: (path, test-client arguments, status, a phrase of the message)
BAD_GETS = {
    "missing": ("/", {}, 400, "Missing query: send the text as ?query="),
    "empty": ("/?query=", {}, 400, "empty or only whitespace"),
    "whitespace": ("/?query=%20%09%0A%0D%E3%80%80", {}, 400, "empty or only whitespace"),  # U+3000 at the end
    "too-long": ("/?query=" + "a" * 10_001, {}, 413, "the limit is 10,000"),
    "invalid-utf8": ("/?query=%FF%FE", {}, 400, "URL query string is not valid UTF-8"),
    "truncated-utf8": ("/?query=%E2%82", {}, 400, "not valid UTF-8"),
    "overlong-utf8": ("/?query=%C0%AF", {}, 400, "not valid UTF-8"),  # an overlong '/'
    "surrogate": ("/?query=%ED%A0%80", {}, 400, "not valid UTF-8"),
    "form-escaped-invalid-utf8": ("/", {"data": b"query=%FF", "content_type": "application/x-www-form-urlencoded"},
                                  400, "form body is not valid UTF-8"),
    "form-raw-invalid-utf8": ("/", {"data": b"query=\xff", "content_type": "application/x-www-form-urlencoded"},
                              400, "form body is not valid UTF-8"),
    "json-raw-invalid-utf8": ("/", {"data": b'{"query": "\xff"}', "content_type": "application/json"},
                              400, "JSON body is not valid UTF-8"),
    "malformed-json": ("/", {"data": "{not json", "content_type": "application/json"}, 400, "not valid JSON"),
    "deep-json": ("/", {"data": "[" * 100_000, "content_type": "application/json"}, 400, "nested too deeply"),
    "repeated": ("/?query=a&query=b", {}, 400, "query was sent 2 times; send it once"),
    "url-and-json": ("/?query=a", {"json": {"query": "b"}}, 400, "sent 2 times"),
    "url-and-form": ("/?query=a", {"data": {"query": "b"}}, 400, "sent 2 times"),
    "unknown-path": ("/no-such-thing", {}, 404, "No such endpoint. Score text with GET /?query=..."),
    # JSON bodies of every wrong shape
    "json null": ("/", json_body(None), 400, 'must be an object like {"query": "..."}, not null'),
    "json number": ("/", json_body(1), 400, "must be an object"),
    "json fraction": ("/", json_body(1.5), 400, "must be an object"),
    "json boolean": ("/", json_body(True), 400, "not a boolean"),
    "json string": ("/", json_body("text"), 400, "must be an object"),
    "json empty array": ("/", json_body([]), 400, "not an array"),
    "json array": ("/", json_body(["query"]), 400, "not an array"),
    "json empty object": ("/", json_body({}), 400, "Missing query"),
    "json other key": ("/", json_body({"Query": "a"}), 400, "Missing query"),
    "json query null": ("/", json_body({"query": None}), 400, "query must be a string, not null"),
    "json query number": ("/", json_body({"query": 1}), 400, "query must be a string, not a number"),
    "json query boolean": ("/", json_body({"query": True}), 400, "query must be a string, not a boolean"),
    "json query array": ("/", json_body({"query": ["a"]}), 400, "query must be a string, not an array"),
    "json query object": ("/", json_body({"query": {"a": "b"}}), 400, "query must be a string, not an object"),
}


@pytest.mark.parametrize("path, kwargs, status, hint", BAD_GETS.values(), ids=BAD_GETS)
def test_an_unusable_get_answers_a_json_error_saying_what_to_send(client, path, kwargs, status, hint):
    assert_error_response(client.get(path, **kwargs), status, hint)


# POST: (body: bytes as sent, anything else as JSON; status; a phrase of the message)
BAD_POSTS = {
    "empty": (b"", 400, "the body is empty"),
    "blank": (b"   ", 400, "the body is empty"),
    "open-brace": (b"{", 400, "not valid JSON"),
    "single-quotes": (b"{'queries': ['a']}", 400, "not valid JSON"),
    "trailing-comma": (b'{"queries": ["a",]}', 400, "not valid JSON"),
    "trailing-text": (b'{"queries": ["a"]} trailing', 400, "not valid JSON"),
    "unclosed": (b'{"queries": ["a"]', 400, "not valid JSON"),
    "binary": (b"\x00\x01", 400, "not valid JSON"),
    "bom": (b"\xef\xbb\xbf{}", 400, "not valid JSON"),
    "invalid-utf8": (b'{"queries": ["\xff"]}', 400, "not valid UTF-8"),
    "form-instead-of-json": (b"query=good", 400, "to score one text, send a GET (with curl -d, add -X GET)"),
    "nan": (b"NaN", 400, 'POST takes a JSON object {"queries"'),
    "huge-number": (b'{"queries": [' + b"9" * 5000 + b"]}", 400, "a number too long to read"),
    "deep-arrays": (b"[" * 100_000, 400, "nested too deeply"),
    "deep-objects": (b'{"a":' * 100_000, 400, "nested too deeply"),
    "deep-but-closed": (b'{"queries": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400, "nested too deeply"),
    "null": (None, 400, 'POST takes a JSON object {"queries": ["...", ...]}. For one text, GET ?query='),
    "number": (1, 400, 'POST takes a JSON object {"queries"'),
    "string": ("text", 400, 'POST takes a JSON object {"queries"'),
    "array": (["query"], 400, 'POST takes a JSON object {"queries"'),
    "empty-object": ({}, 400, 'POST takes a JSON object {"queries"'),
    "one-query": ({"query": "one"}, 400, 'POST takes a JSON object {"queries"'),
    "queries-null": ({"queries": None}, 400, "queries must be an array of strings, not null"),
    "queries-string": ({"queries": "text"}, 400, "queries must be an array of strings"),
    "queries-object": ({"queries": {"0": "a"}}, 400, "queries must be an array of strings, not an object"),
    "queries-empty": ({"queries": []}, 400, "queries is empty; send at least one text"),
    "nested-array": ({"queries": [["a"]]}, 400, "queries[0] must be a string, not an array"),
    "object-element": ({"queries": [{"query": "a"}]}, 400, "queries[0] must be a string, not an object"),
    "null-element": ({"queries": ["good", "fine", None]}, 400, "queries[2] must be a string, not null"),
    "number-element": ({"queries": ["good", 7]}, 400, "queries[1] must be a string, not a number"),
    "empty-element": ({"queries": ["good", ""]}, 400, "queries[1] is empty"),
    "blank-element": ({"queries": ["good", " \n "]}, 400, "queries[1] is empty or only whitespace"),
    "too-many": ({"queries": ["good"] * 1001}, 413, "queries holds 1,001 texts; the limit is 1,000"),
    "long-element": ({"queries": ["good"] * 10 + ["x" * 10_001]}, 413,
                     "queries[10] is 10,001 characters long; the limit is 10,000"),
}


@pytest.mark.parametrize("body, status, hint", BAD_POSTS.values(), ids=BAD_POSTS)
@pytest.mark.parametrize("path", TEXT_ROUTES.values())
def test_an_unusable_post_answers_a_json_error_naming_the_problem(client, path, body, status, hint):
    data = body if isinstance(body, bytes) else json.dumps(body)
    assert_error_response(client.post(path, data=data, content_type="application/json"), status, hint)


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/", "GET, POST"), ("PUT", "/", "GET, POST"), ("PATCH", "/", "GET, POST"),
    ("DELETE", "/fine-grained", "GET, POST"), ("POST", "/health", "GET"), ("DELETE", "/models", "GET"),
    ("PUT", "/openapi.json", "GET"),
], ids=lambda v: v.replace("/", "_") if isinstance(v, str) else v)
def test_a_wrong_method_answers_405_json_naming_the_allowed_ones(client, method, path, allow):
    response = client.open(path, method=method)
    assert_error_response(response, 405, f"{method} is not allowed here; this endpoint accepts ")
    assert set(response.headers["Allow"].split(", ")) >= set(allow.split(", "))
    assert all(m in response.get_json()["message"] for m in allow.split(", "))


def test_a_body_over_max_content_length_answers_413_json_naming_the_limit(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "MAX_CONTENT_LENGTH": 100}).test_client()
    assert client.post("/", json={"queries": ["good"] * 5}).status_code == 200
    response = client.post("/", json={"queries": ["good"] * 50})
    assert_error_response(response, 413, "The request body is over 100 bytes. Send fewer or shorter texts")


def test_an_unexpected_error_answers_500_json_without_internals_and_is_logged(model_dir, monkeypatch, caplog):
    def broken(self, texts, **options):
        raise RuntimeError(f"secret detail in {model_dir}")

    monkeypatch.setattr(model.TextClassifier, "score", broken)
    response = create_app({"MODEL_DIR": str(model_dir)}).test_client().get("/?query=good")
    assert_error_response(response, 500, "Internal error; it has been logged.")
    assert "secret" not in response.get_data(as_text=True)
    logged = [r for r in caplog.records if r.name == "sentiment" and r.levelname == "ERROR"]
    assert [r.getMessage() for r in logged] == ["unhandled error on GET /"]
    assert "secret detail" in str(logged[0].exc_info[1])  # the operator gets what the caller does not


# --- The optional bearer token ------------------------------------------------------------------

@pytest.fixture
def token_client(model_dir):
    """A client of an app that requires TOKEN."""
    return create_app({"MODEL_DIR": str(model_dir), "API_TOKEN": TOKEN}).test_client()


PROTECTED = [("GET", "/?query=good"), ("GET", "/fine-grained?query=good"), ("POST", "/"), ("POST", "/fine-grained"),
             ("GET", "/models")]


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                           f"Bearer {TOKEN[:-1]}", "Bearer", "Bearer caf\u00e9", TOKEN],
                         ids=["none", "wrong", "basic", "longer", "shorter", "empty", "non-ascii", "no-scheme"])
def test_with_a_token_set_scoring_and_models_answer_401_json_without_it(token_client, method, path,
                                                                        authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = token_client.open(path, method=method, headers=headers, json={"queries": ["good"]})
    assert_error_response(response, 401, "This endpoint needs the API token: send the header Authorization: Bearer")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="sentiment"'
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_with_a_token_set_the_right_token_is_let_in(token_client, method, path, scheme):
    response = token_client.open(path, method=method, headers={"Authorization": f"{scheme} {TOKEN}"},
                                 json={"queries": ["good"]})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs", "/demo", "/metrics"])
def test_with_a_token_set_health_the_document_the_pages_and_metrics_stay_open(token_client, path):
    assert token_client.get(path).status_code == 200


def test_with_a_token_set_an_unknown_path_is_still_a_404_not_a_401(token_client):
    assert_error_response(token_client.get("/no-such-thing"), 404, "No such endpoint")


# --- Explanations --------------------------------------------------------------------------------

@pytest.mark.parametrize("request_kwargs", [
    {"path": "/", "query_string": {"query": "a superb film", "explain": "true"}},
    {"path": "/", "query_string": {"query": "a superb film", "explain": "1"}},
    {"path": "/", "data": {"query": "a superb film", "explain": "true"}},
    {"path": "/", "json": {"query": "a superb film", "explain": True}},
], ids=["query string", "query string 1", "form body", "json body"])
def test_explain_adds_the_models_explanation_to_a_get(client, model_dir, request_kwargs):
    answer = client.get(**request_kwargs).get_json()
    expected = kinds.load(model_dir / "binary").predict(["a superb film"], explain=True)[0]
    assert scored(answer) == expected and answer["explanation"]["against"] == "Negative"


def test_explain_in_a_post_explains_every_answer_in_order(client, model_dir):
    texts = ["a superb film", "dull and tedious", "zzzqx"]
    answers = client.post("/fine-grained", json={"queries": texts, "explain": True}).get_json()["predictions"]
    expected = kinds.load(model_dir / "fine-grained").predict(texts, explain=True)
    assert [scored(a) for a in answers] == expected
    assert answers[2]["explanation"]["terms"] == [] and answers[2]["explanation"]["unknown"] == ["zzzqx"]


@pytest.mark.parametrize("request_kwargs", [
    {"path": "/", "query_string": {"query": "fine"}},
    {"path": "/", "query_string": {"query": "fine", "explain": "false"}},
])
def test_without_explain_the_answer_is_exactly_the_plain_one(client, request_kwargs):
    assert set(client.get(**request_kwargs).get_json()) == {"prediction", "confidence", "probabilities", "id",
                                                            "model_version"}


@pytest.mark.parametrize("request_kwargs, message", [
    ({"path": "/", "query_string": {"query": "fine", "explain": "yes"}}, "explain='yes' is not a flag"),
    ({"path": "/", "json": {"query": "fine", "explain": "true"}}, "explain must be true or false in JSON"),
    ({"method": "POST", "path": "/", "json": {"queries": ["fine"], "explain": 1}},
     "explain must be true or false in JSON, not a number"),
])
def test_a_bad_explain_answers_400_saying_what_is_accepted(client, request_kwargs, message):
    response = client.open(**request_kwargs)
    assert response.status_code == 400 and message in response.get_json()["message"]


def test_models_show_each_labels_top_terms(client, model_dir):
    served = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    for name in TEXT_ROUTES:
        assert served[name]["top_terms"] == kinds.load(model_dir / name).top_terms


# --- Ids, versions and feedback ------------------------------------------------------------------

def test_every_answer_carries_a_unique_id_and_the_version_models_shows(client):
    versions = {m["name"]: m["version"] for m in client.get("/models").get_json()["models"]}
    answers = [client.get("/", query_string={"query": "superb"}).get_json(),
               client.get("/fine-grained", query_string={"query": "superb"}).get_json(),
               *client.post("/", json={"queries": ["a", "superb", "a"]}).get_json()["predictions"]]
    assert len({a["id"] for a in answers}) == 5 and all(0 < len(a["id"]) <= 64 for a in answers)
    assert [a["model_version"] for a in answers] == [versions["binary"], versions["fine-grained"]] + [
        versions["binary"]] * 3
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", versions["binary"])


def test_feedback_for_an_answer_is_accepted_counted_and_says_what_it_recorded(client):
    answer = client.get("/", query_string={"query": "brilliant superb"}).get_json()
    response = client.post("/feedback", json={"id": answer["id"], "label": "Negative"})
    assert response.status_code == 202
    assert response.get_json() == {"accepted": [{"id": answer["id"], "model": "binary", "predicted": "Positive",
                                                 "model_version": answer["model_version"], "label": "Negative"}]}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'sentiment_feedback_total{actual="Negative",model="binary",predicted="Positive"} 1.0' in metrics


def test_a_feedback_batch_takes_labels_of_each_answering_model(client):
    binary = client.get("/", query_string={"query": "awful"}).get_json()
    fine = client.get("/fine-grained", query_string={"query": "awful"}).get_json()
    response = client.post("/feedback", json={"feedback": [{"id": binary["id"], "label": "Negative"},
                                                           {"id": fine["id"], "label": "Somewhat negative"}]})
    assert response.status_code == 202
    assert [(a["model"], a["label"]) for a in response.get_json()["accepted"]] == [
        ("binary", "Negative"), ("fine-grained", "Somewhat negative")]


def test_a_label_the_answering_model_lacks_is_a_400_listing_its_labels_and_nothing_is_recorded(client):
    good = client.get("/", query_string={"query": "awful"}).get_json()
    response = client.post("/feedback", json={"feedback": [{"id": good["id"], "label": "Negative"},
                                                           {"id": good["id"], "label": "Neutral"}]})
    assert_error_response(response, 400, "feedback[1]: 'Neutral' is not a label of the binary model")
    single = client.post("/feedback", json={"id": good["id"], "label": "Neutral"})
    assert_error_response(single, 400, "'Neutral' is not a label of the binary model, which gave this answer")
    assert "send one of: Negative, Positive." in response.get_json()["message"]
    assert "sentiment_feedback_total{" not in client.get("/metrics").get_data(as_text=True)


def test_an_id_never_issued_here_or_past_the_retention_answers_404_saying_so(client, own_prediction_log):
    from serving import ids, prediction_log

    signer = ids.Signer(prediction_log.PredictionLog(own_prediction_log).prepare())  # the app's own key
    old = signer.issue(model_index=0, label_index=0, version=b"\0" * 4, now=time.time() - 31 * 86_400)
    forged = ids.Signer(bytes(32)).issue(model_index=0, label_index=0, version=b"\0" * 4, now=time.time())
    for answer_id, says in [("made-up", "No answer with id 'made-up' was given by this service"),
                            (forged, "was given by this service"), (old, "older than the 30 days")]:
        assert_error_response(client.post("/feedback", json={"id": answer_id, "label": "Positive"}), 404, says)


# Malformed feedback bodies: (the body as JSON, or bytes; what the message says)
BAD_FEEDBACK = {
    "empty": (b"", "the body is empty"),
    "not json": (b"id=1&label=Positive", "not valid JSON"),
    "an array": ([{"id": "x", "label": "Positive"}], "must be an object"),
    "no label": ({"id": "x"}, "the body has no label"),
    "nothing": ({}, "has no id and no label"),
    "a number id": ({"id": 7, "label": "Positive"}, "id must be a string, not a number"),
    "a null label": ({"id": "x", "label": None}, "label must be a string, not null"),
    "a batch item's null id": ({"feedback": [{"id": None, "label": "x"}]}, "feedback[0].id must be a string"),
    "feedback not a list": ({"feedback": {"id": "x"}}, "feedback must be an array"),
    "an empty batch": ({"feedback": []}, "feedback is empty"),
    "a bad item": ({"feedback": [{"id": "x", "label": "Positive"}, "Positive"]}, "feedback[1] must be an object"),
}


@pytest.mark.parametrize("body, says", BAD_FEEDBACK.values(), ids=BAD_FEEDBACK)
def test_a_malformed_feedback_body_answers_400_saying_what_to_send(client, body, says):
    kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, bytes) else {"json": body}
    assert_error_response(client.post("/feedback", **kwargs), 400, says)


ITEM = {"id": "x", "label": "Positive"}
ONE_OR_THE_OTHER = 'send one item {"id": "...", "label": "..."} or a batch {"feedback": [...]}, not both.'
# Bodies with a property outside their form: (the body; the message). The first is what schemathesis sent,
# an item with a batch over the limit beside it, which the server once read as the batch (413).
OUTSIDE_THE_FORM = {
    "an item and a batch": ({**ITEM, "feedback": [ITEM] * 1001},
                            f'The body has unexpected properties "id", "label": {ONE_OR_THE_OTHER}'),
    "an item with more": ({**ITEM, "note": "late"}, f'The body has unexpected properties "note": {ONE_OR_THE_OTHER}'),
    "a batch with more": ({"feedback": [ITEM], "explain": True},
                          f'The body has unexpected properties "explain": {ONE_OR_THE_OTHER}'),
    "a scoring body": ({"queries": ["good"]}, f'The body has unexpected properties "queries": {ONE_OR_THE_OTHER}'),
    "many more": ({**ITEM, **dict.fromkeys("abcdefg", 1)},
                  f'The body has unexpected properties "a", "b", "c", "d", "e" and 2 more: {ONE_OR_THE_OTHER}'),
    "a batch item with more": ({"feedback": [ITEM] * 3 + [{**ITEM, "model": "binary"}]},
                               'feedback[3] has unexpected properties "model": send each item as '
                               '{"id": "...", "label": "..."} (or "value": a number) and nothing more.'),
}


@pytest.mark.parametrize("body, message", OUTSIDE_THE_FORM.values(), ids=OUTSIDE_THE_FORM)
def test_a_feedback_body_with_a_property_outside_its_form_answers_400_naming_it(client, body, message):
    response = client.post("/feedback", json=body)
    assert_error_response(response, 400)
    assert response.get_json()["message"] == message


def test_a_feedback_batch_over_the_limit_answers_413(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "MAX_BATCH_SIZE": 3}).test_client()
    answer = client.get("/", query_string={"query": "fine"}).get_json()
    response = client.post("/feedback", json={"feedback": [{"id": answer["id"], "label": "Positive"}] * 4})
    assert_error_response(response, 413, "feedback holds 4 items; the limit is 3 per request")


def test_without_a_prediction_log_answers_keep_their_ids_and_feedback_says_why_it_is_refused(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "PREDICTION_LOG": "off"}).test_client()
    answer = client.get("/", query_string={"query": "fine"}).get_json()
    assert answer["id"] and answer["model_version"]
    assert_error_response(client.post("/feedback", json={"id": answer["id"], "label": "Positive"}), 404,
                          "keeps no prediction log (PREDICTION_LOG=off)")
    assert [m["feedback"] for m in client.get("/models").get_json()["models"]] == [None, None, None]


def test_models_shows_each_models_feedback_count_and_accuracy_from_the_database(recording, own_prediction_log):
    from serving import prediction_log

    client = recording.test_client()
    answers = client.post("/", json={"queries": ["awful worst", "brilliant superb", "dreadful"]}).get_json()
    sent = [{"id": a["id"], "label": label} for a, label in zip(answers["predictions"], ["Negative"] * 3)]
    assert client.post("/feedback", json={"feedback": sent}).status_code == 202
    flush(recording)
    assert len(prediction_log.read_feedback(own_prediction_log)) == 3
    models = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    assert models["binary"]["feedback"] == {"count": 3, "accuracy": round(2 / 3, 4), "days": 30}
    assert models["fine-grained"]["feedback"] == {"count": 0, "accuracy": None, "days": 30}


def test_each_scored_text_is_one_row_with_the_request_id_and_no_text(recording, own_prediction_log):
    from serving import lifecycle, prediction_log

    client = recording.test_client()
    log = recording.extensions[lifecycle.SERVICES][0]
    with client.get("/", query_string={"query": "superb"}, headers={"X-Request-ID": "req-42"}) as response:
        single = response.get_json()
        assert log.queued == 0  # queued only once the answer is sent: when the server closes it
    with client.post("/fine-grained", json={"queries": ["dull", "superb film"]}) as response:
        batch = response.get_json()["predictions"]
    flush(recording)
    rows = prediction_log.read_predictions(own_prediction_log).set_index("id")
    assert list(rows.index) == [single["id"]] + [a["id"] for a in batch]
    assert rows.loc[single["id"], "request_id"] == "req-42" and rows.loc[single["id"], "model"] == "binary"
    assert rows.loc[batch[1]["id"], "text_length"] == len("superb film") and rows["text"].isna().all()
    assert rows.loc[batch[1]["id"], "model_version"] == batch[1]["model_version"]
    assert json.loads(rows.loc[batch[1]["id"], "probabilities"]) == batch[1]["probabilities"]


def test_feedback_needs_the_token_like_scoring(token_client):
    assert_error_response(token_client.post("/feedback", json={"id": "x", "label": "Positive"}), 401, "API token")


def test_an_explanation_names_a_bounded_number_of_unknown_terms_and_counts_them_all(client):
    words = ["q" + "".join(letters) for letters in itertools.product(string.ascii_lowercase, repeat=3)][:2000]
    body = json.dumps({"queries": [" ".join(words)] * 100, "explain": True})  # 1 MB: 100 texts of 9,999 characters
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 200 and len(response.get_data()) < len(body) / 5
    explanation = response.get_json()["predictions"][0]["explanation"]
    assert explanation["unknown"] == words[:text_scoring.MAX_UNKNOWN] and explanation["unknown_count"] == 2000
