"""Releases against a real gunicorn: under load from wrk on both models, a promote and a rollback are
followed by every worker by itself, with no failed or non-2xx request and no worker replaced; a damaged
version made live by hand is refused by the running server while the old one keeps serving."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from store import artifacts, releases
from support import ROOT, Server, build_models, samples, value, wait_for, wrk_figures

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)")

SCRIPT = Path(__file__).resolve().parent / "soak.lua"  # GETs and POSTs on both models, and /health
POLL = "0.5"


@pytest.fixture
def two_versions(model_dir, tiny_data, tmp_path):
    """A copy of the session's models with a second build of each published over the first."""
    models = shutil.copytree(model_dir, tmp_path / "models", symlinks=True)
    # A version is named by its second and its files' hashes, and the same data builds the same files: the
    # second build waits for the next second, so it is a version of its own (run alone, the session's
    # models may have been built a moment ago).
    created = max(releases.created_time(releases.live_folder(models, name)) for name in ("binary", "fine-grained"))
    time.sleep(max(0.0, int(created) + 1 - time.time()))
    return build_models(tiny_data / "train.tsv", models)


def release(models, *args):
    done = subprocess.run([sys.executable, "release.py", "--model-dir", str(models), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def versions_answered(url, route, n=20):
    """The model_versions of `n` answers (both workers answer some of them)."""
    session = requests.Session()
    return {session.get(url + route, params={"query": "a fine film"}, timeout=10).json()["model_version"]
            for _ in range(n)}


def test_a_promote_and_a_rollback_under_load_fail_no_request(two_versions):
    models = two_versions
    routes = {"binary": "/", "fine-grained": "/fine-grained"}
    second = {name: releases.version_of_folder(releases.live_folder(models, name)) for name in routes}
    first = {name: releases.rollback_target(models, name) for name in second}
    server = Server(models, env={"MODEL_POLL_SECONDS": POLL, "WEB_CONCURRENCY": "2"}).wait_healthy()
    try:
        workers = wait_for(lambda: len(w := server.workers()) == 2 and w)
        load = subprocess.Popen(["wrk", "-t", "2", "-c", "8", "-d", "20s", "--timeout", "10s", "-s", str(SCRIPT),
                                 server.url, "--", "100000000", os.devnull],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)
        for command, expected in ((["rollback"], first), (["promote"], second)):
            for name, route in routes.items():
                release(models, *command, name, *([second[name]] if command == ["promote"] else []))
                assert wait_for(lambda r=route, v=expected[name]: versions_answered(server.url, r) == {v},
                                timeout=15), (command, name)
        figures = wrk_figures(load.communicate(timeout=60)[0])
        assert figures["requests"] > 1000, figures["output"]
        assert figures["socket_errors"] == 0 and figures["non_2xx"] == 0, (figures["output"], server.output())
        assert server.workers() == workers  # switched in place: no worker was replaced
        table = samples(requests.get(server.url + "/metrics", timeout=10).text)
        for name in second:  # each of the 2 workers loaded each model twice: the rollback, then the promote
            assert value(table, "sentiment_model_loads_total", model=name, role="live", outcome="loaded") == 4
    finally:
        server.stop()


def test_a_damaged_version_is_refused_by_the_running_server_and_the_old_one_keeps_serving(two_versions):
    models = two_versions
    live = releases.version_of_folder(releases.live_folder(models, "binary"))
    earlier = releases.folder_of(models, "binary", releases.rollback_target(models, "binary"))
    damaged = earlier / artifacts.VECTORIZER_FILE
    damaged.write_bytes(damaged.read_bytes()[:-10])
    server = Server(models, env={"MODEL_POLL_SECONDS": POLL, "WEB_CONCURRENCY": "2"}).wait_healthy()
    try:
        wait_for(lambda: len(server.workers()) == 2)
        releases.replace_link(models / "binary", earlier)  # by hand: promote itself refuses a damaged version
        table = wait_for(lambda: (t := samples(requests.get(server.url + "/metrics", timeout=10).text)) and value(
            t, "sentiment_model_loads_total", model="binary", role="live", outcome="refused") == 2 and t, timeout=15)
        assert table, server.output()
        assert versions_answered(server.url, "/") == {live}
        assert server.output().count("refusing binary live") == 2 and str(damaged) in server.output()
    finally:
        server.stop()
