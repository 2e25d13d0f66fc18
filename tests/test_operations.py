"""What operators and browser clients see (operations.py): request ids, headers for a JSON API, CORS,
Prometheus metrics, the access log and the app's own log lines, and the pieces gunicorn's hooks call.
Through Flask's test client and as units; across real gunicorn workers in e2e/test_operations_live.py."""
import io
import json
import logging
import os
import re
import socket
import time
from datetime import UTC, datetime

import gunicorn.util
import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

import operations
from app import create_app
from operations import AccessLog, JsonLogFormatter
from pages import PAGE_POLICY

RANDOM_ID = re.compile(r"[0-9a-f]{32}")


def samples(metrics_text):
    """{(sample name, frozenset of label items): value} of a Prometheus text exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics_text) for s in family.samples}


def value(table, name, **labels):
    """One sample's value, 0 if absent."""
    return table.get((name, frozenset(labels.items())), 0)


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
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-ID"
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
    assert response.headers["Access-Control-Expose-Headers"] == "X-Request-ID"


def test_a_denied_origin_gets_no_cors_headers_so_the_browser_hides_the_answer(strict_client):
    response = strict_client.get("/?query=good", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control-")]


@pytest.mark.parametrize("origin, allowed", [("https://a.example", True), ("https://evil.example", False)])
def test_a_preflight_for_a_json_post_is_answered_for_allowed_origins_only(strict_client, origin, allowed):
    response = strict_client.options("/", headers={
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

    wrapped = operations.Operations(varying_app, metrics=operations.Metrics(),
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
    assert allowed == {"authorization", "content-type", "x-request-id"}
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


# --- Metrics -------------------------------------------------------------------------------------

def test_metrics_count_requests_predictions_and_describe_the_models(client):
    client.get("/?query=brilliant+superb")
    client.post("/", json={"queries": ["awful worst", "dreadful", "brilliant"]})
    client.get("/?query=%20")
    client.get("/fine-grained?query=masterpiece")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    table = samples(response.get_data(as_text=True))
    total = "sentiment_http_requests_total"
    assert value(table, total, endpoint="binary", method="GET", status="200") == 1
    assert value(table, total, endpoint="binary", method="POST", status="200") == 1
    assert value(table, total, endpoint="binary", method="GET", status="400") == 1
    assert value(table, total, endpoint="fine-grained", method="GET", status="200") == 1
    assert value(table, "sentiment_http_request_duration_seconds_count", endpoint="binary") == 3
    assert value(table, "sentiment_http_request_duration_seconds_bucket", endpoint="binary", le="+Inf") == 3
    predictions = "sentiment_predictions_total"
    assert value(table, predictions, model="binary", label="Positive") == 2
    assert value(table, predictions, model="binary", label="Negative") == 2
    assert value(table, predictions, model="fine-grained", label="Positive") == 1
    models = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    info = {dict(labels)["model"]: (dict(labels)["created_at"], v)
            for (name, labels), v in table.items() if name == "sentiment_model_info"}
    assert set(info) == {"binary", "fine-grained"}
    for name, (created_at, seconds) in info.items():
        assert created_at == models[name]["created_at"]
        # Unix seconds, for `time() - sentiment_model_info` alerts
        assert seconds == pytest.approx(datetime.fromisoformat(created_at).timestamp())


def test_each_app_counts_only_its_own_requests(model_dir):
    first, second = (create_app({"MODEL_DIR": str(model_dir)}).test_client() for _ in range(2))
    first.get("/?query=good")
    first.get("/?query=good")
    second.get("/?query=good")
    for client, count in ((first, 2), (second, 1)):
        table = samples(client.get("/metrics").get_data(as_text=True))
        assert value(table, "sentiment_http_requests_total", endpoint="binary", method="GET", status="200") == count


def test_made_up_methods_and_paths_do_not_create_new_metric_series(client):
    client.open("/", method="BREW")
    client.get("/a-random-path-1")
    client.get("/a-random-path-2")
    table = samples(client.get("/metrics").get_data(as_text=True))
    labels = [dict(lab) for name, lab in table if name == "sentiment_http_requests_total"]
    assert {"endpoint": "none", "method": "other", "status": "405"} in labels
    assert {"endpoint": "none", "method": "GET", "status": "404"} in labels
    assert value(table, "sentiment_http_requests_total", endpoint="none", method="GET", status="404") == 2
    assert not any("random" in v or v == "BREW" for lab in labels for v in lab.values())


# --- The access log ------------------------------------------------------------------------------

def test_each_request_writes_one_text_line_with_method_path_status_latency_model_id_and_client(client, capsys):
    capsys.readouterr()
    client.get("/fine-grained?query=secret+brilliant+words", headers={"X-Request-ID": "req-7"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sentiment\.access "
                        r"GET /fine-grained 200 \d+\.\d{3}ms model=fine-grained id=req-7 client=127\.0\.0\.1", lines[0])
    assert "secret" not in lines[0]  # texts people score stay out of the logs


def test_log_format_json_writes_one_json_object_per_request(model_dir, capsys):
    client = create_app({"MODEL_DIR": str(model_dir), "LOG_FORMAT": "json"}).test_client()
    capsys.readouterr()
    client.get("/?query=awful", headers={"X-Request-ID": "one"})
    client.get("/?query=%20", headers={"X-Request-ID": "two"})
    client.get("/health", headers={"X-Request-ID": "three"})
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["request_id"], e["method"], e["path"], e["status"], e["model"]) for e in entries] == [
        ("one", "GET", "/", 200, "binary"), ("two", "GET", "/", 400, "binary"), ("three", "GET", "/health", 200, None)]
    assert all(e["latency_ms"] >= 0 and e["level"] == "INFO" and e["logger"] == "sentiment.access" for e in entries)
    assert all("awful" not in json.dumps(e) for e in entries)


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_access_lines_carry_the_current_time_to_the_millisecond(json_lines):
    stream = io.StringIO()
    log = AccessLog(json_lines=json_lines, stream=stream)
    before = time.time()
    for request_id in ("a", "b"):
        log.write(request_id=request_id, method="GET", path="/", status=200, seconds=0.001, model_name="binary",
                  remote_addr="127.0.0.1")
    after = time.time()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        if json_lines:
            stamp = datetime.strptime(json.loads(line)["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        else:  # local time, like the `sentiment` logger's asctime
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        assert before - 0.002 <= stamp.timestamp() <= after + 0.002


@pytest.mark.parametrize("log_format", [
    "text", "json"])
def test_a_path_with_an_encoded_line_break_cannot_forge_an_access_line(model_dir, capsys, log_format):
    client = create_app({"MODEL_DIR": str(model_dir), "LOG_FORMAT": log_format}).test_client()
    capsys.readouterr()
    response = client.get("/a%0A2026-01-01 00:00:00,000 INFO sentiment.access GET /admin 200 0.1ms model=- id=x")
    assert response.status_code == 404
    assert len(capsys.readouterr().out.splitlines()) == 1


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


@pytest.mark.parametrize("binds, environ, warned", [
    (["127.0.0.1:5000"], {}, False),
    (["[::1]:5000", "localhost:5000"], {}, False),
    (["unix:/run/sentiment.sock"], {}, False),
    (["0.0.0.0:5000"], {}, True),
    (["10.1.2.3:5000"], {}, True),
    (["0.0.0.0:5000"], {"FORWARDED_ALLOW_IPS": "10.0.0.5"}, False),
])
def test_gunicorn_facing_a_network_with_no_proxy_declared_is_warned_about(binds, environ, warned):
    warning = operations.exposure_warning(binds, environ)
    assert (warning is not None) == warned
    if warned:
        assert "docs/running.md" in warning and "FORWARDED_ALLOW_IPS" in warning and binds[0] in warning


# --- The app's own log lines ---------------------------------------------------------------------

@pytest.fixture
def sentiment_logger():
    """The `sentiment` logger, put back as it was after the test has configured it."""
    logger = logging.getLogger("sentiment")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_json_log_lines_are_one_object_in_utc_with_the_exception_inside(sentiment_logger, capsys):
    operations.configure_logging("text")
    operations.configure_logging("json")  # configured again (a reload): replaces, never adds, a handler
    assert len(sentiment_logger.handlers) == 1
    try:
        raise ValueError("boom")
    except ValueError:
        sentiment_logger.exception("reload failed for %s", "binary")
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1
    entry = json.loads(out)
    assert list(entry) == ["time", "level", "logger", "message", "exception"]
    assert entry["level"] == "ERROR" and entry["logger"] == "sentiment"
    assert entry["message"] == "reload failed for binary"
    assert "ValueError: boom" in entry["exception"]
    logged_at = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(logged_at.timestamp() - time.time()) < 5


def test_text_log_lines_look_like_the_access_lines(sentiment_logger, capsys):
    operations.configure_logging("text")
    sentiment_logger.info("models loaded")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sentiment models loaded\n", capsys.readouterr().out)


def test_the_json_formatter_keeps_non_ascii_text_readable():
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker: café", None, None)
    line = JsonLogFormatter().format(record)
    assert "café" in line and json.loads(line)["message"] == "Booting worker: café"


# --- What gunicorn's hooks call ------------------------------------------------------------------

def answer_of(status_int, reason):
    """What gunicorn sends for one of its own errors once its writer is replaced: (status line, headers, body)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn.util.write_error(ours, status_int, reason, "gunicorn's own detail: /srv/app.py line 3")
        ours.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: theirs.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    return status_line, dict(line.split(": ", 1) for line in header_lines), body


@pytest.mark.parametrize("status_int, reason, message", [
    (400, "Bad Request", "The request is not valid HTTP/1.1. A URL must be ASCII"),
    (414, "Request-URI Too Long", "The URL is too long for this server. Send long texts in the body instead"),
    (431, "Request Header Fields Too Large", "The request headers are too large or too many."),
    (403, "Forbidden", "Forbidden."),
])
def test_gunicorns_own_errors_answer_json_without_its_details(monkeypatch, status_int, reason, message):
    monkeypatch.setattr(gunicorn.util, "write_error", gunicorn.util.write_error)  # put back after the test
    operations.answer_gunicorn_errors_as_json()
    status_line, headers, body = answer_of(status_int, reason)
    assert status_line == f"HTTP/1.1 {status_int} {reason}"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    assert headers["Connection"] == "close"
    document = json.loads(body)
    assert list(document) == ["message"] and message in document["message"]
    assert "/srv/app.py" not in body.decode()


@pytest.fixture
def metrics_environment(monkeypatch):
    """The variables prepare_metrics_dir reads and sets, unset now and restored after the test."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SENTIMENT_METRICS_DIR_SET_UP"):
        monkeypatch.setenv(name, "")  # recorded, so what prepare_metrics_dir sets is removed after the test
        monkeypatch.delenv(name)
    return monkeypatch


def test_a_chosen_metrics_folder_is_emptied_of_old_values_once_and_kept(metrics_environment, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"an earlier run's counts")
    (folder / "README").write_text("not ours")
    metrics_environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    operations.prepare_metrics_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README"]
    (folder / "counter_456.db").write_bytes(b"this run's counts")
    operations.prepare_metrics_dir()  # gunicorn reads its config again on SIGHUP: live workers' files stay
    operations.remove_metrics_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README", "counter_456.db"]


def test_without_a_chosen_folder_a_private_one_is_made_and_removed_at_exit(metrics_environment):
    operations.prepare_metrics_dir()
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(folder) and os.stat(folder).st_mode & 0o077 == 0
    operations.prepare_metrics_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == folder  # the same folder after SIGHUP
    operations.remove_metrics_dir()
    assert not os.path.exists(folder)
