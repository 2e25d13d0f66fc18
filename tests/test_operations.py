"""What operators and browser clients see: request ids, access-log lines, CORS headers, Prometheus metrics
(through Flask's test client, and across two real gunicorn workers)."""
import io
import json
import re
import time
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import AccessLog, ConfigError, create_app, load_config
from support import Server

UUID_HEX = re.compile(r"[0-9a-f]{32}")


def samples(metrics_text):
    """{(sample name, frozenset of label items): value} of a Prometheus text exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics_text) for s in family.samples}


def value(table, name, **labels):
    """One sample's value, 0 if absent."""
    return table.get((name, frozenset(labels.items())), 0)


# --- Request ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path, status", [
    ("/?query=brilliant", 200), ("/?query=%20", 400), ("/no-such-thing", 404), ("/metrics", 200),
], ids=["answer", "bad-query", "unknown-path", "metrics"])
def test_the_callers_request_id_is_echoed_on_answers_and_errors_alike(client, path, status):
    response = client.get(path, headers={"X-Request-ID": "checkout-42.a"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "checkout-42.a"


def test_a_wrong_method_still_gets_the_request_id(client):
    response = client.delete("/", headers={"X-Request-ID": "abc"})
    assert response.status_code == 405
    assert response.headers["X-Request-ID"] == "abc"


@pytest.mark.parametrize("given", [None, "", "has space", "<script>", "x" * 129], ids=[
    "absent", "empty", "space", "markup", "too-long"])
def test_a_missing_or_unusable_request_id_is_replaced_by_a_fresh_random_one(client, given):
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/?query=good", headers=headers).headers["X-Request-ID"]
    second = client.get("/?query=good", headers=headers).headers["X-Request-ID"]
    assert UUID_HEX.fullmatch(first) and UUID_HEX.fullmatch(second)
    assert first != second


# --- Access log ----------------------------------------------------------------------------------

def test_each_request_writes_one_text_line_with_method_path_status_latency_model_and_id(model_dir, capsys):
    client = create_app({"MODEL_DIR": str(model_dir)}).test_client()
    capsys.readouterr()
    client.get("/fine-grained?query=secret+brilliant+words", headers={"X-Request-ID": "req-7"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.search(r"GET /fine-grained 200 \d+\.\d+ms model=fine-grained id=req-7$", lines[0])
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
    assert all(e["latency_ms"] >= 0 and e["level"] == "INFO" for e in entries)


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_access_lines_carry_the_current_time_to_the_millisecond(json_lines):
    stream = io.StringIO()
    log = AccessLog(stream, json_lines=json_lines)
    before = time.time()
    for request_id in ("a", "b"):
        log.write(request_id=request_id, method="GET", path="/", status=200, seconds=0.001, model_name="binary",
                  remote_addr="127.0.0.1")
    after = time.time()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        if json_lines:
            stamp = datetime.strptime(json.loads(line)["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        else:  # local time, like the `sentiment` logger's asctime
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        assert before - 0.002 <= stamp.timestamp() <= after + 0.002


def test_an_unknown_log_format_is_refused_at_start_up():
    with pytest.raises(ConfigError, match="LOG_FORMAT='xml': must be one of text, json"):
        load_config({"LOG_FORMAT": "xml"})


# --- CORS ----------------------------------------------------------------------------------------

def test_cors_origins_are_read_comma_separated_with_star_by_default():
    assert load_config({})["CORS_ORIGINS"] == ["*"]
    assert load_config({"CORS_ORIGINS": "https://a.example, https://b.example,"})["CORS_ORIGINS"] == [
        "https://a.example", "https://b.example"]


def test_by_default_any_origin_may_read_answers_and_the_request_id(client):
    response = client.get("/?query=good", headers={"Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


@pytest.fixture
def strict_client(model_dir):
    """A client of an app that lets only two origins in."""
    app = create_app({"MODEL_DIR": str(model_dir), "CORS_ORIGINS": ["https://a.example", "https://b.example"]})
    return app.test_client()


def test_an_allowed_origin_is_named_in_the_answer(strict_client):
    response = strict_client.get("/?query=good", headers={"Origin": "https://b.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in response.headers["Vary"]


def test_a_denied_origin_gets_no_cors_headers_so_the_browser_hides_the_answer(strict_client):
    response = strict_client.get("/?query=good", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origin, allowed", [("https://a.example", True), ("https://evil.example", False)])
def test_a_preflight_for_a_json_post_is_answered_for_allowed_origins_only(strict_client, origin, allowed):
    response = strict_client.options("/", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"})
    assert response.status_code == 200
    if allowed:
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    else:
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Methods" not in response.headers


def test_with_named_origins_every_answer_varies_on_origin_so_caches_keep_them_apart(strict_client):
    for headers in ({}, {"Origin": "https://a.example"}, {"Origin": "https://evil.example"}):
        assert strict_client.get("/health", headers=headers).headers.get_all("Vary") == ["Origin"]


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
    assert client.get("/?query=good", headers={"Origin": "https://app.example"}).status_code == 401
    answer = client.get("/?query=good", headers={"Origin": "https://app.example", "Authorization": "Bearer s3cret"})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"


def test_error_answers_carry_cors_headers_so_browser_scripts_can_read_the_message(strict_client):
    response = strict_client.get("/?query=%20", headers={"Origin": "https://a.example"})
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"


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
    assert value(table, "sentiment_http_request_duration_seconds_count", endpoint="binary") == 3
    predictions = "sentiment_predictions_total"
    assert value(table, predictions, model="binary", label="Positive") == 2
    assert value(table, predictions, model="binary", label="Negative") == 2
    assert value(table, predictions, model="fine-grained", label="Positive") == 1
    models = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    info = {dict(labels)["model"]: (dict(labels)["created_at"], v)
            for (name, labels), v in table.items() if name == "sentiment_model_info"}
    assert set(info) == {"binary", "fine-grained"}
    assert info["binary"][0] == models["binary"]["created_at"]
    assert info["binary"][1] > 1.7e9  # Unix seconds, for `time() - sentiment_model_info` alerts


def test_made_up_methods_and_paths_do_not_create_new_metric_series(client):
    client.open("/", method="BREW")
    client.get("/a-random-path-1")
    client.get("/a-random-path-2")
    table = samples(client.get("/metrics").get_data(as_text=True))
    labels = [dict(lab) for name, lab in table if name == "sentiment_http_requests_total"]
    assert {"endpoint": "none", "method": "other", "status": "405"} in labels
    assert {"endpoint": "none", "method": "GET", "status": "404"} in labels
    assert not any("random" in v or v == "BREW" for lab in labels for v in lab.values())


def test_metrics_add_up_across_two_gunicorn_workers_and_each_request_is_logged_once(model_dir, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    server = Server(model_dir, env={"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                                    "LOG_FORMAT": "json"}).wait_healthy()
    try:
        assert not (metrics_dir / "counter_999999.db").exists()

        def send(i):
            # A fresh connection each time (no Session), so either worker may take it.
            query = "brilliant superb" if i % 3 else "%20"
            return requests.get(f"{server.url}/?query={query}", headers={"X-Request-ID": f"t-{i}"}, timeout=10)

        sent = []
        with ThreadPoolExecutor(4) as pool:
            # Batches until both workers have answered (each writes its own counter file), at most 10.
            for batch in range(10):
                sent += pool.map(send, range(len(sent), len(sent) + 30))
                if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                    break
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2, "only one worker answered"
        good = sum(r.status_code == 200 for r in sent)
        bad = sum(r.status_code == 400 for r in sent)
        assert good + bad == len(sent) and bad > 0

        table = samples(requests.get(server.url + "/metrics", timeout=10).text)
        total = "sentiment_http_requests_total"
        assert value(table, total, endpoint="binary", method="GET", status="200") == good
        assert value(table, total, endpoint="binary", method="GET", status="400") == bad
        assert value(table, "sentiment_http_request_duration_seconds_count", endpoint="binary") == len(sent)
        assert value(table, "sentiment_predictions_total", model="binary", label="Positive") == good
        info = [dict(labels)["model"] for (name, labels) in table if name == "sentiment_model_info"]
        assert sorted(info) == ["binary", "fine-grained"]  # one series per model, not one per worker
    finally:
        output = server.stop()
    entries = [json.loads(line) for line in output.splitlines()]  # gunicorn's own lines are JSON too
    assert any(e["logger"] == "gunicorn.error" for e in entries)
    ids = [e["request_id"] for e in entries if e.get("path") == "/"]
    assert sorted(ids) == sorted(f"t-{i}" for i in range(len(sent)))  # one line each, no gunicorn duplicate
