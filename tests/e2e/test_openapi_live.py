"""The contract at /openapi.json, kept by a live gunicorn.

schemathesis runs every check in every phase (examples, coverage, fuzzing, stateful) against the real
server, with the settings in tests/e2e/schemathesis.toml (which statuses refuse a request that breaks
the document: the document's own 413 and 414 among them). CI runs a fixed seed; `--schemathesis-long`
runs ten times the examples with a random seed. A failure prints schemathesis' report, with a curl
command that reproduces each failing case.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from serving.config import MODEL_ROUTES

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261127


def test_schemathesis_with_every_check_and_phase_finds_nothing(live_server, tmp_path, request):
    long_run = request.config.getoption("--schemathesis-long")
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               live_server.url + "/openapi.json", "--checks", "all",
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "1000" if long_run else "100",
               "--request-timeout", "10", "--generation-database", "none", "--no-color",
               *([] if long_run else ["--seed", str(SEED)])]
    # cwd=tmp_path: schemathesis and hypothesis write their caches into the working directory.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800 if long_run else 300)
    if run.returncode != 0:
        pytest.fail(f"schemathesis failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}")
    selected, total = re.search(r"^\s*Selected: (\d+)/(\d+)$", run.stdout, re.M).groups()
    tested = re.search(r"^\s*Tested: (\d+)$", run.stdout, re.M).group(1)
    assert int(total) > 0 and selected == total == tested, "not every operation was tested"
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", run.stdout).groups())
    assert generated == passed > 0
    assert requests.get(live_server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("path", MODEL_ROUTES.values())
def test_a_url_over_the_servers_limit_answers_414_json_as_documented(live_server, path):
    response = requests.get(live_server.url + path, params={"query": "a" * 5000}, timeout=5)
    assert response.status_code == 414
    assert "in the body" in response.json()["message"]
    document = requests.get(live_server.url + "/openapi.json", timeout=5).json()
    assert "414" in document["paths"][path]["get"]["responses"]


@pytest.fixture(scope="module")
def added_server(model_dir, tmp_path_factory):
    """gunicorn serving the session's models and four pipelines added with `release.py add`: a linear
    regression at /prices, a logistic regression at /plants, a random forest at /forest and gradient
    boosting at /boosted."""
    import shutil

    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
    from sklearn.pipeline import Pipeline

    from support import Server, house_pipeline, plant_pipeline, save_estimator
    from training import adopt

    folder = tmp_path_factory.mktemp("added")
    models = shutil.copytree(model_dir, folder / "models", symlinks=True)
    houses, held_houses = house_pipeline()
    plants, held_plants = plant_pipeline()
    held_houses.to_csv(folder / "houses.csv", index=False)
    held_plants.to_csv(folder / "plants.csv", index=False)
    forest = Pipeline([("prepare", houses.steps[0][1]), ("model", RandomForestRegressor(n_estimators=10))])
    forest.fit(held_houses.drop(columns="price"), held_houses["price"])
    boosted = Pipeline([("prepare", plants.steps[0][1]), ("model", HistGradientBoostingClassifier(max_iter=10))])
    boosted.fit(held_plants.drop(columns="species"), held_plants["species"])
    for name, fitted, data, route in (("houses", houses, "houses.csv", "/prices"),
                                      ("plants", plants, "plants.csv", None), ("forest", forest, "houses.csv", None),
                                      ("boosted", boosted, "plants.csv", None)):
        adopt.add(name, save_estimator(fitted, folder / f"{name}.skops"), folder / data, model_dir=models, route=route)
    server = Server(models).wait_healthy()
    yield server
    server.stop()


def test_schemathesis_finds_nothing_on_the_added_models_routes(added_server, tmp_path):
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               added_server.url + "/openapi.json", "--checks", "all", "--phases", "examples,coverage,fuzzing",
               "--include-path-regex", "^/(prices|plants|forest|boosted)$", "--max-examples", "100",
               "--request-timeout", "10", "--generation-database", "none", "--no-color", "--seed", str(SEED)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        pytest.fail(f"schemathesis failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}")
    selected, tested = (re.search(rf"^\s*{word}: (\d+)", run.stdout, re.M).group(1) for word in ("Selected", "Tested"))
    assert selected == tested == "8", "every added route's GET and POST is tested"
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", run.stdout).groups())
    assert generated == passed > 0
