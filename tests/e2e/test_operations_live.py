"""What only a real server shows: raw bytes on the socket, body limits, URL normalisation, the debugger
kept out, the token read from the environment, and metrics and access lines across two gunicorn workers.
The app's own rules for the same requests are in test_app.py, test_operations.py, test_metrics.py and
test_logs.py (Flask's test client)."""
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sklearn
from prometheus_client.multiprocess import MultiProcessCollector

from support import ROOT, TOKEN, Server, assert_json_error, free_port, samples, value

GOOD = "a brilliant superb film"
MIB = 1 << 20
# Werkzeug's debugger serves its own JavaScript to any URL with these parameters when debug is on.
DEBUGGER_PROBE = "/?__debugger__=yes&cmd=resource&f=debugger.js"


def raw_request(server, data, timeout=10):
    """Send bytes exactly as given over a socket; return (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode("utf-8")


# --- Hostile bytes and sizes ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fapp.py", "/static/../app.py",
    "/static/app.py", "//etc/passwd", "/lib/models/binary/manifest.json", "/.git/config", "/app.py",
    "/%00", "/console", "/health/../../app.py", "/..\\..\\app.py",
])
def test_unknown_paths_and_traversal_attempts_answer_404_json(live_server, path):
    status, headers, body = raw_request(live_server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert_json_error(status, body, 404, "No such endpoint")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("request_line", [
    b"GET /?query=\xff\xfe HTTP/1.1", b"GET /?query=caf\xc3\xa9 HTTP/1.1", b"GET /\xc0\xaf HTTP/1.1",
    b"GET /?query=a\x00b HTTP/1.1", b"GARBAGE", b"GET / HTTP/9.9",
], ids=["invalid-utf8", "raw-utf8", "overlong-in-path", "raw-nul", "not-http", "bad-version"])
def test_raw_bytes_that_are_not_valid_http_answer_400_json(live_server, request_line):
    status, headers, body = raw_request(live_server, request_line + b"\r\nHost: x\r\n\r\n")
    assert headers["Content-Type"] == "application/json"
    assert_json_error(status, body, 400, "not valid HTTP")


def test_a_header_too_large_answers_431_json(live_server):
    status, headers, body = raw_request(live_server, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert headers["Content-Type"] == "application/json"
    assert_json_error(status, body, 431, "headers")


def body_of_size(size):
    """A valid JSON batch of exactly `size` bytes."""
    head, tail = b'{"queries": ["', b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("size", [MIB + 1, 4 * MIB])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_size_limit_answer_413_json(live_server, size, chunked):
    body = body_of_size(size)
    data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = requests.post(live_server.url + "/", data=data, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert_json_error(response.status_code, response.text, 413, "over 1,048,576 bytes")


def test_a_chunked_body_of_exactly_the_size_limit_is_read_whole(live_server):
    # Werkzeug on its own cut chunked bodies at the limit without a word; this one must arrive whole.
    texts = ["good film " * 104] * 1000
    body = json.dumps({"queries": texts}).encode()
    texts[-1] += "x" * (MIB - len(body))
    body = json.dumps({"queries": texts}).encode()
    assert len(body) == MIB
    response = requests.post(live_server.url + "/", data=iter([body[:MIB // 2], body[MIB // 2:]]),
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == len(texts)


def test_the_service_answers_normally_after_the_hostile_requests(live_server):
    hostile = [b"GARBAGE\r\n\r\n", b"GET /?query=\xff HTTP/1.1\r\n\r\n",
               b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b"[" * 100_000,
               b"GET /../../etc/passwd HTTP/1.1\r\n\r\n"]
    for data in hostile * 5:
        assert raw_request(live_server, data)[0] in (400, 404)
    response = requests.get(live_server.url + "/", params={"query": GOOD}, timeout=5)
    assert response.status_code == 200
    assert response.json()["prediction"] == "Positive"
    assert requests.get(live_server.url + "/health", timeout=5).json()["status"] == "ok"


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


# --- The debugger and the token ------------------------------------------------------------------

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
    process.wait()
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


def test_the_token_is_read_from_api_token_by_gunicorn(model_dir):
    server = Server(model_dir, env={"API_TOKEN": TOKEN}).wait_healthy()
    try:
        refused = requests.get(server.url + "/?query=good", timeout=5)
        allowed = requests.get(server.url + "/?query=good", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    finally:
        server.stop()
    assert_json_error(refused.status_code, refused.text, 401, "Authorization: Bearer")
    assert allowed.status_code == 200


# --- Metrics and access lines across workers -----------------------------------------------------

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
            # Batches until both workers have answered, at most 10. Only a worker that answered writes a
            # histogram file (the master writes counters and gauges too: the dropped-row counters start
            # at zero there).
            for _ in range(10):
                sent += pool.map(send, range(len(sent), len(sent) + 30))
                if len(list(metrics_dir.glob("histogram_*.db"))) >= 2:
                    break
        assert len(list(metrics_dir.glob("histogram_*.db"))) == 2, "only one worker answered"
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
        assert sorted(info) == ["binary", "fine-grained", "ratings"]  # one series per model, not one per worker
    finally:
        output = server.stop()
    entries = [json.loads(line) for line in output.splitlines()]  # gunicorn's own lines are JSON too
    assert any(e["logger"] == "gunicorn.error" for e in entries)
    ids = [e["request_id"] for e in entries if e.get("path") == "/"]
    assert sorted(ids) == sorted(f"t-{i}" for i in range(len(sent)))  # one line each, no gunicorn duplicate


def scoring_workers(metrics_dir):
    """The pids of the workers whose own files count a GET / answered with 200."""
    pids = set()
    for path in metrics_dir.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            if any(s.name == "sentiment_http_requests_total" and s.labels["endpoint"] == "binary"
                   and s.labels["status"] == "200" and s.value for s in metric.samples):
                pids.add(int(path.stem.split("_")[1]))
    return pids


def test_each_idle_workers_drift_counts_reach_metrics_without_another_request(model_dir, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = Server(model_dir, env={"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    try:
        server.wait_healthy()
        sent = []
        with ThreadPoolExecutor(4) as pool:
            # Fresh connections (no Session), several at once, in batches until both workers have scored.
            for _ in range(10):
                sent += pool.map(lambda _: requests.get(server.url + "/", params={"query": GOOD}, timeout=10),
                                 range(20))
                if len(scoring_workers(metrics_dir)) == 2:
                    break
        assert scoring_workers(metrics_dir) == server.workers(), "only one worker scored"
        assert {r.status_code for r in sent} == {200}
        # Silence: no request reaches either worker; /metrics then shows the sums of the one that does
        # not answer it only if that worker wrote them by itself.
        time.sleep(3)
        table = samples(requests.get(server.url + "/metrics", timeout=10).text)
        assert value(table, "sentiment_texts_scored_total", model="binary") == len(sent)
        assert value(table, "sentiment_confidence_count", model="binary") == len(sent)
    finally:
        server.stop()
