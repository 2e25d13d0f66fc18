"""gunicorn.conf.py's behaviour under a real gunicorn: SIGHUP serves newly built models, and a
reload onto broken models keeps answering with the old ones."""
import shutil
import signal
import time

import requests

import build_model
from support import Server


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
        before = server.models_created_at()
        assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(models)]) == 0
        server.process.send_signal(signal.SIGHUP)
        after = wait_for(lambda: (now := server.models_created_at()) != before and now)
        assert after and all(after[name] > before[name] for name in before)
        assert requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5).status_code == 200
    finally:
        server.stop()


def test_sighup_onto_a_broken_model_keeps_answering_with_the_old_one(model_dir, tmp_path):
    models = shutil.copytree(model_dir, tmp_path / "models", symlinks=True)
    server = Server(models).wait_healthy()
    try:
        before, old_workers = server.models_created_at(), server.workers()
        (models / "binary" / "SentimentClassifier.pkl").write_bytes(b"not the model")
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: not server.workers() & old_workers), "the reload never replaced the workers"
        assert server.process.poll() is None
        assert server.models_created_at() == before
        answer = requests.get(server.url + "/", params={"query": "a superb film"}, timeout=5)
        assert answer.status_code == 200 and answer.json()["prediction"] in ("Negative", "Positive")
    finally:
        output = server.stop()
    assert "sha256 does not match" in output
