"""Security: no debugger, no internals in answers, the optional bearer token, and headers for a JSON API."""
import os
import subprocess
import sys
import time

import pytest
import requests
import sklearn

import model
from app import create_app
from support import ROOT, Server, free_port

TOKEN = "correct-horse-battery-staple"
# Werkzeug's debugger serves its own JavaScript to any URL with these parameters when debug is on.
DEBUGGER_PROBE = "/?__debugger__=yes&cmd=resource&f=debugger.js"


@pytest.fixture
def token_client(model_dir):
    """A client of an app that requires TOKEN."""
    return create_app({"MODEL_DIR": str(model_dir), "API_TOKEN": TOKEN}).test_client()


def start_dev_server(model_dir, *args, env=None):
    """`python app.py` on a free port; return (process, url) once it answers /health."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=ROOT,
                               env={**os.environ, "MODEL_DIR": str(model_dir), **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url + "/health", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("python app.py did not start")


@pytest.mark.parametrize("args, env, debugger_served", [
    ((), {"FLASK_DEBUG": "1"}, False),
    (("--debug",), {}, True),  # the probe itself works: with --debug the debugger answers it
], ids=["default-even-with-FLASK_DEBUG", "explicit---debug"])
def test_the_debugger_is_off_by_default_and_unreachable_by_a_request(model_dir, args, env, debugger_served):
    process, url = start_dev_server(model_dir, *args, env=env)
    try:
        response = requests.get(url + DEBUGGER_PROBE, timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert ("javascript" in response.headers["Content-Type"]) == debugger_served
    if not debugger_served:
        assert response.status_code == 400 and response.json()["message"].startswith("Missing query")


def test_gunicorn_serves_no_debugger(live_server):
    response = requests.get(live_server.url + DEBUGGER_PROBE, timeout=5)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"


def test_an_unexpected_error_answers_500_json_without_internals(model_dir, monkeypatch):
    def broken(self, texts):
        raise RuntimeError(f"secret detail in {model_dir}")

    monkeypatch.setattr(model.SentimentModel, "predict", broken)
    response = create_app({"MODEL_DIR": str(model_dir)}).test_client().get("/?query=good")
    assert response.status_code == 500
    assert response.get_json() == {
        "message": "Internal error; it has been logged. Try again, and report it if it persists."}
    assert "secret" not in response.get_data(as_text=True)


def test_no_answer_carries_versions_or_paths(live_server, model_dir):
    probes = [("GET", "/?query=good", None), ("GET", "/fine-grained?query=good", None), ("GET", "/health", None),
              ("GET", "/models", None), ("GET", "/openapi.json", None), ("GET", "/nowhere", None),
              ("DELETE", "/", None), ("POST", "/", b"{"), ("GET", "/?query=%FF", None)]
    secrets = [str(ROOT), str(model_dir), str(model_dir.resolve()), sys.version.split()[0], sklearn.__version__,
               "Werkzeug", "Python/", "Traceback", "site-packages"]
    for method, path, body in probes:
        response = requests.request(method, live_server.url + path, data=body, timeout=5)
        assert response.status_code < 500
        everything = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        for secret in secrets:
            assert secret not in everything, (method, path, secret)
        assert not any(ch.isdigit() for ch in response.headers.get("Server", "")), response.headers["Server"]


@pytest.mark.parametrize("method, path", [("GET", "/?query=good"), ("GET", "/fine-grained?query=good"),
                                          ("POST", "/"), ("GET", "/models")])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                           "Bearer", "Bearer caf\u00e9"],
                         ids=["none", "wrong", "basic", "longer", "empty", "non-ascii"])
def test_with_a_token_set_scoring_and_models_answer_401_json_without_it(token_client, method, path,
                                                                        authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = token_client.open(path, method=method, headers=headers, json={"queries": ["good"]})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.get_json()["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("method, path", [("GET", "/?query=good"), ("GET", "/fine-grained?query=good"),
                                          ("POST", "/"), ("GET", "/models")])
def test_with_a_token_set_the_right_token_is_let_in(token_client, method, path):
    for scheme in ("Bearer", "bearer"):
        response = token_client.open(path, method=method, headers={"Authorization": f"{scheme} {TOKEN}"},
                                     json={"queries": ["good"]})
        assert response.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/openapi.json"])
def test_with_a_token_set_health_and_the_document_stay_open(token_client, path):
    assert token_client.get(path).status_code == 200


def test_the_token_is_read_from_api_token_by_gunicorn(model_dir):
    server = Server(model_dir, env={"API_TOKEN": TOKEN}).wait_healthy()
    try:
        refused = requests.get(server.url + "/?query=good", timeout=5)
        allowed = requests.get(server.url + "/?query=good", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    finally:
        server.stop()
    assert refused.status_code == 401 and refused.json()["message"]
    assert allowed.status_code == 200


@pytest.mark.parametrize("path", ["/?query=good", "/?query=", "/nowhere", "/health", "/models"])
def test_every_json_answer_carries_headers_for_a_json_api(client, path):
    response = client.get(path)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
