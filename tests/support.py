"""What tests and benchmarks share: a tiny Kaggle-format data set, model builds, and real gunicorns.

Plain functions and classes, no pytest: `tests/conftest.py` wraps them in fixtures, and the
benchmarks import them as `tests.support`.
"""
import contextlib
import gzip
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import util  # noqa: E402
from serving.config import (  # noqa: E402
    MODEL_ROUTES,
    NUMBER_MODELS,
    Settings,  # noqa: E402
)
from store import artifacts  # noqa: E402
from training import build as build_model  # noqa: E402

# The routes of the text models (every model but the regressors, which take named inputs).
TEXT_ROUTES = {name: route for name, route in MODEL_ROUTES.items() if name not in NUMBER_MODELS}

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


MOVIE_GENRES = {"Drama": 6.8, "Comedy": 5.9, "Action": 6.0, "Horror": 5.2, "Documentary": 7.2, "Western": 6.5}
MOVIE_RATINGS_MPAA = ["G", "PG", "PG-13", "R"]
MOVIE_SOURCES = ["Original Screenplay", "Based on Book/Short Story", "Remake"]
MOVIE_TYPES = ["Contemporary Fiction", "Fantasy", "Science Fiction"]
MOVIE_DIRECTORS = [f"Director {n}" for n in range(30)]
MOVIE_DISTRIBUTORS = ["Big Studio", "Small Studio", "Art House"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def write_tiny_movies(folder, *, films=400, seed=0):
    """Write movies.json in vega-datasets' format: films whose IMDb rating follows their genre, budget and
    director, with the file's faults: missing fields, a rating missing, a century-late date, a title shared
    by a remake pair, a title stored as a number. Returns its path."""
    rng = random.Random(seed)
    records = []
    for n in range(films):
        genre = rng.choice(list(MOVIE_GENRES))
        budget = round(10 ** rng.uniform(5, 8.3))
        director = rng.choice(MOVIE_DIRECTORS)
        year = rng.randint(1970, 2010)
        rating = (MOVIE_GENRES[genre] + 0.3 * (int(director.split()[1]) % 5 - 2) - 0.2 * (budget > 5e7)
                  + rng.gauss(0, 0.5))
        records.append({
            "Title": f"Film {n}", "US Gross": rng.randint(0, 10**8), "Worldwide Gross": rng.randint(0, 10**8),
            "US DVD Sales": None, "Production Budget": budget,
            "Release Date": f"{rng.choice(MONTHS)} {rng.randint(1, 28):02d} {year}",
            "MPAA Rating": rng.choice(MOVIE_RATINGS_MPAA + [None]),
            "Running Time min": rng.choice([None, rng.randint(80, 180)]),
            "Distributor": rng.choice(MOVIE_DISTRIBUTORS), "Source": rng.choice(MOVIE_SOURCES),
            "Major Genre": genre, "Creative Type": rng.choice(MOVIE_TYPES),
            "Director": director if rng.random() < 0.7 else None, "Rotten Tomatoes Rating": None,
            "IMDB Rating": round(min(max(rating, 1.0), 10.0), 1), "IMDB Votes": rng.randint(100, 10**5),
        })
    for n in range(20):  # every year from 1991 to 2010 holds at least ten films
        records[n]["Release Date"] = f"Jan 01 {1991 + n % 20}"
    records[1]["IMDB Rating"] = None
    records[2]["Release Date"] = "Mar 03 2035"  # a century late: 1935
    records[3]["Title"] = records[4]["Title"] = "The Same Title"  # a remake pair sharing one rating
    records[5]["Title"] = 1941  # a title stored as a number
    records[6]["Major Genre"] = None  # no genre: not kept
    path = Path(folder) / "movies.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def write_reviews(path, count, *, seed=0, packed=False):
    """Write `count` short reviews, one per line (a blank line now and then), to `path`, gzip-compressed if
    `packed`; return it."""
    rng = random.Random(seed)
    vocabulary = [word for words in WORDS.values() for word in words] + FILLER + ["zzzqx"]
    text = "\n".join("" if n % 13 == 0 else " ".join(rng.choices(vocabulary, k=rng.randint(1, 9)))
                     for n in range(count)) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    return path


def write_kaggle_test(path, count, *, seed=0):
    """Write a Kaggle-format test file of `count` phrases to `path`; return it."""
    rng = random.Random(seed)
    vocabulary = [word for words in WORDS.values() for word in words] + FILLER
    rows = [f"{156060 + n}\t{8544 + n // 5}\t{' '.join(rng.choices(vocabulary, k=rng.randint(0, 7)))}"
            for n in range(1, count + 1)]
    path.write_text("\n".join(["PhraseId\tSentenceId\tPhrase", *rows]) + "\n")
    return path


def non_review_text():
    """Lines of this repository's docs and README, their markup taken out: English about software, not film
    reviews (the drift tests' shifted traffic)."""
    lines = []
    for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for line in path.read_text().splitlines():
            line = " ".join(re.sub(r"[`*|#\[\]()_>]", " ", line).split())
            if len(line.split()) >= 6:
                lines.append(line)
    return lines


def build_models(train, out, *, args=(), movies=None):
    """Build both text models from the Kaggle-format `train` file into `out`, and the ratings model from
    `movies` (a movies.json; none without it), quietly, with build_model.py's other `args` (e.g.
    ["--classifier", "naive-bayes"]); return `out`."""
    with contextlib.redirect_stdout(io.StringIO()) as said:
        code = build_model.main(["--data", str(train), "--out", str(out),
                                 *(["--movies", str(movies)] if movies else []), *args])
    if code != 0:
        raise RuntimeError(f"building the models from {train} failed:\n{said.getvalue()}")
    return Path(out)


HOUSE_AREAS = ["north", "south", "east", "west"]


def house_pipeline(*, seed=0, rows=300, alpha=1.0):
    """A linear regression pipeline as a data scientist would fit one in a notebook (one-hot areas, imputed
    and scaled numbers, Ridge), on made-up house prices: (fitted pipeline, held-out rows with the price)."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"area": rng.choice(HOUSE_AREAS, rows), "rooms": rng.integers(1, 8, rows).astype(float),
                          "age": rng.uniform(0, 80, rows), "distance": rng.normal(0, 3, rows)})
    price = 100 + 30 * frame["rooms"] - 0.5 * frame["age"] + 4 * frame["distance"] + \
        frame["area"].map({"north": 20, "south": -10, "east": 5, "west": 0}) + rng.normal(0, 10, rows)
    frame.loc[::7, "age"] = np.nan
    prepare = ColumnTransformer([
        ("area", OneHotEncoder(handle_unknown="error"), ["area"]),
        ("numbers", Pipeline([("fill", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
         ["rooms", "age", "distance"])])
    train = rows * 3 // 4
    fitted = Pipeline([("prepare", prepare), ("ridge", Ridge(alpha=alpha))]).fit(frame[:train], price[:train])
    return fitted, frame[train:].assign(price=price[train:]).reset_index(drop=True)


def plant_pipeline(*, seed=0, rows=400, classes=("fern", "moss", "palm"), C=1.0):
    """A logistic regression pipeline on made-up plants (one-hot soil, imputed and scaled sizes): (fitted
    pipeline, held-out rows with the species)."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    species = rng.choice(list(classes), rows)
    position = {name: i for i, name in enumerate(classes)}
    frame = pd.DataFrame({"soil": rng.choice(["clay", "sand", "peat"], rows),
                          "height": [rng.normal(10 + 15 * position[s], 6) for s in species],
                          "leaf": [rng.normal(3 + 2 * position[s], 1.5) for s in species]})
    frame.loc[::9, "leaf"] = np.nan
    prepare = ColumnTransformer([
        ("soil", OneHotEncoder(handle_unknown="ignore"), ["soil"]),
        ("sizes", Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]), ["height", "leaf"])])
    train = rows * 3 // 4
    fitted = Pipeline([("prepare", prepare), ("model", LogisticRegression(C=C))]).fit(frame[:train], species[:train])
    return fitted, frame[train:].assign(species=species[train:]).reset_index(drop=True)


def save_estimator(fitted, path):
    """Save a fitted estimator as its author would: skops for .skops, joblib for .joblib, else pickle."""
    import pickle

    path = Path(path)
    if path.suffix == ".skops":
        import skops.io
        skops.io.dump(fitted, path)
    elif path.suffix == ".joblib":
        import joblib
        joblib.dump(fitted, path)
    else:
        path.write_bytes(pickle.dumps(fitted))
    return path


def flush(application):
    """Write what an app's prediction log has queued (its services stopped and started again)."""
    from serving import lifecycle

    lifecycle.stop_services(application, 10)
    lifecycle.start_services(application)


DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_instructions(path=DOCKERFILE):
    """[(INSTRUCTION, arguments)] of a Dockerfile in order, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(kind.upper(), arguments.strip()) for kind, _, arguments in
            (line.strip().partition(" ") for line in text.splitlines() if line.strip())]


def dockerfile_env(instructions):
    """The variables the ENV instructions set (KEY=VALUE form), later ones winning, as in Docker."""
    return dict(pair.split("=", 1) for kind, arguments in instructions if kind == "ENV" for pair in arguments.split())


def dockerfile_last(instructions, kind):
    """The arguments of the last instruction of a kind: the one Docker applies."""
    return [arguments for k, arguments in instructions if k == kind][-1]


README = (ROOT / "README.md").read_text()
README_URL = "http://127.0.0.1:5000"


def section(text, heading):
    """A Markdown document's section under `heading` (a `## ` line), up to the next `## ` heading."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


# The examples a user copies, each shown with the output of a real run: the README's "Calling the API",
# and the API's details that moved to docs/api.md from it (feedback, errors, the Open Inference Protocol).
DOCS_API = (ROOT / "docs" / "api.md").read_text()
EXAMPLE_SECTIONS = {
    "README.md": section(README, "## Calling the API") + section(README, "## Predicting a film's rating"),
    **{f"docs/api.md {heading}": section(DOCS_API, heading)
       for heading in ("## Feedback", "## Errors", "## The Open Inference Protocol")},
}
SECTION = "".join(EXAMPLE_SECTIONS.values())
# The tritonclient session of the Open Inference Protocol names a host and port, not README_URL, so it cannot
# be aimed at a test server: its pycon block is left out (tests/e2e/test_open_inference_live.py runs
# tritonclient against a live server).
PYCON_SECTION = "".join(text for name, text in EXAMPLE_SECTIONS.items() if "Open Inference" not in name)


def console_examples():
    """(command, expected output) for every `$ ` line of the example sections' console blocks."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", SECTION, flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            examples.append((command, output.strip()))
    return examples


def pycon_examples():
    """The text of every pycon block of the example sections (but the tritonclient session)."""
    return re.findall(r"```pycon\n(.*?)```", PYCON_SECTION, flags=re.S)


def samples(metrics_text):
    """{(sample name, frozenset of label items): value} of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics_text) for s in family.samples}


def value(table, name, **labels):
    """One sample's value of a `samples` table, 0 if absent."""
    return table.get((name, frozenset(labels.items())), 0)


def run_build(*args, **popen):
    """Start `python build_model.py ARGS` in the repo, as a user would."""
    return subprocess.Popen([sys.executable, "build_model.py", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def run_predict(*args, timeout=600, **kwargs):
    """Run `python predict.py ARGS` in the repo, as a user does; return the CompletedProcess."""
    return subprocess.run([sys.executable, "predict.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def wrk_figures(output):
    """wrk's summary as a dict: requests, requests_per_s, socket_errors (all kinds), non_2xx, and the output."""
    figures = {"output": output, "socket_errors": 0, "non_2xx": 0}
    figures["requests"] = int(re.search(r"(\d+) requests in", output).group(1))
    figures["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    if errors := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        figures["socket_errors"] = sum(int(n) for n in errors.groups())
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        figures["non_2xx"] = int(non_2xx.group(1))
    return figures


def wait_for(predicate, timeout=30):
    """Poll until `predicate()` is true; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


class Clients:
    """Client threads sending requests in a loop until the `with` block ends; every outcome is recorded.

    A subclass says what one request is: `send(client, n)` sends client `client`'s `n`-th request and
    returns the outcome to record (in `outcomes`, in the order they come).
    """

    def __init__(self, url, *, threads=4):
        self.url, self.outcomes, self.stopping = url, [], threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, client):
        """One client, until the block ends."""
        sent = 0
        while not self.stopping.is_set():
            self.outcomes.append(self.send(client, sent))
            sent += 1

    def send(self, client, n):
        """One request and its outcome."""
        raise NotImplementedError

    def wait_for(self, count, timeout=60):
        """Block until `count` more requests have been answered (or have failed); True if they were."""
        target = len(self.outcomes) + count
        return wait_for(lambda: len(self.outcomes) >= target, timeout=timeout)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        self.wait_for(20)  # under way before the block starts
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The service's own settings and gunicorn's, as the environment sets them: a test's server gets only
# those the test gives, whatever the developer's shell holds.
SERVICE_VARIABLES = {f.name for f in fields(Settings)} | {"BIND", "WEB_CONCURRENCY", "SENTIMENT_METRICS_DIR_SET_UP"}


class Server:
    """A real gunicorn on a free port of `host` (loopback) with the repo's gunicorn.conf.py, serving `target`.

    `root` is the checkout it runs in (this one by default): its code and its gunicorn.conf.py.

    Its output goes to `log_path`, or to a temporary file: a pipe nobody reads would fill and block
    every worker's access-log line.
    """

    def __init__(self, model_dir, *, env=None, args=(), target="app:app", log_path=None, host="127.0.0.1",
                 root=ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
        # Its own prediction log unless the test gives one, removed with the server.
        self.state = tempfile.mkdtemp(prefix="sentiment-state-")
        self.prediction_log = (env or {}).get("PREDICTION_LOG", f"sqlite:///{self.state}/predictions.sqlite3")
        environment.update({"MODEL_DIR": str(model_dir), "BIND": f"{host}:{self.port}",
                            "PREDICTION_LOG": self.prediction_log, **(env or {})})
        self.log = open(log_path, "w+") if log_path else tempfile.TemporaryFile(mode="w+")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args, target], cwd=root, env=environment,
            stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self):
        """Everything gunicorn has written so far."""
        self.log.seek(0)
        return self.log.read()

    def workers(self):
        """The pids of gunicorn's live workers: the master's children."""
        pid = self.process.pid
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def writers(self):
        """The pids of the workers' prediction-log writer processes: the workers' children."""
        pids = set()
        for worker in self.workers():
            with contextlib.suppress(FileNotFoundError):  # a worker that has just ended
                pids |= {int(p) for p in Path(f"/proc/{worker}/task/{worker}/children").read_text().split()}
        return pids

    def models_created_at(self):
        """Each served model's created_at, by name, as /models shows it."""
        return {m["name"]: m["created_at"] for m in requests.get(self.url + "/models", timeout=10).json()["models"]}

    def wait_healthy(self, path="/health", timeout=30):
        """Block until `path` answers 200 and return the server; raise with gunicorn's output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
                pass
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"gunicorn not healthy after {timeout} s:\n{self.output()}")

    def stop(self):
        """SIGTERM, then wait; remove its own prediction log; return gunicorn's output."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.state, ignore_errors=True)
        return self.output()


NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
NGINX_BINARY = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian puts it in sbin, often off a user's PATH


class Nginx:
    """nginx run as the template's header says: rendered with envsubst, any prefix, in the foreground."""

    def __init__(self, prefix, *, upstream):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        rendered = subprocess.run(["envsubst", "$LISTEN $UPSTREAM"], input=NGINX_TEMPLATE.read_text(), text=True,
                                  capture_output=True, check=True,
                                  env={**os.environ, "LISTEN": f"127.0.0.1:{self.port}", "UPSTREAM": upstream}).stdout
        self.config = prefix / "nginx.conf"
        self.config.write_text(rendered)
        self.log = open(prefix / "output.log", "w+")
        self.process = subprocess.Popen([NGINX_BINARY, "-p", str(prefix), "-c", str(self.config), "-g", "daemon off;"],
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self):
        """Block until /health answers 200 through nginx; return self."""
        def healthy():
            try:
                return requests.get(self.url + "/health", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        assert wait_for(healthy, timeout=20), self.output()
        return self

    def output(self):
        """What nginx has written: its access lines and errors."""
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """Quit and wait."""
        self.process.terminate()
        self.process.wait(timeout=20)


DASK = Path(sys.executable).with_name("dask")  # the CLI that distributed installs beside this Python


class DaskCluster:
    """A Dask cluster as docs/batch.md starts one: `dask scheduler` and `dask worker` processes on loopback.

    The scheduler and workers import this repository's modules (PYTHONPATH), unless `scheduler_code` is
    false; `preload` is a module path each worker imports at start, as `dask worker --preload` does; `worker_env`
    is added to the workers' environment. With `hidden`, a folder, the workers run in a mount namespace of
    their own with an empty file system over it: they cannot see its files, as workers on other machines
    cannot see this one's (`unshare`, as root).
    """

    def __init__(self, folder, *, workers=2, preload=None, scheduler_code=True, worker_env=None, hidden=None):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(ROOT)}
        self.log = open(folder / "dask.log", "w+")
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            cwd=folder, env=env if scheduler_code else {k: v for k, v in env.items() if k != "PYTHONPATH"},
            stdout=self.log, stderr=subprocess.STDOUT)
        command = [DASK, "worker", self.address, "--nworkers", str(workers), "--nthreads", "1", "--host", "127.0.0.1",
                   "--no-dashboard", *(["--preload", str(preload)] if preload else [])]
        if hidden is not None:
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs hidden "$0" && exec "$@"', str(hidden), *command]
        from batch.cluster import WORKER_ENVIRONMENT  # as docs/batch.md starts them

        self.workers = subprocess.Popen(command, cwd=folder, env={**env, **WORKER_ENVIRONMENT, **(worker_env or {})},
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.expected = workers

    def client(self):
        """A distributed.Client of this cluster, once all its workers have joined."""
        from distributed import Client

        client = Client(self.address, timeout="30s")
        client.wait_for_workers(self.expected, timeout=60)
        return client

    def output(self):
        """What the scheduler and workers have logged."""
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """Stop the workers, then the scheduler."""
        for process in (self.workers, self.scheduler):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def postgres_bin(name):
    """A PostgreSQL server program: on PATH, or where Debian's `postgresql` package puts it."""
    found = shutil.which(name) or sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return found if isinstance(found, str) else (str(found[-1]) if found else None)


class PostgresCluster:
    """A private PostgreSQL cluster on a free loopback port: initdb into a new folder, pg_ctl start and stop.

    Run as the `postgres` user when the tests run as root (the server refuses to run as root), trusting
    loopback connections: it exists only for the tests that made it, and is removed with `remove()`.
    """

    def __init__(self):
        # Its own folder in /tmp: the server's user must reach it, and pytest's temporary folders are private.
        self.folder = Path(tempfile.mkdtemp(prefix="sentiment-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self.run(postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync")
        self.start()

    def run(self, *command):
        """Run a server program as the cluster's owner; raise with its output if it fails."""
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_owner, *command], capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self):
        """Start the server and wait until it takes connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self.run(postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
                 "-w", "start")
        return self

    def stop(self):
        """Stop the server at once (open connections are cut, as in a crash or a restart)."""
        self.run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def database(self, name):
        """Create an empty database; return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def remove(self):
        """Stop the server if it runs and delete the cluster."""
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except RuntimeError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


# --- Checks and builders several test modules use ----------------------------------------------

LEAKS = ("Traceback", 'File "', '.py", line', str(ROOT), "site-packages", "werkzeug", "Werkzeug")
TOKEN = "correct-horse-battery-staple"


def assert_json_error(status, body, expected_status, hint=""):
    """The answer is a JSON {"message": ...} with the expected status, the hint, and no internals."""
    assert status == expected_status, body
    document = json.loads(body)
    assert list(document) == ["message"]
    assert hint in document["message"]
    for leak in LEAKS:
        assert leak not in body, leak


def edit_manifest(folder, change):
    """Rewrite `manifest.json` after `change(manifest)`."""
    manifest = util.read_json(folder / artifacts.MANIFEST_FILE)
    change(manifest)
    (folder / artifacts.MANIFEST_FILE).write_text(json.dumps(manifest))


class Call:
    """Pickles as a call of `function(*args)`: what a hostile pickle does to run code."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args

    def __call__(self, *args):
        """Never called here: pickle only needs the first item of a reduction to be callable."""
        raise AssertionError("a payload is only ever pickled")


def install(models, name, data, file=artifacts.CLASSIFIER_FILE):
    """Put `data` in place of the binary model's `file` and rewrite the manifest so every hash matches,
    as an attacker with write access to the model folder would; return the folder."""
    folder = (models / name).resolve()
    (folder / file).write_bytes(data)
    edit_manifest(folder, lambda m: m["artifacts"].__setitem__(file, util.sha256_file(folder / file)))
    return folder


def build(*args):
    """Run the build in-process, quietly; return (exit status, what it printed)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = build_model.main([str(a) for a in args])
    return code, out.getvalue() + err.getvalue()


def scrambled(train, out, share=0.6, seed=1):
    """A copy of a Kaggle-format train.tsv with `share` of its labels replaced by random ones (a broken export)."""
    rng = random.Random(seed)
    lines = train.read_text().splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        *rest, label = line.split("\t")
        rows.append("\t".join([*rest, str(rng.randrange(5)) if rng.random() < share else label]))
    out.write_text("\n".join(rows) + "\n")
    return out


def release_cli(models, *args):
    """Run `python release.py --model-dir MODELS ARGS` as a user does; return the CompletedProcess."""
    return subprocess.run([sys.executable, "release.py", "--model-dir", str(models), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def published(out):
    """Each model's published version folder in the models folder `out` and its manifest's creation time."""
    return {name: ((out / name).resolve(), util.read_json(out / name / artifacts.MANIFEST_FILE)["created_at"])
            for name in ("binary", "fine-grained") if (out / name).exists()}
