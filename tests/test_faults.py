"""Faults against a real gunicorn: a killed worker, a graceful stop, a model update under load, damaged
artifacts at start-up, and a build killed half-way."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

import build_model
import model
from support import ROOT, Server, free_port

PATHS = ["/?query=a+brilliant+superb+film", "/fine-grained?query=dull+tedious+plot"]


class Load:
    """Client threads sending requests in a loop until the block ends; every outcome is recorded."""

    def __init__(self, url, *, threads=4):
        self.url, self.outcomes, self.stopping = url, [], threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, offset):
        """One client: alternate the scoring paths; record (ok, what happened)."""
        session = requests.Session()
        sent = offset
        while not self.stopping.is_set():
            try:
                response = session.get(self.url + PATHS[sent % len(PATHS)], timeout=30)
                self.outcomes.append((response.status_code == 200, response.status_code))
            except requests.RequestException as exc:
                self.outcomes.append((False, repr(exc)))
            sent += 1

    def wait_for(self, count, timeout=60):
        """Block until `count` more requests have been answered."""
        target, deadline = len(self.outcomes) + count, time.monotonic() + timeout
        while len(self.outcomes) < target and time.monotonic() < deadline:
            time.sleep(0.05)

    def failures(self):
        """What went wrong, one entry per failed request."""
        return [what for ok, what in self.outcomes if not ok]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        self.wait_for(20)
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def wait_until(condition, timeout=60, message="condition"):
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{message}: not reached within {timeout} s")


def copy_models(model_dir, destination):
    """A private copy of the session's published models: links and versions as build_model.py left them."""
    shutil.copytree(model_dir, destination, symlinks=True)
    return destination


def test_a_worker_killed_under_load_is_replaced_and_only_its_in_flight_requests_fail(model_dir):
    server = Server(model_dir).wait_healthy()
    try:
        with Load(server.url, threads=4) as load:
            wait_until(lambda: len(server.workers()) >= 2, message="two workers booted")
            before = server.workers()
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: victim not in server.workers() and len(server.workers()) == len(before),
                       message="a replacement worker")
            answered_before_replacement = len(load.outcomes)
            load.wait_for(200)
        after = load.outcomes[answered_before_replacement:]
    finally:
        output = server.stop()
    # Each client thread has at most one request in flight: only those can be lost with the worker.
    assert len(load.failures()) <= len(load.threads), load.failures()
    assert all(ok for ok, _ in after), [what for ok, what in after if not ok]
    assert len(after) >= 200
    assert "Booting worker" in output


def test_sigterm_lets_an_in_flight_request_finish_before_exit(model_dir):
    server = Server(model_dir).wait_healthy()
    body = json.dumps({"queries": ["a brilliant superb film"] * 500}).encode()
    head = (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            # The request is in flight: a worker has it and waits for the rest of the body.
            sock.sendall(head + body[:1000])
            time.sleep(1)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1)
            sock.sendall(body[1000:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        exit_code = server.process.wait(timeout=30)
    finally:
        output = server.stop()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", answer[:500]
    assert len(json.loads(rest.partition(b"\r\n\r\n")[2])["predictions"]) == 500
    assert exit_code == 0, output
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=5)


def test_a_model_rebuilt_while_serving_is_served_after_sighup_with_no_failed_request(model_dir, tiny_data, tmp_path):
    models = copy_models(model_dir, tmp_path / "models")
    server = Server(models).wait_healthy()
    try:
        old = server.models_created_at()
        with Load(server.url, threads=4) as load:
            assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(models)]) == 0
            new = {name: model.read_manifest((models / name).resolve())["created_at"] for name in old}
            assert all(new[name] > old[name] for name in old)
            load.wait_for(50)
            server.process.send_signal(signal.SIGHUP)
            # Old workers finish their requests and go; every answer must come from a new one, ten times over.
            wait_until(lambda: all(server.models_created_at() == new for _ in range(10)), message="the new models served")
            load.wait_for(200)
        answered = len(load.outcomes)
    finally:
        output = server.stop()
    assert load.failures() == [], load.failures()[:5]
    assert answered >= 300
    assert "Handling signal: hup" in output


FAULTS = {
    "tampered": lambda path: path.write_bytes(path.read_bytes()[:100] + b"X" + path.read_bytes()[101:]),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "missing": lambda path: path.unlink(),
}
LAUNCHERS = {
    "python app.py": lambda port: [sys.executable, "app.py", "--port", str(port)],
    "gunicorn app:app": lambda port: [sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}"],
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_damaged_artifact_stops_the_server_at_start_naming_the_file(model_dir, tmp_path, fault, launcher):
    models = copy_models(model_dir, tmp_path / "models")
    artifact = (models / "binary").resolve() / model.VECTORIZER_FILE
    FAULTS[fault](artifact)
    port = free_port()
    run = subprocess.run(LAUNCHERS[launcher](port), cwd=ROOT, env={**os.environ, "MODEL_DIR": str(models)},
                         capture_output=True, text=True, timeout=60)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert f"error: {artifact}:" in output
    assert "Traceback" not in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)


KILL_POINTS = {
    # SIGKILL from inside the build at a chosen point, so the test does not race the build.
    "while-writing-the-artifacts": "build_model.plot_confusion = die",
    "after-writing-before-the-link-switch": "build_model.os.symlink = die",
}
KILLED_BUILD = """
import os, signal, sys
import build_model
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
{patch}
build_model.main(["--data", sys.argv[1], "--out", sys.argv[2]])
"""


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_build_killed_half_way_leaves_the_previous_model_serving(model_dir, tiny_data, tmp_path, kill_point):
    models = copy_models(model_dir, tmp_path / "models")
    server = Server(models).wait_healthy()
    try:
        before = server.models_created_at()
        build = subprocess.run(
            [sys.executable, "-c", KILLED_BUILD.format(patch=KILL_POINTS[kill_point]),
             str(tiny_data / "train.tsv"), str(models)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert build.returncode == -signal.SIGKILL, build.stdout + build.stderr
        assert requests.get(server.url + "/?query=good", timeout=10).status_code == 200
        assert server.models_created_at() == before
    finally:
        server.stop()
    assert {name: m.manifest["created_at"] for name, m in model.load_models(models).items()} == before
    restarted = Server(models).wait_healthy()
    try:
        assert restarted.models_created_at() == before
    finally:
        restarted.stop()
