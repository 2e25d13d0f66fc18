"""What browser clients and operators see of the per-request middleware (operations.py): request ids,
headers for a JSON API, CORS, and the client the access line names. Through Flask's test client and as
units; across real gunicorn workers in e2e/test_operations_live.py."""
import io
import re

import pytest
from werkzeug.test import Client

from app import create_app
from serving.logs import AccessLog
from serving.metrics import Metrics, use_values_in
from web import operations
from web.pages import PAGE_POLICY

RANDOM_ID = re.compile(r"[0-9a-f]{32}")


# --- Request ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("GET", "/?query=brilliant", 200), ("GET", "/?query=%20", 400), ("GET", "/no-such-thing", 404),
    ("DELETE", "/", 405), ("GET", "/metrics", 200), ("GET", "/demo", 200),
], ids=["answer", "bad-query", "unknown-path", "wrong-method", "metrics", "page"])
def test_the_callers_request_id_is_echoed_on_answers_and_errors_alike(client, method, path, status):
    response = client.open(path, method=method, headers={"X-Request-ID": "checkout-42.a"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "checkout-42.a"


@pytest.mark.parametrize("given", [None, "", "has space", "<script>", "x" * 129, "a\tb", "caf\u00e9"], ids=[
    "absent", "empty", "space", "markup", "too-long", "tab", "non-ascii"])
def test_a_missing_or_unusable_request_id_is_replaced_by_a_fresh_random_one(client, given):
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/?query=good", headers=headers).headers["X-Request-ID"]
    second = client.get("/?query=good", headers=headers).headers["X-Request-ID"]
    assert RANDOM_ID.fullmatch(first) and RANDOM_ID.fullmatch(second)
    assert first != second


# --- Headers for a JSON API ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/?query=good", "/?query=", "/nowhere", "/health", "/models", "/openapi.json"])
def test_every_json_answer_carries_headers_for_a_json_api(client, path):
    response = client.get(path)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_pages_keep_their_own_cache_and_content_policy(client):
    response = client.get("/demo")
    assert response.headers["Cache-Control"] == "no-cache, max-age=0"
    assert response.headers.get_all("Content-Security-Policy") == [PAGE_POLICY]  # not replaced, not added to
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- CORS ----------------------------------------------------------------------------------------

def test_by_default_any_origin_may_read_answers_and_the_request_id(client):
    response = client.get("/?query=good", headers={"Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-ID, Inference-Header-Content-Length"
    assert "Vary" not in response.headers  # the same answer for every origin: caches may share it


@pytest.fixture
def strict_client(model_dir):
    """A client of an app that lets only two origins in."""
    app = create_app({"MODEL_DIR": str(model_dir), "CORS_ORIGINS": ["https://a.example", "https://b.example"]})
    return app.test_client()


@pytest.mark.parametrize("path, status", [("/?query=good", 200), ("/?query=%20", 400), ("/nowhere", 404)],
                         ids=["answer", "error", "unknown-path"])
def test_an_allowed_origin_is_named_on_answers_and_errors_so_scripts_can_read_the_message(strict_client, path,
                                                                                          status):
    response = strict_client.get(path, headers={"Origin": "https://b.example"})
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-ID, Inference-Header-Content-Length"


def test_a_denied_origin_gets_no_cors_headers_so_the_browser_hides_the_answer(strict_client):
    response = strict_client.get("/?query=good", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control-")]


@pytest.mark.parametrize("path", ["/", "/feedback"])
@pytest.mark.parametrize("origin, allowed", [("https://a.example", True), ("https://evil.example", False)])
def test_a_preflight_for_a_json_post_is_answered_for_allowed_origins_only(strict_client, origin, allowed, path):
    response = strict_client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"})
    assert response.status_code == 200
    if allowed:
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    else:
        assert not [name for name in response.headers.keys() if name.startswith("Access-Control-")]


def test_with_named_origins_every_answer_varies_on_origin_so_caches_keep_them_apart(strict_client):
    for headers in ({}, {"Origin": "https://a.example"}, {"Origin": "https://evil.example"}):
        assert strict_client.get("/health", headers=headers).headers.get_all("Vary") == ["Origin"]


def test_an_answer_that_already_varies_keeps_its_vary_with_origin_added_once():
    def varying_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept-Encoding")])
        return [b"ok"]

    use_values_in(None)
    wrapped = operations.Operations(varying_app, metrics=Metrics(),
                                    access_log=AccessLog(json_lines=False, stream=io.StringIO()),
                                    cors_origins=("https://a.example",))
    response = Client(wrapped).get("/", headers={"Origin": "https://a.example"})
    assert response.headers.get_all("Vary") == ["Accept-Encoding, Origin"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"


def test_a_preflight_allows_exactly_the_headers_the_api_reads(strict_client):
    response = strict_client.options("/", headers={
        "Origin": "https://a.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-request-id"})
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type", "x-request-id", "inference-header-content-length"}
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_with_an_api_token_a_preflight_without_it_is_still_answered_but_the_request_needs_it(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "API_TOKEN": "s3cret"}).test_client()
    preflight = client.options("/", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200  # browsers never send credentials on a preflight
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    refused = client.get("/?query=good", headers={"Origin": "https://app.example"})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"
    answer = client.get("/?query=good", headers={"Origin": "https://app.example", "Authorization": "Bearer s3cret"})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"


# --- The client the access line names ------------------------------------------------------------

@pytest.mark.parametrize("trusted, peer, forwarded, client", [
    (None, "127.0.0.1", "203.0.113.9", "203.0.113.9"),  # the default trusts a proxy on loopback
    (None, "10.0.0.5", "203.0.113.9", "10.0.0.5"),  # anyone else's claim is ignored
    ("10.0.0.5", "10.0.0.5", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the proxy's own hop is believed
    ("*", "10.0.0.7", "203.0.113.9", "203.0.113.9"),
    ("*", "10.0.0.7", "not-an-address id=forged", "10.0.0.7"),  # junk is never written
    (None, "127.0.0.1", None, "127.0.0.1"),
], ids=["loopback proxy", "untrusted peer", "last hop", "any proxy", "junk", "no header"])
def test_the_access_line_names_the_client_a_trusted_proxy_saw(model_dir, capsys, trusted, peer, forwarded, client):
    config = {"MODEL_DIR": str(model_dir), **({"FORWARDED_ALLOW_IPS": trusted} if trusted else {})}
    test_client = create_app(config).test_client()
    capsys.readouterr()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    test_client.get("/health", headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert capsys.readouterr().out.rstrip("\n").endswith(f" client={client}")


def test_a_page_on_an_allowed_origin_can_send_feedback_and_read_the_answer(strict_client):
    answer = strict_client.get("/?query=good", headers={"Origin": "https://a.example"}).get_json()
    sent = strict_client.post("/feedback", json={"id": answer["id"], "label": "Positive"},
                              headers={"Origin": "https://a.example"})
    assert sent.status_code == 202 and sent.headers["Access-Control-Allow-Origin"] == "https://a.example"
