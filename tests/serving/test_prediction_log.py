"""The prediction log on real databases: SQLite files and a private PostgreSQL cluster."""
import hashlib
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from serving import ids, log_schema, prediction_log
from serving.prediction_log import PredictionLog, PredictionLogError

ANSWER = {"prediction": "Positive", "confidence": 0.9, "probabilities": {"Negative": 0.1, "Positive": 0.9}}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """An empty database of each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/predictions.sqlite3"
    return request.getfixturevalue("postgres_url")


class Drops:
    """Counts what a log reports dropped, by reason."""

    def __init__(self):
        self.counts = {}

    def __call__(self, reason, count):
        self.counts[reason] = self.counts.get(reason, 0) + count


def answers(signer, count, *, now=None):
    """`count` answers, each with its own id."""
    now = time.time() if now is None else now
    return [{**ANSWER, "id": signer.issue(model_index=0, label_index=1, version=ids.version_tag("v1"), now=now)}
            for _ in range(count)]


def record(log, signer, texts, *, now=None):
    """Record one answer per text; return the answers."""
    now = time.time() if now is None else now
    given = answers(signer, len(texts), now=now)
    log.record(model="binary", version="v1", request_id="req-1", now=now, answers=given, texts=texts)
    return given


def feedback_row(answer_id, label, *, at=None, predicted="Positive"):
    """A feedback row as the app queues it."""
    at = time.time() if at is None else at
    return {"id": answer_id, "time": at, "issued": at, "model": "binary", "model_version": "v1",
            "predicted": predicted, "label": label}


def test_prepare_creates_the_schema_and_one_key_that_every_process_shares(url):
    first, second = PredictionLog(url).prepare(), PredictionLog(url).prepare()
    assert first == second and len(first) == ids.KEY_BYTES
    engine = prediction_log.make_engine(url)
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("predictions")}
    engine.dispose()
    assert {"predictions", "feedback", "service_meta"} <= tables
    assert "ix_predictions_time" in indexes


def test_rows_are_written_by_the_writer_with_hashes_but_no_texts_by_default(url):
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    given = record(log, signer, ["a fine film", "dull"])
    log.stop(timeout=10)
    frame = prediction_log.read_predictions(url)
    assert frame["id"].tolist() == [a["id"] for a in given]
    row = frame.iloc[0]
    assert (row["model"], row["model_version"], row["label"], row["confidence"], row["request_id"]) == (
        "binary", "v1", "Positive", 0.9, "req-1")
    assert row["text_length"] == len("a fine film") and row["text"] is None
    assert row["text_sha256"] == hashlib.sha256(b"a fine film").hexdigest()
    assert '"Positive":0.9' in row["probabilities"]


def test_texts_are_kept_only_when_asked(url):
    log = PredictionLog(url, texts=True)
    signer = ids.Signer(log.prepare())
    log.start()
    record(log, signer, ["kept on purpose"])
    log.stop(timeout=10)
    assert prediction_log.read_predictions(url)["text"].tolist() == ["kept on purpose"]


def test_sampling_records_the_share_of_answers_its_ids_select(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    log = PredictionLog(url, sample=0.25)
    signer = ids.Signer(log.prepare())
    log.start()
    given = record(log, signer, ["text"] * 4000)
    log.stop(timeout=10)
    kept = set(prediction_log.read_predictions(url)["id"])
    assert kept == {a["id"] for a in given if ids.sampled(a["id"], 0.25)}
    assert 800 < len(kept) < 1200


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    drops = Drops()
    log = PredictionLog(f"sqlite:///{tmp_path}/p.sqlite3", on_drop=drops, queue_rows=10)
    signer = ids.Signer(log.prepare())  # no writer started: nothing leaves the queue
    started = time.perf_counter()
    record(log, signer, ["text"] * 25)
    assert time.perf_counter() - started < 1.0
    assert drops.counts == {"queue_full": 15} and log.queued == 10


def test_the_latest_label_for_an_id_replaces_the_first(url):
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    given = record(log, signer, ["one", "two"])
    now = time.time()
    log.record_feedback([feedback_row(given[0]["id"], "Negative", at=now)])
    log.record_feedback([feedback_row(given[0]["id"], "Positive", at=now + 1),
                         feedback_row(given[1]["id"], "Negative", at=now)])
    log.stop(timeout=10)
    frame = prediction_log.read_feedback(url).set_index("id")
    assert frame.loc[given[0]["id"], "label"] == "Positive" and frame.loc[given[1]["id"], "label"] == "Negative"
    assert log.feedback_summary() == {"binary": {"count": 2, "accuracy": 0.5}}


def test_an_older_label_arriving_late_does_not_replace_a_newer_one(url):
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    (answer,) = record(log, signer, ["one"])
    now = time.time()
    log.record_feedback([feedback_row(answer["id"], "Negative", at=now + 5)])
    log.record_feedback([feedback_row(answer["id"], "Positive", at=now)])
    log.stop(timeout=10)
    assert prediction_log.read_feedback(url)["label"].tolist() == ["Negative"]


def test_retention_deletes_old_rows_once_per_window_whichever_process_asks(url):
    log = PredictionLog(url, days=1)
    signer = ids.Signer(log.prepare())
    old = time.time() - 3 * prediction_log.DAY
    log.record(model="binary", version="v1", request_id=None, now=old, answers=answers(signer, 2, now=old),
               texts=["old", "old"])
    (fresh,) = record(log, signer, ["fresh"])
    log.record_feedback([feedback_row(fresh["id"], "Positive", at=old)])
    log.start()
    log.stop(timeout=10)
    assert len(prediction_log.read_predictions(url)) == 3
    log.apply_retention()  # what the writer does at its start and then every RETENTION_EVERY seconds
    assert prediction_log.read_predictions(url)["id"].tolist() == [fresh["id"]]
    assert prediction_log.read_feedback(url).empty
    other = PredictionLog(url, days=1)
    # Within the window no one claims the run again: rows that age meanwhile wait for the next one.
    old_again = answers(signer, 1, now=old)
    log.start()
    log.record(model="binary", version="v1", request_id=None, now=old, answers=old_again, texts=["old"])
    log.stop(timeout=10)
    other.apply_retention()
    assert len(prediction_log.read_predictions(url)) == 2


def test_a_database_newer_than_the_service_is_refused_with_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    PredictionLog(url).prepare()
    engine = prediction_log.make_engine(url)
    with engine.begin() as connection:
        connection.execute(prediction_log.meta.update().where(prediction_log.meta.c.key == "schema_version")
                           .values(value="99"))
    engine.dispose()
    with pytest.raises(PredictionLogError, match="schema is version 99.*upgrade the service"):
        PredictionLog(url).prepare()


@pytest.mark.parametrize("url, says", [
    ("sqlite:////proc/no/such/folder/p.sqlite3", "cannot use the database"),
    ("postgresql://nobody@127.0.0.1:1/none", "cannot use the database"),
    ("postgresql://nobody:secret@127.0.0.1:1/none", "cannot use the database"),
])
def test_an_unusable_database_is_one_line_that_names_it_without_its_password(url, says):
    with pytest.raises(PredictionLogError) as raised:
        PredictionLog(url).prepare()
    message = str(raised.value)
    assert says in message and "PREDICTION_LOG=off" in message and "\n" not in message
    assert "secret" not in message


def test_a_database_that_goes_away_costs_dropped_rows_and_recording_resumes_when_it_is_back(postgres, tmp_path):
    url = postgres.database(f"goes_away_{int(time.time() * 1000)}")
    drops = Drops()
    log = PredictionLog(url, on_drop=drops)
    signer = ids.Signer(log.prepare())
    log.start()
    record(log, signer, ["before"])
    assert wait_until(lambda: len(prediction_log.read_predictions(url)) == 1)
    postgres.stop()
    try:
        record(log, signer, ["while down"] * 3)
        assert wait_until(lambda: drops.counts.get("database_error", 0) == 3)
    finally:
        postgres.start()
    after = record(log, signer, ["after"])
    assert wait_until(lambda: after[0]["id"] in set(prediction_log.read_predictions(url)["id"]), timeout=20)
    log.stop(timeout=10)
    assert len(prediction_log.read_predictions(url)) == 2


def test_stop_waits_a_bounded_time_and_counts_what_it_could_not_write(tmp_path):
    drops = Drops()
    log = PredictionLog(f"sqlite:///{tmp_path}/p.sqlite3", on_drop=drops)
    signer = ids.Signer(log.prepare())
    engine = prediction_log.make_engine(log.url)
    with engine.connect() as blocker:  # an open write transaction: SQLite makes the writer wait for it
        blocker.exec_driver_sql("BEGIN IMMEDIATE")
        log.start()
        record(log, signer, ["x"] * 5)
        time.sleep(1.0)  # the writer process has the batch and waits on the lock
        record(log, signer, ["y"] * 3)
        started = time.perf_counter()
        log.stop(timeout=0.5)
        assert time.perf_counter() - started < 2.0
        # The writer is stopped with its batch: the 5 rows it held and the 3 still queued are counted.
        assert drops.counts == {"exit": 8}
        blocker.exec_driver_sql("ROLLBACK")
    engine.dispose()
    assert prediction_log.read_predictions(log.url).empty  # none of them written after all


def wait_until(predicate, timeout=10.0):
    """Poll `predicate` until it is true or `timeout` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_rows_are_written_by_a_writer_process_whose_command_line_holds_no_url(tmp_path):
    url = f"sqlite:///{tmp_path}/secret-name/p.sqlite3"
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    try:
        command_line = Path(f"/proc/{log.process.pid}/cmdline").read_bytes()
        assert log.process.pid != os.getpid() and b"secret-name" not in command_line
        given = record(log, signer, ["one"])
        assert wait_until(lambda: given[0]["id"] in set(prediction_log.read_predictions(url)["id"]))
    finally:
        log.stop(timeout=10)
    assert log.process is None


def test_a_writer_process_that_dies_is_replaced_and_its_rows_counted(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite3"
    drops = Drops()
    log = PredictionLog(url, on_drop=drops)
    signer = ids.Signer(log.prepare())
    log.start()
    try:
        first = log.process
        first.send_signal(signal.SIGKILL)
        first.wait()
        record(log, signer, ["sent as the writer died"])  # to the dead one (lost, counted), or to its successor
        assert wait_until(lambda: log.process is not first and log.process.poll() is None)
        after = record(log, signer, ["after"])
        assert wait_until(lambda: after[0]["id"] in set(prediction_log.read_predictions(url)["id"]))
    finally:
        log.stop(timeout=10)
    assert len(prediction_log.read_predictions(url)) + drops.counts.get("writer_lost", 0) == 2
    assert set(drops.counts) <= {"writer_lost"}


# The predictions table's columns each older schema lacked, and those it required.
NUMBERS = {"value", "inputs", "shadow_value"}
LATER_COLUMNS = {1: {"tokens", "known_tokens", "shadow_version", "shadow_label"} | NUMBERS,
                 2: {"shadow_version", "shadow_label"} | NUMBERS, 3: NUMBERS}


@pytest.mark.parametrize("schema", sorted(LATER_COLUMNS))
def test_an_older_log_gains_the_later_columns_and_keeps_its_rows(url, schema):
    engine = prediction_log.make_engine(url)
    with engine.begin() as connection:  # the tables as that schema made them, NOT NULLs included
        old = sa.MetaData()
        for table, left_out in ((prediction_log.predictions, LATER_COLUMNS[schema]), (prediction_log.meta, set()),
                                (log_schema.feedback, {"error"})):
            sa.Table(table.name, old, *[sa.Column(c.name, c.type, primary_key=c.primary_key,
                                                  nullable=c.nullable and c.name not in log_schema.NOW_OPTIONAL)
                                        for c in table.columns if c.name not in left_out])
        old.create_all(connection)
        connection.execute(prediction_log.meta.insert().values(key="schema_version", value=str(schema)))
        connection.execute(sa.text("INSERT INTO predictions (id, time, model, model_version, label, confidence, "
                                   "probabilities, text_length, text_sha256) VALUES ('old', 1.0, 'binary', 'v1', "
                                   "'Positive', 0.9, '{}', 3, 'x')"))
        connection.execute(sa.text("INSERT INTO feedback (id, time, issued, model, predicted, label) VALUES "
                                   "('old', 2.0, 1.0, 'binary', 'Positive', 'Negative')"))
    engine.dispose()
    unmigrated = prediction_log.read_predictions(url)  # read before any server migrated it
    assert unmigrated["id"].tolist() == ["old"] and unmigrated["shadow_label"].isna().all()
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    given = record(log, signer, ["a new row"])
    log.stop(timeout=10)
    frame = prediction_log.read_predictions(url).set_index("id")
    assert frame.loc["old", "label"] == "Positive" and frame[list(LATER_COLUMNS[schema])].loc["old"].isna().all()
    assert frame.loc[given[0]["id"], "text_length"] == len("a new row")
    old_feedback = prediction_log.read_feedback(url).set_index("id").loc["old"]
    assert old_feedback["label"] == "Negative" and pd.isna(old_feedback["error"])
    # A regressor's row, which the older schema's NOT NULL columns refused, now fits.
    engine = prediction_log.make_engine(url)
    with engine.begin() as connection:
        log_schema.insert_predictions(connection, log_schema.value_rows(
            "ratings", "v1", None, 3.0, [("number", 6.5)], [{"genre": "Drama"}], None, [None]))
    engine.dispose()
    assert prediction_log.read_predictions(url).set_index("id").loc["number", "value"] == 6.5
    engine = prediction_log.make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(prediction_log.meta.c.value).where(
            prediction_log.meta.c.key == "schema_version")).scalar() == str(log_schema.SCHEMA_VERSION)
    engine.dispose()


def test_rows_carry_the_texts_tokens_and_known_tokens(url):
    log = PredictionLog(url)
    signer = ids.Signer(log.prepare())
    log.start()
    given = answers(signer, 2)
    log.record(model="binary", version="v1", request_id=None, now=time.time(), answers=given,
               texts=["good film", "zzz qqq"], tokens=[2, 2], known=[2, 0])
    log.stop(timeout=10)
    frame = prediction_log.read_predictions(url).set_index("id")
    assert frame.loc[[a["id"] for a in given], ["tokens", "known_tokens"]].values.tolist() == [[2, 2], [2, 0]]
