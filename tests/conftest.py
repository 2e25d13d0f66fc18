"""Fixtures: the tiny Kaggle-format data set, models built from it once, an app per test, a live
gunicorn, and the real Kaggle files when KAGGLE_DATA_DIR points at them.

Tests under tests/e2e/ (a live gunicorn, a browser, a notebook kernel) are marked `e2e`:
`python -m pytest -m "not e2e"` is the quick inner loop.
"""
import os
from pathlib import Path

import pytest

from app import create_app
from support import ROOT, Server, build_models, write_tiny_kaggle, write_tiny_movies

E2E_DIR = ROOT / "tests" / "e2e"
# vega-datasets' real movies.json, for the tests that ask for it (`movies_file`). Taken out of the
# environment, so that no build of the tests (nor a server's) finds it unasked: a build given only
# `--data` looks for movies.json there.
REAL_MOVIES_DIR = os.environ.pop("MOVIES_DATA_DIR", None)


def pytest_addoption(parser):
    """Options for the longer runs CI leaves out."""
    parser.addoption("--schemathesis-long", action="store_true",
                     help="fuzz the live API with ten times the examples and a random seed")


def pytest_collection_modifyitems(items):
    """Mark every test under tests/e2e/ as e2e."""
    for item in items:
        if Path(item.path).is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def own_prediction_log(tmp_path, monkeypatch):
    """Apps built in a test record to a database of the test's own, never to the checkout's state folder."""
    from serving import config

    url = f"sqlite:///{tmp_path}/state/predictions.sqlite3"
    monkeypatch.setattr(config, "DEFAULT_PREDICTION_LOG", url)
    return url


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder with a tiny Kaggle-format train.tsv and test.tsv, and a tiny movies.json."""
    folder = write_tiny_kaggle(tmp_path_factory.mktemp("tiny-data"))
    write_tiny_movies(folder)
    return folder


@pytest.fixture(scope="session")
def model_dir(tiny_data, tmp_path_factory):
    """Every model (the two text models, and ratings) built from the tiny data sets, once per session. Tests
    must not modify it."""
    return build_models(tiny_data / "train.tsv", tmp_path_factory.mktemp("models"), movies=tiny_data / "movies.json")


@pytest.fixture
def app(model_dir):
    """A fresh app on the session's models, with default settings whatever the environment holds."""
    return create_app({"MODEL_DIR": str(model_dir)})


@pytest.fixture
def client(app):
    """Flask's test client for `app`."""
    return app.test_client()


@pytest.fixture
def recording(model_dir, own_prediction_log):
    """An app whose prediction log's writer runs, as in a worker; stopped (and flushed) after the test."""
    from serving import lifecycle

    application = create_app({"MODEL_DIR": str(model_dir), "PREDICTION_LOG": own_prediction_log})
    lifecycle.start_services(application)
    yield application
    lifecycle.stop_services(application, 10)


@pytest.fixture(scope="session")
def kaggle_dir():
    """The real Kaggle files, or skip: set KAGGLE_DATA_DIR to the folder holding train.tsv.gz."""
    folder = os.environ.get("KAGGLE_DATA_DIR")
    if not folder or not (Path(folder) / "train.tsv.gz").is_file():
        pytest.skip("set KAGGLE_DATA_DIR to the folder with Kaggle's train.tsv.gz to run this test")
    return Path(folder)


@pytest.fixture(scope="session")
def movies_file():
    """vega-datasets' real movies.json, or skip: set MOVIES_DATA_DIR to the folder holding it."""
    if not REAL_MOVIES_DIR or not (Path(REAL_MOVIES_DIR) / "movies.json").is_file():
        pytest.skip("set MOVIES_DATA_DIR to the folder with vega-datasets' movies.json to run this test")
    return Path(REAL_MOVIES_DIR) / "movies.json"


@pytest.fixture(scope="session")
def kaggle_model_dir(kaggle_dir, tmp_path_factory):
    """Both text models built from Kaggle's real train.tsv with the shipped defaults, and the ratings model from
    vega-datasets' real movies.json when MOVIES_DATA_DIR has it, once per session."""
    movies = Path(REAL_MOVIES_DIR) / "movies.json" if REAL_MOVIES_DIR else None
    return build_models(kaggle_dir / "train.tsv.gz", tmp_path_factory.mktemp("kaggle-models"),
                        movies=movies if movies and movies.is_file() else None)


@pytest.fixture
def models(model_dir, tmp_path):
    """A private copy of the session's published models (links, versions and all), safe to break or rebuild."""
    import shutil

    return shutil.copytree(model_dir, tmp_path / "models", symlinks=True)


@pytest.fixture(scope="module")
def kaggle_server(kaggle_model_dir):
    """gunicorn with the repo's settings on the models built from Kaggle's real data, for the module."""
    server = Server(kaggle_model_dir).wait_healthy()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(model_dir):
    """gunicorn with the repo's gunicorn.conf.py on the tiny models, for the whole session."""
    server = Server(model_dir).wait_healthy()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the session (Debian's `postgresql`; .ci/run installs it)."""
    from support import PostgresCluster, postgres_bin

    if postgres_bin("initdb") is None:
        pytest.fail("PostgreSQL's server programs are not installed: apt-get install postgresql")
    cluster = PostgresCluster()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(postgres, request):
    """A fresh, empty database on the session's PostgreSQL cluster."""
    import hashlib
    import re

    # PostgreSQL names stop at 63 bytes: the test's name cut short, and a hash of it whole (its parameters).
    name = request.node.name
    return postgres.database(re.sub(r"\W", "_", name.lower())[:40] + f"_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
                             f"_{os.getpid()}")
