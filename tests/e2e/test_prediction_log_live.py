"""The prediction log under a real gunicorn, real SQLite and a real PostgreSQL: every answer a row after a
SIGTERM or a SIGHUP, feedback for answers still queued in another worker, a database stopped under load, a
full disk, a worker SIGKILLed, a log that cannot be used at start, feedback refused, and the learning loop
from answers to feedback to a rebuilt model. The same parts without HTTP are in test_prediction_log.py.

To prove that a flush at exit wrote rows (rather than the writer's usual quarter-second round), some tests
lock the predictions table while the last answers are given: their rows can only wait in the queues of
the workers that gave them, until those workers are exiting.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from serving import prediction_log
from support import ROOT, Clients, Server, assert_json_error, samples, value, wait_for

TWO_WORKERS = {"WEB_CONCURRENCY": "2"}
DROP_WARNING = "prediction log: dropped"  # the start of the writer's warning line


# --- Helpers -------------------------------------------------------------------------------------

def sqlite_log(folder):
    """A SQLite PREDICTION_LOG in `folder`: it outlives the server (Server.stop removes the server's own)."""
    return f"sqlite:///{folder}/log/predictions.sqlite3"


def score(server, text, path="/"):
    """GET one text on a new connection, so either worker may take it; the 200 answer's JSON."""
    response = requests.get(server.url + path, params={"query": text}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def score_all(server, texts, path="/"):
    """GET each text, four at a time, on new connections; the answers in order."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda text: score(server, text, path), texts))


def score_batch(server, texts, path="/"):
    """POST a batch; its answers."""
    response = requests.post(server.url + path, json={"queries": texts}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def logged(url):
    """How many rows the prediction log holds for each answer id."""
    return Counter(prediction_log.read_predictions(url)["id"])


def dropped(server, reason):
    """sentiment_prediction_log_dropped_total{reason} as /metrics shows it (all workers summed)."""
    return value(samples(requests.get(server.url + "/metrics", timeout=10).text),
                 "sentiment_prediction_log_dropped_total", reason=reason)


def drop_warnings(output):
    """The warning lines about dropped rows in gunicorn's output."""
    return [line for line in output.splitlines() if DROP_WARNING in line]


def exiting(server, pids):
    """True once gunicorn has logged that every worker in `pids` is exiting (its worker_exit hook runs next)."""
    output = server.output()
    return all(f"Worker exiting (pid: {pid})" in output for pid in pids)


@contextlib.contextmanager
def writes_held(url):
    """Lock the prediction log against writes for the block: rows answered meanwhile wait in the queues.

    SQLite: the database's write lock (a writer waits 5 s for it, then drops its batch, so keep the block
    short). PostgreSQL: an EXCLUSIVE lock on the predictions table, which readers and the master's
    start-up check pass.
    """
    engine = prediction_log.make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("LOCK TABLE predictions IN EXCLUSIVE MODE")
            yield
            connection.rollback()
    finally:
        engine.dispose()


class Traffic(Clients):
    """Client threads scoring distinct texts with GET /?query=... on new connections until the block ends.

    Each outcome is (received at, monotonic; the status, or the error; the answer's id, or None).
    """

    def __init__(self, server, *, threads=4):
        super().__init__(server.url, threads=threads)

    def send(self, client, n):
        """One GET of a new text, so every answer is its own row."""
        try:
            response = requests.get(self.url + "/", params={"query": f"a superb film, client {client} #{n}"},
                                    timeout=30)
            return time.monotonic(), response.status_code, response.json()["id"] if response.ok else None
        except requests.RequestException as exc:
            return time.monotonic(), repr(exc), None

    def wait_for(self, count, timeout=60):
        """Block until `count` more requests have been answered (or failed)."""
        assert super().wait_for(count, timeout), "the traffic stalled"

    def ids(self, start=0):
        """The ids of the answers from outcome `start` on."""
        return [answer_id for _, _, answer_id in self.outcomes[start:] if answer_id]

    def failures(self):
        """Every outcome that is not a 200: its status or error."""
        return [what for _, what, _ in self.outcomes if what != 200]


# --- Every answer is a row -----------------------------------------------------------------------

@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_answer_of_two_workers_is_one_row_after_sigterm_even_those_still_queued(
        database, model_dir, tmp_path, request):
    url = sqlite_log(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": url}).wait_healthy()
    try:
        assert wait_for(lambda: len(server.workers()) == 2), "two workers never booted"
        answers = score_all(server, [f"a superb film, take {n}" for n in range(100)])
        with writes_held(url):
            answers += score_all(server, [f"an awful plot, take {n}" for n in range(50)])
            answers += score_batch(server, [f"a dull scene, take {n}" for n in range(100)])
            answers += score_batch(server, [f"a charming story, take {n}" for n in range(20)], "/fine-grained")
            workers = server.workers()
            server.process.send_signal(signal.SIGTERM)
            assert wait_for(lambda: exiting(server, workers), timeout=20), server.output()
        assert server.process.wait(timeout=20) == 0
    finally:
        output = server.stop()
    rows, answered = logged(url), Counter(answer["id"] for answer in answers)
    assert rows == answered, f"{len(answered - rows)} answers have no row, {len(rows - answered)} rows too many"
    assert len(answers) == 270
    assert drop_warnings(output) == []


def test_sighup_writes_the_rows_the_old_workers_still_hold_and_fails_no_request(model_dir, postgres_url):
    server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": postgres_url}).wait_healthy()
    try:
        with Traffic(server, threads=3) as traffic:
            with writes_held(postgres_url):
                traffic.wait_for(50)
                old = server.workers()
                answered_by_old = traffic.ids()
                server.process.send_signal(signal.SIGHUP)
                assert wait_for(lambda: exiting(server, old), timeout=30), server.output()
            # The old workers wrote their queues on the way out: their rows are there while the server runs.
            assert wait_for(lambda: not server.workers() & old, timeout=30), "the old workers never exited"
            assert wait_for(lambda: set(answered_by_old) <= set(logged(postgres_url)), timeout=10)
            traffic.wait_for(50)
        assert server.process.poll() is None
    finally:
        output = server.stop()
    assert traffic.failures() == []
    assert logged(postgres_url) == Counter(traffic.ids())
    assert "Handling signal: hup" in output
    assert drop_warnings(output) == []


def test_feedback_for_an_answer_whose_row_is_still_queued_is_accepted_by_either_worker(model_dir, tmp_path):
    url = sqlite_log(tmp_path)
    server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": url}).wait_healthy()
    given = []
    try:
        assert wait_for(lambda: len(server.workers()) == 2), "two workers never booted"
        with writes_held(url):  # every answer's row waits in the queue of the worker that gave it
            for n in range(50):
                answer = score(server, f"a decent likable story, take {n}")
                response = requests.post(server.url + "/feedback", json={"id": answer["id"], "label": "Positive"},
                                         timeout=10)
                assert response.status_code == 202, response.text
                assert response.json() == {"accepted": [{
                    "id": answer["id"], "model": "binary", "model_version": answer["model_version"],
                    "predicted": answer["prediction"], "label": "Positive"}]}
                given.append(answer)
    finally:
        output = server.stop()
    table = prediction_log.read_feedback(url)
    missing = {answer["id"] for answer in given} - set(table["id"])
    assert not missing and len(table) == len(given), f"{len(missing)} of {len(given)} labels were not recorded"
    assert set(table["label"]) == {"Positive"}
    assert dict(zip(table["id"], table["predicted"])) == {answer["id"]: answer["prediction"] for answer in given}
    assert table["confidence"].notna().all()  # each label beside its answer's row
    assert drop_warnings(output) == []


# --- The database in trouble ---------------------------------------------------------------------

def test_postgresql_stopped_and_restarted_under_load_costs_counted_rows_not_answers_and_recording_resumes(
        model_dir, postgres, postgres_url):
    server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": postgres_url}).wait_healthy()
    try:
        with Traffic(server, threads=4) as traffic:
            traffic.wait_for(100)
            postgres.stop()
            try:
                time.sleep(3)
                traffic.wait_for(50)  # answered with the database down
            finally:
                postgres.start()
            # Outcomes from here on were answered after the restart, but for at most one in flight per client
            # (scored, and its row queued, while the database was still down).
            restarted = len(traffic.outcomes) + len(traffic.threads)
            traffic.wait_for(200)
            after_restart = traffic.ids(restarted)
            started = time.monotonic()
            assert wait_for(lambda: set(after_restart) <= set(logged(postgres_url)), timeout=10), \
                "recording did not resume after the restart"
            resumed_in = time.monotonic() - started
        database_errors, queue_full = dropped(server, "database_error"), dropped(server, "queue_full")
    finally:
        output = server.stop()
    warnings = drop_warnings(output)
    print(f"\npostgres down 3 s: {len(traffic.outcomes)} answers, {database_errors:.0f} rows dropped (database_error), "
          f"{queue_full:.0f} (queue_full), {len(warnings)} warning lines; the rows answered after the restart "
          f"were all in the log {resumed_in:.1f} s after the last of them")
    assert traffic.failures() == []
    assert database_errors + queue_full > 0
    assert 1 <= len(warnings) <= 2, warnings  # at most one a minute in each of the two workers
    assert "Traceback" not in output


def fill(path):
    """Write `path` until its file system has no room left."""
    with open(path, "wb", buffering=0) as filler:  # unbuffered: a write the disk refuses is not retried at close
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * chunk)


def test_a_full_disk_under_the_sqlite_log_costs_counted_rows_not_answers_and_recording_resumes(model_dir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    url = f"sqlite:///{disk}/predictions.sqlite3"
    try:
        server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": url}).wait_healthy()
        try:
            before = score_all(server, [f"a superb film, take {n}" for n in range(20)])
            assert wait_for(lambda: set(logged(url)) == {answer["id"] for answer in before}, timeout=10)
            fill(disk / "filler")
            assert os.statvfs(disk).f_bavail == 0
            answered = []

            def rows_dropped():
                answered.extend(score_batch(server, [f"a dull plot on a full disk, #{len(answered) + n}"
                                                     for n in range(100)]))
                return dropped(server, "database_error")
            assert wait_for(rows_dropped, timeout=30), "no row was dropped on a full disk"
            # Keep scoring on the full disk, on new connections so both workers' writers meet it.
            full_until = time.monotonic() + 3
            while time.monotonic() < full_until:
                rows_dropped()
                time.sleep(0.05)
            database_errors = dropped(server, "database_error")
            (disk / "filler").unlink()
            after = score_all(server, [f"a brilliant film, room again, take {n}" for n in range(20)])
            assert wait_for(lambda: {answer["id"] for answer in after} <= set(logged(url)), timeout=10), \
                "recording did not resume once there was room"
        finally:
            output = server.stop()
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    warnings = drop_warnings(output)
    print(f"\nfull disk: {len(answered)} rows answered while full, {database_errors:.0f} dropped (database_error), "
          f"{len(warnings)} warning lines")
    assert 0 < database_errors <= len(answered)
    assert 1 <= len(warnings) <= 2, warnings  # at most one a minute in each of the two workers
    assert all("(database_error)" in line for line in warnings)
    assert "Traceback" not in output


def test_a_worker_killed_with_sigkill_loses_at_most_the_rows_it_had_queued(model_dir, tmp_path):
    url = sqlite_log(tmp_path)
    server = Server(model_dir, env={**TWO_WORKERS, "PREDICTION_LOG": url}).wait_healthy()
    try:
        assert wait_for(lambda: len(server.workers()) == 2), "two workers never booted"
        with Traffic(server, threads=4) as traffic:
            traffic.wait_for(300)
            victim = min(server.workers())
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            assert wait_for(lambda: victim not in server.workers() and len(server.workers()) == 2, timeout=30), \
                "the killed worker was never replaced"
            replaced = len(traffic.outcomes)
            traffic.wait_for(300)
    finally:
        output = server.stop()
    recorded = logged(url)
    missing = [(at, answer_id) for at, _, answer_id in traffic.outcomes if answer_id and answer_id not in recorded]
    print(f"\nSIGKILL: {len(traffic.ids())} answers, {len(missing)} rows lost with the killed worker, "
          f"{len(traffic.failures())} requests failed in flight")
    assert set(recorded.values()) == {1}
    assert len(missing) < prediction_log.QUEUE_ROWS
    # Only rows queued a moment before the kill are lost: its queue is sent to its writer every quarter second.
    assert all(killed_at - 2.0 <= at <= killed_at + 0.5 for at, _ in missing), \
        [round(killed_at - at, 3) for at, _ in missing]
    assert len(traffic.failures()) <= len(traffic.threads), traffic.failures()  # at most those in flight
    assert all(what == 200 for _, what, _ in traffic.outcomes[replaced:])
    assert "Booting worker" in output


# --- At start, and at the door -------------------------------------------------------------------

@pytest.mark.parametrize("setting, says", [
    ("mysql://x/y", "must be sqlite:///PATH, postgresql://USER@HOST/DB or off"),
    ("mysql://root:hunter2@x/y", "must be sqlite:///PATH, postgresql://USER@HOST/DB or off"),
    ("postgresql://nobody@127.0.0.1:1/none", "Check the URL and that the database runs"),
    ("postgresql://nobody:hunter2@127.0.0.1:1/none", "Check the URL and that the database runs"),
    ("postgresql://nobody:hunter2@127.0.0.1:port/none", "not a database URL this service can use"),
    ("sqlite:////proc/nope/x.sqlite3", "cannot use the database"),
    ("sqlite:///", "a SQLite URL must name a file"),  # else every process would log to its own memory
], ids=["mysql", "mysql-with-password", "unreachable", "unreachable-with-password", "port-not-a-number",
        "unwritable-sqlite", "sqlite-without-a-file"])
def test_an_unusable_prediction_log_stops_gunicorn_at_start_with_one_line_saying_what_to_do(model_dir, setting, says):
    server = Server(model_dir, env={"PREDICTION_LOG": setting})
    started = time.monotonic()
    try:
        code = server.process.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        output = server.stop()
    assert code != 0, output
    assert took < 15, f"gunicorn took {took:.1f} s to give up:\n{output}"
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: PREDICTION_LOG="), output
    assert says in errors[0] and "off" in errors[0]
    assert "Traceback" not in output and "hunter2" not in output
    assert "Booting worker" not in output


@pytest.fixture(scope="module")
def small_batch_server(model_dir, tmp_path_factory):
    """gunicorn taking at most 3 items a request, with a prediction log of its own."""
    server = Server(model_dir, env={"MAX_BATCH_SIZE": "3",
                                    "PREDICTION_LOG": sqlite_log(tmp_path_factory.mktemp("log"))}).wait_healthy()
    yield server
    server.stop()


def item(answer_id, label="Positive"):
    """One feedback item."""
    return {"id": answer_id, "label": label}


FORGED_ID = "A" * 43  # the length and alphabet of an id, signed by no one
# name: (the body, given the id of an answer this server gave; the status; a hint in the message)
REFUSED = {
    "over the batch limit": (lambda good: {"feedback": [item(good)] * 4}, 413, "the limit is 3"),
    "empty body": (lambda good: "", 400, "the body is empty"),
    "not JSON": (lambda good: "id=1&label=Positive", 400, "not valid JSON"),
    "not UTF-8": (lambda good: b'{"id": "\xff"}', 400, "not valid UTF-8"),
    "an array": (lambda good: [item(good)], 400, "must be an object"),
    "feedback not an array": (lambda good: {"feedback": item(good)}, 400, "must be an array"),
    "feedback empty": (lambda good: {"feedback": []}, 400, "feedback is empty"),
    "no label": (lambda good: {"id": good}, 400, "has no label"),
    "id not a string": (lambda good: {"id": 7, "label": "Positive"}, 400, "must be a string"),
    "a label of another model": (lambda good: item(good, "Neutral"), 400, "not a label of the binary model"),
    "a forged id": (lambda good: item(FORGED_ID), 404, "answer with id"),
    "a forged id in a batch": (lambda good: {"feedback": [item(good), item(FORGED_ID)]}, 404, "feedback[1]"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_feedback_the_live_server_refuses_is_answered_with_json_and_counted_nowhere(small_batch_server, case):
    make_body, status, hint = REFUSED[case]
    body = make_body(score(small_batch_server, "a superb film")["id"])
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = requests.post(small_batch_server.url + "/feedback", data=data,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.headers["Content-Type"] == "application/json"
    assert_json_error(response.status_code, response.text, status, hint)
    table = samples(requests.get(small_batch_server.url + "/metrics", timeout=10).text)
    assert not any(name == "sentiment_feedback_total" and count for (name, _), count in table.items())


def test_an_id_from_another_server_with_its_own_log_is_unknown_here(small_batch_server, live_server):
    other = score(live_server, "a superb film")["id"]
    response = requests.post(small_batch_server.url + "/feedback", json=item(other), timeout=10)
    assert_json_error(response.status_code, response.text, 404, "answer with id")


# --- The learning loop ---------------------------------------------------------------------------

def test_feedback_on_live_answers_teaches_the_rebuilt_model_a_word_it_never_saw(model_dir, tiny_data, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(model_dir, models, symlinks=True)
    url = sqlite_log(tmp_path)
    server = Server(models, env={"PREDICTION_LOG": url, "PREDICTION_LOG_TEXTS": "true"}).wait_healthy()
    try:
        # An unknown word ties (the binary model has fit_prior=False) and argmax takes the first label.
        before = score(server, "zorblax")
        assert before["prediction"] == "Negative", before
        answers = score_all(server, [f"zorblax {n}" for n in range(60)])
        assert {answer["prediction"] for answer in answers} == {"Negative"}
        response = requests.post(server.url + "/feedback", timeout=10,
                                 json={"feedback": [item(answer["id"]) for answer in answers[:30]]})
        assert response.status_code == 202, response.text
        for answer in answers[30:]:
            assert requests.post(server.url + "/feedback", json=item(answer["id"]), timeout=10).status_code == 202
    finally:
        server.stop()
    built = subprocess.run(
        [sys.executable, "build_model.py", "--data", str(tiny_data / "train.tsv"), "--out", str(models),
         "--feedback", url], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PREDICTION_LOG"})
    assert built.returncode == 0, built.stdout + built.stderr
    assert "feedback added: binary 60" in built.stdout + built.stderr
    server = Server(models).wait_healthy()
    try:
        after = score(server, "zorblax")
        served = {m["name"]: m for m in requests.get(server.url + "/models", timeout=10).json()["models"]}
    finally:
        server.stop()
    assert after["prediction"] == "Positive", after
    assert after["model_version"] != before["model_version"]
    binary = served["binary"]
    assert binary["version"] == after["model_version"]
    assert binary["metrics"]["feedback"]["rows"] >= 1  # the held-out fifth of the labelled texts
    assert binary["training_data"]["feedback"]["rows"] == 60
    assert "feedback" not in served["fine-grained"]["metrics"]  # no label was sent for its answers
