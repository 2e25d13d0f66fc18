"""What gunicorn's hooks call (lifecycle.py): the per-process services started and stopped in bounded
time, the shared metrics folder, gunicorn's own errors as JSON, and the warning when it faces a network.
Under a real gunicorn in e2e/test_gunicorn.py and e2e/test_operations_live.py."""
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from logging.handlers import BufferingHandler

import gunicorn.util
import pytest

import app as service
from serving import lifecycle, logs
from serving.config import Settings


class Recorder:
    """A fake per-process service that notes its calls in `journal`; its stop can hang or fail."""

    def __init__(self, name, journal, *, hang_until=None, fails=False):
        self.name, self.journal, self.hang_until, self.fails = name, journal, hang_until, fails

    def __repr__(self):
        return f"<service {self.name}>"

    def start(self):
        """Note the start."""
        self.journal.append((self.name, "start", None))

    def stop(self, timeout):
        """Note the stop and its timeout; then wait for `hang_until`, or fail, if told to."""
        self.journal.append((self.name, "stop", timeout))
        if self.hang_until is not None:
            self.hang_until.wait()
        if self.fails:
            raise RuntimeError("the disk is full")


@pytest.fixture
def logged():
    """The records the `sentiment` logger emits during the test."""
    handler = BufferingHandler(capacity=1000)
    logger = logging.getLogger("sentiment")
    logger.addHandler(handler)
    yield handler.buffer
    logger.removeHandler(handler)


@pytest.fixture
def metrics_environment(monkeypatch):
    """The variables prepare_metrics_dir reads and sets, unset now and restored after the test."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SENTIMENT_METRICS_DIR_SET_UP"):
        monkeypatch.setenv(name, "")  # recorded, so what prepare_metrics_dir sets is removed after the test
        monkeypatch.delenv(name)
    return monkeypatch


def calls(journal):
    """The journal without the timeouts: (service, call) in the order they happened."""
    return [(name, call) for name, call, _ in journal]


# --- The app's per-process services --------------------------------------------------------------

def test_an_app_is_built_with_its_prediction_log_its_metrics_and_its_follower_as_its_services(app):
    assert [type(service).__name__ for service in app.extensions[lifecycle.SERVICES]] == [
        "PredictionLog", "Metrics", "Follower"]


def test_services_start_in_order_and_stop_last_first_within_the_time_given(app):
    journal = []
    app.extensions[lifecycle.SERVICES] += [Recorder("log", journal), Recorder("cache", journal)]
    lifecycle.start_services(app)
    lifecycle.stop_services(app, 2.0)
    assert calls(journal) == [("log", "start"), ("cache", "start"), ("cache", "stop"), ("log", "stop")]
    assert all(0 < timeout <= 2.0 for _, call, timeout in journal if call == "stop")


def test_a_stop_that_hangs_is_left_behind_once_the_time_is_up_and_the_others_still_stop(app, logged):
    journal, release = [], threading.Event()
    app.extensions[lifecycle.SERVICES] += [Recorder("quick", journal), Recorder("stuck", journal, hang_until=release)]
    try:
        started = time.monotonic()
        lifecycle.stop_services(app, 0.3)
        took = time.monotonic() - started
    finally:
        release.set()  # let the stuck stop's thread end
    assert 0.25 <= took < 2
    assert calls(journal) == [("stuck", "stop"), ("quick", "stop")]
    assert journal[1][2] <= 0.01  # the time was used up: the next one is asked to stop at once
    assert [r.getMessage() for r in logged] == [
        "<service stuck> did not stop within 0.3 s; exiting without waiting for it"]


def test_a_stop_that_fails_is_logged_and_the_others_still_stop(app, logged):
    journal = []
    app.extensions[lifecycle.SERVICES] += [Recorder("quick", journal), Recorder("broken", journal, fails=True)]
    lifecycle.stop_services(app, 2.0)
    assert calls(journal) == [("broken", "stop"), ("quick", "stop")]
    assert [(r.levelname, r.getMessage()) for r in logged] == [("ERROR", "stopping <service broken> failed")]
    assert "the disk is full" in str(logged[0].exc_info[1])


# --- What gunicorn.conf.py's hooks call ----------------------------------------------------------

def test_a_worker_starts_its_services_when_forked_and_stops_them_in_bounded_time_at_exit(app):
    journal = []
    app.extensions[lifecycle.SERVICES].append(Recorder("log", journal))
    lifecycle.worker_started(app)
    lifecycle.worker_exiting(app, os.getpid())
    assert calls(journal) == [("log", "start"), ("log", "stop")]
    assert 0 < journal[1][2] <= lifecycle.STOP_TIMEOUT


def test_worker_exit_run_in_the_master_for_a_worker_already_gone_stops_nothing(app):
    journal = []
    app.extensions[lifecycle.SERVICES].append(Recorder("log", journal))
    lifecycle.worker_exiting(app, os.getpid() + 1)
    assert journal == []


def test_python_app_py_starts_the_services_before_serving_and_stops_them_after(app, monkeypatch):
    journal = []
    app.extensions[lifecycle.SERVICES].append(Recorder("log", journal))
    for field in dataclasses.fields(Settings):  # the defaults, whatever the developer's shell holds
        monkeypatch.delenv(field.name, raising=False)
    monkeypatch.setattr(service, "create_app", lambda settings: app)
    monkeypatch.setattr(logs, "configure_logging", lambda log_format: None)  # the test's logging stays as it is
    monkeypatch.setattr(app, "run", lambda **options: journal.append(("server", "run", None)))
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    try:
        assert service.main([]) == 0
    finally:
        werkzeug.setLevel(level)
    assert calls(journal) == [("log", "start"), ("server", "run"), ("log", "stop")]


def test_the_masters_start_prepares_the_metrics_folder_and_json_errors_and_its_exit_removes_it(
        metrics_environment, monkeypatch):
    monkeypatch.setattr(gunicorn.util, "write_error", gunicorn.util.write_error)  # put back after the test
    lifecycle.master_starting()
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(folder)
    assert gunicorn.util.write_error is lifecycle.write_gunicorn_error
    lifecycle.master_exiting()
    assert not os.path.exists(folder)


def test_a_gone_workers_live_gauges_are_dropped_and_its_counters_kept(metrics_environment, tmp_path):
    for name in ("gauge_livemax_4242.db", "counter_4242.db", "gauge_livemax_77.db"):
        (tmp_path / name).write_bytes(b"")
    metrics_environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    lifecycle.worker_gone(4242)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "gauge_livemax_77.db"]


# --- The metrics folder --------------------------------------------------------------------------

def test_a_chosen_metrics_folder_is_emptied_of_old_values_once_and_kept(metrics_environment, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"an earlier run's counts")
    (folder / "README").write_text("not ours")
    metrics_environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    lifecycle.prepare_metrics_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README"]
    (folder / "counter_456.db").write_bytes(b"this run's counts")
    lifecycle.prepare_metrics_dir()  # called again: the live workers' files stay
    lifecycle.remove_metrics_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["README", "counter_456.db"]


def test_without_a_chosen_folder_a_private_one_is_made_and_removed_at_exit(metrics_environment):
    lifecycle.prepare_metrics_dir()
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(folder) and os.stat(folder).st_mode & 0o077 == 0
    lifecycle.prepare_metrics_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == folder  # the same folder when called again
    lifecycle.remove_metrics_dir()
    assert not os.path.exists(folder)


# --- gunicorn's own answers, and what it faces ---------------------------------------------------

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
    lifecycle.answer_gunicorn_errors_as_json()
    status_line, headers, body = answer_of(status_int, reason)
    assert status_line == f"HTTP/1.1 {status_int} {reason}"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    assert headers["Connection"] == "close"
    document = json.loads(body)
    assert list(document) == ["message"] and message in document["message"]
    assert "/srv/app.py" not in body.decode()


@pytest.mark.parametrize("binds, environ, warned", [
    (["127.0.0.1:5000"], {}, False),
    (["[::1]:5000", "localhost:5000"], {}, False),
    (["unix:/run/sentiment.sock"], {}, False),
    (["0.0.0.0:5000"], {}, True),
    (["10.1.2.3:5000"], {}, True),
    (["0.0.0.0:5000"], {"FORWARDED_ALLOW_IPS": "10.0.0.5"}, False),
])
def test_gunicorn_facing_a_network_with_no_proxy_declared_is_warned_about(binds, environ, warned):
    warning = lifecycle.exposure_warning(binds, environ)
    assert (warning is not None) == warned
    if warned:
        assert "docs/running.md" in warning and "FORWARDED_ALLOW_IPS" in warning and binds[0] in warning
