"""What the logs show (logs.py): one access line per request, as text or JSON, that a path cannot forge,
and the app's own messages in the same shapes."""
import io
import json
import logging
import re
import time
from datetime import UTC, datetime

import pytest

from app import create_app
from serving import logs
from serving.logs import AccessLog, JsonLogFormatter

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


# --- The app's own log lines ---------------------------------------------------------------------

@pytest.fixture
def sentiment_logger():
    """The `sentiment` logger, put back as it was after the test has configured it."""
    logger = logging.getLogger("sentiment")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_json_log_lines_are_one_object_in_utc_with_the_exception_inside(sentiment_logger, capsys):
    logs.configure_logging("text")
    logs.configure_logging("json")  # configured again (a reload): replaces, never adds, a handler
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
    logs.configure_logging("text")
    sentiment_logger.info("models loaded")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO sentiment models loaded\n", capsys.readouterr().out)


def test_the_json_formatter_keeps_non_ascii_text_readable():
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker: café", None, None)
    line = JsonLogFormatter().format(record)
    assert "café" in line and json.loads(line)["message"] == "Booting worker: café"
