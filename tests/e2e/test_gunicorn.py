"""The service under a real gunicorn with the repo's gunicorn.conf.py, through its signals and faults:
a model rebuilt and reloaded with SIGHUP under load, a reload onto broken models, damaged artifacts at
start-up, a build killed half-way, a worker killed under load, and a graceful SIGTERM.
"""
import contextlib
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

import kinds
from store import artifacts
from support import ROOT, SERVICE_VARIABLES, Call, Clients, Server, free_port, install, wait_for
from training import build as build_model

PATHS = ["/?query=a+brilliant+superb+film", "/fine-grained?query=dull+tedious+plot"]


class Load(Clients):
    """Client threads alternating the scoring paths on kept-alive connections; outcomes are (ok, what happened)."""

    def __init__(self, url, *, threads=4):
        super().__init__(url, threads=threads)
        self.sessions = [requests.Session() for _ in self.threads]

    def send(self, client, n):
        """One GET on this client's connection."""
        try:
            response = self.sessions[client].get(self.url + PATHS[(client + n) % len(PATHS)], timeout=30)
            return response.status_code == 200, response.status_code
        except requests.RequestException as exc:
            return False, repr(exc)

    def failures(self):
        """What went wrong, one entry per failed request."""
        return [what for ok, what in self.outcomes if not ok]


def copy_models(model_dir, destination):
    """A private copy of the session's published models: links and versions as build_model.py left them."""
    shutil.copytree(model_dir, destination, symlinks=True)
    return destination


def reload_and_wait(server):
    """SIGHUP, then wait until every worker that served before has been replaced."""
    old_workers = server.workers()
    server.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: not server.workers() & old_workers, timeout=60), "the reload never replaced the workers"
    assert server.process.poll() is None, server.output()


def test_a_model_rebuilt_under_load_is_served_after_sighup_with_no_failed_request(model_dir, tiny_data, tmp_path):
    models = copy_models(model_dir, tmp_path / "models")
    # Following off, so only the reload serves the build (tests/e2e/test_releases_live.py: following).
    server = Server(models, env={"MODEL_POLL_SECONDS": "0"}).wait_healthy()
    try:
        old = server.models_created_at()
        with Load(server.url, threads=4) as load:
            assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--movies", str(tiny_data / "movies.json"),
                                     "--out", str(models)]) == 0
            new = {name: artifacts.read_manifest((models / name).resolve())["created_at"] for name in old}
            assert all(new[name] > old[name] for name in old)
            load.wait_for(50)
            assert server.models_created_at() == old  # nothing changes before the reload
            server.process.send_signal(signal.SIGHUP)
            # Old workers finish their requests and go; every answer must come from a new one, ten times over.
            assert wait_for(lambda: all(server.models_created_at() == new for _ in range(10)), timeout=60), \
                "the new models were never served"
            load.wait_for(200)
        answered = len(load.outcomes)
        assert requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5).status_code == 200
    finally:
        output = server.stop()
    assert load.failures() == [], load.failures()[:5]
    assert answered >= 300
    assert "Handling signal: hup" in output


def test_sighup_onto_a_broken_model_keeps_answering_with_the_old_one(model_dir, tmp_path):
    models = copy_models(model_dir, tmp_path / "models")
    server = Server(models).wait_healthy()
    try:
        before = server.models_created_at()
        (models / "binary" / artifacts.CLASSIFIER_FILE).write_bytes(b"not the model")
        reload_and_wait(server)
        assert server.models_created_at() == before
        answer = requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["prediction"] in ("Negative", "Positive")
    finally:
        output = server.stop()
    assert "reload: keeping the models already loaded" in output
    assert "sha256 does not match" in output


FAULTS = {
    "tampered": lambda path: path.write_bytes(path.read_bytes()[:100] + b"X" + path.read_bytes()[101:]),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "missing": lambda path: path.unlink(),
}
LAUNCHERS = {
    "python app.py": lambda port: [sys.executable, "app.py", "--port", str(port)],
    "gunicorn app:app": lambda port: [sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}"],
}


def start_refused(models, launcher="gunicorn app:app"):
    """Start a server (by `LAUNCHERS[launcher]`) on `models`, which it is expected to refuse; return its
    finished run and the port it was given."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    run = subprocess.run(LAUNCHERS[launcher](port), cwd=ROOT, env={**environment, "MODEL_DIR": str(models)},
                         capture_output=True, text=True, timeout=60)
    return run, port


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_damaged_artifact_stops_the_server_at_start_naming_the_file(model_dir, tmp_path, fault, launcher):
    models = copy_models(model_dir, tmp_path / "models")
    artifact = (models / "binary").resolve() / artifacts.VECTORIZER_FILE
    FAULTS[fault](artifact)
    run, port = start_refused(models, launcher)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert f"error: {artifact}:" in output
    assert "Traceback" not in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)


KILL_POINTS = {
    # SIGKILL from inside the build at a chosen point, so the test does not race the build.
    "while-writing-the-artifacts": "plots.confusion = die",
    "after-writing-before-the-link-switch": "releases.switch_link = die",
}
KILLED_BUILD = """
import os, signal, sys
from store import releases
from training import build as build_model, plots
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
{patch}
build_model.main(["--data", sys.argv[1], "--out", sys.argv[2]])
"""


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_build_killed_half_way_leaves_the_previous_model_to_serve_and_reload(model_dir, tiny_data, tmp_path,
                                                                               kill_point):
    models = copy_models(model_dir, tmp_path / "models")
    server = Server(models).wait_healthy()
    try:
        before = server.models_created_at()
        # The build's output goes to a file, and it runs in a session of its own: its calibration's worker
        # processes outlive a SIGKILL of the build (they would hold a pipe open), and are then killed with
        # the session, as a supervisor kills a unit's whole process group.
        with open(tmp_path / "build.log", "w") as said:
            build = subprocess.Popen(
                [sys.executable, "-c", KILLED_BUILD.format(patch=KILL_POINTS[kill_point]),
                 str(tiny_data / "train.tsv"), str(models)], cwd=ROOT, stdout=said, stderr=subprocess.STDOUT,
                start_new_session=True)
            try:
                returncode = build.wait(timeout=120)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(build.pid, signal.SIGKILL)
        assert returncode == -signal.SIGKILL, (tmp_path / "build.log").read_text()
        assert {name: m.manifest["created_at"] for name, m in kinds.load_models(models).items()} == before
        reload_and_wait(server)  # what an operator does after a build: the reload must find the previous models
        assert server.models_created_at() == before
        assert requests.get(server.url + "/?query=good", timeout=10).status_code == 200
    finally:
        output = server.stop()
    assert "reload: models loaded again" in output


def test_a_worker_killed_under_load_is_replaced_and_only_its_in_flight_requests_fail(model_dir):
    server = Server(model_dir).wait_healthy()
    try:
        with Load(server.url, threads=4) as load:
            assert wait_for(lambda: len(server.workers()) >= 2), "two workers never booted"
            before = server.workers()
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            assert wait_for(lambda: victim not in server.workers() and len(server.workers()) == len(before),
                            timeout=60), "the killed worker was never replaced"
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


def hostile_folder(model_dir, tmp_path, marker):
    """A copy of the models whose binary classifier runs `touch marker` when unpickled, hashes rewritten."""
    models = copy_models(model_dir, tmp_path / "models")
    install(models, "binary", pickle.dumps(Call(os.system, f"touch {marker}")))
    return models


def test_gunicorn_refuses_a_hostile_pickle_at_start_with_one_line_and_runs_none_of_it(model_dir, tmp_path):
    marker = tmp_path / "marker"
    models = hostile_folder(model_dir, tmp_path, marker)
    run, _ = start_refused(models)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert len(errors) == 1 and "SentimentClassifier.pkl: refused: the pickle asks for posix.system" in errors[0]
    assert not marker.exists()


def test_sighup_onto_a_hostile_pickle_keeps_the_old_models_and_runs_none_of_it(model_dir, tmp_path):
    marker = tmp_path / "marker"
    models = copy_models(model_dir, tmp_path / "models")
    server = Server(models).wait_healthy()
    try:
        before = server.models_created_at()
        install(models, "binary", pickle.dumps(Call(os.system, f"touch {marker}")))
        reload_and_wait(server)
        assert server.models_created_at() == before
        assert requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5).status_code == 200
    finally:
        output = server.stop()
    assert "reload: keeping the models already loaded" in output and "asks for posix.system" in output
    assert not marker.exists()


def test_a_copy_of_a_model_beside_it_stops_the_start_with_one_line_naming_both_folders(model_dir, tmp_path):
    models = copy_models(model_dir, tmp_path / "models")
    # As people back a model up before a risky build: the live folder copied under another name.
    shutil.copytree((models / "binary").resolve(), models / "binary-backup")
    run, _ = start_refused(models)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert len(errors) == 1 and "both hold the binary model" in errors[0]
    assert str(models / "binary") in errors[0] and str(models / "binary-backup") in errors[0]
