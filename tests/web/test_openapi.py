"""The contract at /openapi.json against the app that serves it: a valid OpenAPI 3.1 document whose
paths, methods, limits and token requirements are the app's own.

The document is compared with what the app does (its URL map, its answers with API_TOKEN set), never
with a list kept here. schemathesis fuzzing a live gunicorn against it is in e2e/test_openapi_live.py.
"""
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from app import create_app
from web.factory import ADDED_ENDPOINT

TOKEN = "s3cret"
# Requests that would score if they got through, so only the token check can refuse them.
BODIES = {"get": {"query_string": {"query": "a superb film"}}, "post": {"json": {"queries": ["a superb film"]}}}


def url_map_operations(app, added=()):
    """{(OpenAPI path, method)} of every rule the app serves, HEAD and OPTIONS aside (Flask adds them); the
    rule of added models stands for their routes (`added`), each answering GET and POST."""
    return {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
            for rule in app.url_map.iter_rules() if rule.endpoint != ADDED_ENDPOINT
            for method in rule.methods - {"HEAD", "OPTIONS"}} | {(route, m) for route in added for m in ("get", "post")}


def document_operations(document):
    """{(path, method): operation} of an OpenAPI document."""
    return {(path, method): operation for path, operations in document["paths"].items()
            for method, operation in operations.items()}


def concrete(path, operation):
    """A URL for an OpenAPI path: each path parameter filled with the first value its schema allows, or
    its first example."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter["schema"]
            path = path.replace("{" + parameter["name"] + "}", (schema.get("enum") or schema["examples"])[0])
    return path


def test_the_served_document_is_valid_openapi_3_1(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_has_exactly_the_paths_and_methods_the_app_serves(app, client):
    document = client.get("/openapi.json").get_json()
    assert set(document_operations(document)) == url_map_operations(app)


def test_every_documented_get_answers_a_documented_status(client):
    document = client.get("/openapi.json").get_json()
    for (path, method), operation in document_operations(document).items():
        if method == "get":
            status = client.get(concrete(path, operation), **BODIES["get"]).status_code
            assert str(status) in operation["responses"], (path, status)


def test_the_limits_in_the_document_are_the_servers_settings(model_dir):
    app = create_app({"MODEL_DIR": str(model_dir), "MAX_QUERY_LENGTH": 123, "MAX_BATCH_SIZE": 7})
    schemas = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Text"]["maxLength"] == 123
    assert schemas["Batch"]["properties"]["queries"]["maxItems"] == 7


@pytest.mark.parametrize("token", [TOKEN, None], ids=["API_TOKEN-set", "no-API_TOKEN"])
def test_the_operations_the_document_secures_are_exactly_those_that_answer_401_without_the_token(model_dir, token):
    client = create_app({"MODEL_DIR": str(model_dir), "API_TOKEN": token}).test_client()
    document = client.get("/openapi.json").get_json()
    validate(document)
    assert TOKEN not in str(document)
    assert ("securitySchemes" in document["components"]) == (token is not None)
    secured = set()
    for (path, method), operation in document_operations(document).items():
        url = concrete(path, operation)
        refused = client.open(url, method=method.upper(), **BODIES[method]).status_code == 401
        assert ("security" in operation) == refused, f"{method.upper()} {path}"
        assert ("401" in operation["responses"]) == refused, f"{method.upper()} {path}"
        if refused:
            secured.add((path, method))
            with_token = client.open(url, method=method.upper(), headers={"Authorization": f"Bearer {TOKEN}"},
                                     **BODIES[method])
            # 400: /feedback's body here names no answer, nor is it an inference request; 404: the example
            # version is not the one served. Past the token either way.
            assert with_token.status_code in (200, 400, 404), f"{method.upper()} {path} with the token"
    # With a token, scoring and /models are behind it: the check above is not vacuous.
    assert bool(secured) == (token is not None)


ITEM = {"id": "x", "label": "Positive"}
# Feedback bodies with a property outside their form; the first is what schemathesis once sent, valid for the
# single-item form then, which the server read as a batch over the limit.
OUTSIDE_THE_FORM = {
    "an item and a batch": {**ITEM, "feedback": [ITEM] * 1001},
    "an item with more": {**ITEM, "note": "late"},
    "a batch with more": {"feedback": [ITEM], "explain": True},
    "a batch item with more": {"feedback": [ITEM, {**ITEM, "model": "binary"}]},
}


def feedback_body_validator(document):
    """A JSON Schema validator of POST /feedback's request body, its references resolved in `document`."""
    schema = document["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def test_the_document_takes_both_feedback_forms(client):
    validator = feedback_body_validator(client.get("/openapi.json").get_json())
    validator.validate(ITEM)
    validator.validate({"feedback": [ITEM, ITEM]})


@pytest.mark.parametrize("body", OUTSIDE_THE_FORM.values(), ids=OUTSIDE_THE_FORM)
def test_a_feedback_body_the_server_refuses_for_its_shape_breaks_the_document_too(client, body):
    validator = feedback_body_validator(client.get("/openapi.json").get_json())
    assert not validator.is_valid(body)
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert "unexpected properties" in response.get_json()["message"]
