"""gunicorn.conf.py's behaviour under a real gunicorn: SIGHUP serves newly built models, and a
reload onto broken models keeps answering with the old ones."""
import shutil
import signal
import time
from pathlib import Path

import requests

import build_model
from conftest import Server


def created_at(server):
    """Each served model's created_at, by name, as /models shows it."""
    return {m["name"]: m["created_at"] for m in requests.get(server.url + "/models", timeout=5).json()["models"]}


def workers(server):
    """The pids of gunicorn's workers (the master's children)."""
    pid = server.process.pid
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def wait_for(predicate, timeout=30):
    """Poll until `predicate()` is true; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_sighup_serves_the_models_built_since_start(tiny_data, model_dir, tmp_path):
    models = shutil.copytree(model_dir, tmp_path / "models", symlinks=True)
    server = Server(models).wait_healthy()
    try:
        before = created_at(server)
        assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(models)]) == 0
        server.process.send_signal(signal.SIGHUP)
        after = wait_for(lambda: (now := created_at(server)) != before and now)
        assert after and all(after[name] > before[name] for name in before)
        assert requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5).status_code == 200
    finally:
        server.stop()


def test_sighup_onto_a_broken_model_keeps_answering_with_the_old_one(model_dir, tmp_path):
    models = shutil.copytree(model_dir, tmp_path / "models", symlinks=True)
    server = Server(models).wait_healthy()
    try:
        before, old_workers = created_at(server), workers(server)
        (models / "binary" / "SentimentClassifier.pkl").write_bytes(b"not the model")
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: not workers(server) & old_workers), "the reload never replaced the workers"
        assert server.process.poll() is None
        assert created_at(server) == before
        answer = requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["prediction"] in ("Negative", "Positive")
    finally:
        output = server.stop()
    assert "sha256 does not match" in output
