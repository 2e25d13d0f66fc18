"""Shared fixtures: a tiny Kaggle-format data set, models built from it once, an app per test,
a live gunicorn server, and the real Kaggle files when KAGGLE_DATA_DIR points at them."""
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import build_model  # noqa: E402
from app import create_app  # noqa: E402

# Words by Kaggle label (0 = Negative ... 4 = Positive): sentences are made from them so that each
# label has phrases a model can learn, with some noise words shared by all.
WORDS = {
    0: ["awful", "dreadful", "unwatchable", "worst", "insufferable"],
    1: ["dull", "tedious", "flat", "clumsy", "forgettable"],
    2: ["film", "director", "scene", "actors", "story"],
    3: ["charming", "pleasant", "decent", "likable", "solid"],
    4: ["brilliant", "masterpiece", "wonderful", "superb", "dazzling"],
}
FILLER = ["the", "movie", "is", "a", "with", "and", "its", "plot", "cast"]


def write_tiny_kaggle(folder, *, sentences=200, seed=0):
    """Write train.tsv and test.tsv in Kaggle's format: sentences split into labelled phrases.

    Includes a whitespace-only phrase, as Kaggle's own train.tsv does.
    """
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train, test = ["PhraseId\tSentenceId\tPhrase\tSentiment"], ["PhraseId\tSentenceId\tPhrase"]
    phrase_id = 1
    for sentence_id in range(1, sentences + 1):
        label = sentence_id % 5
        words = rng.sample(WORDS[label], 2) + rng.sample(FILLER, 3) + [rng.choice(WORDS[2])]
        rng.shuffle(words)
        phrases = [" ".join(words), " ".join(words[:3]), " ".join(words[3:])]
        for phrase in phrases:
            phrase_label = label if any(w in WORDS[label] for w in phrase.split()) else 2
            train.append(f"{phrase_id}\t{sentence_id}\t{phrase}\t{phrase_label}")
            phrase_id += 1
    train.append(f"{phrase_id}\t{sentences}\t \t2")  # the whitespace-only phrase
    for sentence_id in range(1, 21):
        words = rng.sample(WORDS[sentence_id % 5], 2) + rng.sample(FILLER, 2)
        test.append(f"{100000 + sentence_id}\t{9000 + sentence_id}\t{' '.join(words)}")
    (folder / "train.tsv").write_text("\n".join(train) + "\n")
    (folder / "test.tsv").write_text("\n".join(test) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder with a tiny Kaggle-format train.tsv and test.tsv."""
    return write_tiny_kaggle(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def model_dir(tiny_data, tmp_path_factory):
    """Both models built from the tiny data set, once per session. Tests must not modify it."""
    out = tmp_path_factory.mktemp("models")
    assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(out)]) == 0
    return out


@pytest.fixture
def app(model_dir):
    """A fresh app on the session's models."""
    return create_app({"MODEL_DIR": str(model_dir)})


@pytest.fixture
def client(app):
    """Flask's test client for `app`."""
    return app.test_client()


@pytest.fixture(scope="session")
def kaggle_dir():
    """The real Kaggle files, or skip: set KAGGLE_DATA_DIR to the folder holding train.tsv.gz."""
    folder = os.environ.get("KAGGLE_DATA_DIR")
    if not folder or not (Path(folder) / "train.tsv.gz").is_file():
        pytest.skip("set KAGGLE_DATA_DIR to the folder with Kaggle's train.tsv.gz to run this test")
    return Path(folder)


@pytest.fixture(scope="session")
def kaggle_model_dir(kaggle_dir, tmp_path_factory):
    """Both models built from Kaggle's real train.tsv with the shipped defaults, once per session."""
    out = tmp_path_factory.mktemp("kaggle-models")
    assert build_model.main(["--data", str(kaggle_dir / "train.tsv.gz"), "--out", str(out)]) == 0
    return out


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real gunicorn serving app:app with gunicorn.conf.py, on a loopback port."""

    def __init__(self, model_dir, *, env=None, args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "MODEL_DIR": str(model_dir), "BIND": f"127.0.0.1:{self.port}",
                       **(env or {})}
        # A file, not a pipe: nobody reads a pipe while tests run, and once its buffer is full the access
        # log blocks every worker.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:app", *args], cwd=ROOT, env=environment,
            stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self):
        """Everything gunicorn has written so far."""
        self.log.seek(0)
        return self.log.read()

    def workers(self):
        """The pids of gunicorn's workers: the master's children."""
        pid = self.process.pid
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def models_created_at(self):
        """Each served model's created_at, by name, as /models shows it."""
        return {m["name"]: m["created_at"] for m in requests.get(self.url + "/models", timeout=10).json()["models"]}

    def wait_healthy(self, timeout=30):
        """Block until /health answers 200; fail with gunicorn's output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn not healthy after {timeout} s:\n{self.output()}")

    def stop(self):
        """SIGTERM, then wait; return gunicorn's output."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output()


@pytest.fixture(scope="session")
def live_server(model_dir):
    """gunicorn with the repo's gunicorn.conf.py on the tiny models, for the whole session."""
    server = Server(model_dir).wait_healthy()
    yield server
    server.stop()
