"""The contract at /openapi.json: a valid OpenAPI 3.1 document that the live server keeps.

schemathesis fuzzes the real gunicorn from the document, bounded in examples and time: no 5xx, no
undocumented status, content type, header or body shape. Two of its checks are left out on purpose:
"schema-valid request rejected" and "schema-violating request accepted". JSON Schema cannot say "the
text comes from exactly one of three places", and the service answers 413 (not 400) for texts and
batches over their limits, so those checks would flag the documented behaviour.
"""
import re
import subprocess
import sys

import pytest
import requests
from openapi_spec_validator import validate

import openapi
from app import create_app, load_config

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "unsupported_method",
    "allow_header_conformance",
])


def test_the_served_document_is_valid_openapi_3_1(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_of_the_app_is_documented_with_its_methods(app, client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for rule in app.url_map.iter_rules():
        methods = {m.lower() for m in rule.methods} - {"head", "options"}
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # Flask's /docs/<name> is /docs/{name}
        assert path in paths, f"{path} is served but not in /openapi.json"
        assert methods <= set(paths[path]), f"{path}: {methods} not all documented"


def test_the_limits_in_the_document_are_the_servers_settings(model_dir):
    app = create_app({"MODEL_DIR": str(model_dir), "MAX_QUERY_LENGTH": 123, "MAX_BATCH_SIZE": 7})
    schemas = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Text"]["maxLength"] == 123
    assert schemas["Batch"]["properties"]["queries"]["maxItems"] == 7


def test_with_a_token_the_document_asks_for_it_on_scoring_and_models_only():
    settings = {**load_config({}), "API_TOKEN": "s3cret"}
    document = openapi.openapi_document(settings)
    validate(document)
    assert document["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert "s3cret" not in str(document)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert ("security" in operation) == (path in openapi.PROTECTED_PATHS), path
            assert ("401" in operation["responses"]) == (path in openapi.PROTECTED_PATHS), path


def test_without_a_token_the_document_asks_for_none():
    document = openapi.openapi_document(load_config({}))
    assert "securitySchemes" not in document["components"]
    assert not any("security" in op for ops in document["paths"].values() for op in ops.values())


def test_schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document(live_server, tmp_path):
    paths = requests.get(live_server.url + "/openapi.json", timeout=5).json()["paths"]
    # Paths another part of the service may add (documented already) are fuzzed once they are served.
    absent = [p for p in paths if requests.get(live_server.url + p, timeout=5).status_code == 404]
    command = [sys.executable, "-m", "schemathesis.cli", "run", live_server.url + "/openapi.json",
               "--checks", CHECKS, "--max-examples", "50", "--max-time", "25",
               "--request-timeout", "10", "--generation-database", "none", "--no-color",
               *[arg for path in absent for arg in ("--exclude-path", path)]]
    # cwd=tmp_path: schemathesis and hypothesis write their caches into the working directory.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert requests.get(live_server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/", "/fine-grained"])
def test_a_url_over_the_servers_limit_answers_414_json_as_documented(live_server, path):
    response = requests.get(live_server.url + path, params={"query": "a" * 5000}, timeout=5)
    assert response.status_code == 414
    assert "in the body" in response.json()["message"]
    document = requests.get(live_server.url + "/openapi.json", timeout=5).json()
    assert "414" in document["paths"][path]["get"]["responses"]
