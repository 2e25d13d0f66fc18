"""The prediction log: every scored text and every label sent back, in a real database.

This module owns the recording: the start-up check, the bounded queue and the writer process that
empties it, and retention. The tables and the SQL of the writes are `serving/log_schema.py`; the reads
for the build, the notebook and the drift report are `serving/log_reads.py` (its `read_predictions`,
`read_feedback` and `compare_shadow` are importable from here too, as notebooks call them).

    PREDICTION_LOG=sqlite:///state/predictions.sqlite3   the default: a file, nothing to install
    PREDICTION_LOG=postgresql://user:pass@host/db        many workers, replicas or machines
    PREDICTION_LOG=off                                   nothing recorded, no feedback taken

Recording never slows or breaks an answer: once its answer is sent, a request only appends its
answers to this process's queue (bounded: rows that do not fit are dropped and counted). A feeder
thread, started in each worker after gunicorn forks, sends them in batches over a socket pair to the
worker's writer process (`writer_process`), which makes their rows and inserts them: on another core
and under an interpreter lock of its own, so the worker's requests never wait for it. If the
database is slow, full or down, the writer drops what it cannot write and reports it; the worker
counts it, warns at most once a minute, and the writer carries on when the database is back.
"""
import logging
import multiprocessing.connection
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from serving import ids
from serving.log_reads import compare_shadow, read_feedback, read_predictions  # noqa: F401 (the notebooks' names)
from serving.log_schema import (  # noqa: F401 (PredictionLogError: what callers catch)
    PredictionLogError,
    feedback,
    insert_missing,
    insert_predictions,
    labelled_rows,
    make_engine,
    meta,
    migrate,
    prediction_rows,
    predictions,
    reason,
    redacted,
    summarize_feedback,
    upsert,
    value_rows,
)

log = logging.getLogger("sentiment.prediction_log")

QUEUE_ROWS = 10_000  # per worker: about 5 s of a busy worker's rows, a few MB without texts
BATCH_ROWS = 1_000  # rows per insert
FLUSH_SECONDS = 0.25  # a lone row waits at most this long in the queue
WARN_EVERY = 60.0  # seconds between warning lines about dropped rows
RETENTION_EVERY = 3600.0  # seconds between deletions of rows past PREDICTION_LOG_DAYS, across all workers
RETENTION_FIRST = 1.0  # seconds after a writer starts before it first tries (its first batch goes first)
SUMMARY_SECONDS = 5.0  # how long GET /models keeps a feedback summary read from the database
DAY = 86_400.0


class PredictionLog:
    """One process's side of the log: its queue, its feeder thread and writer process, and the reads the
    service makes (in the writer process, the same class writes the batches and deletes old rows).

    Built in gunicorn's master with nothing open; `prepare()` checks the database there (and closes
    it again) before workers fork; `start()` runs in each worker, `stop()` when the worker exits.
    `url` is None for PREDICTION_LOG=off: rows are then neither queued nor written.
    """

    def __init__(self, url, *, texts=False, sample=1.0, days=30, on_drop=None, queue_rows=QUEUE_ROWS):
        self.url, self.texts, self.sample, self.days = url, texts, sample, days
        self.on_drop = on_drop or (lambda reason, count: None)
        self.queue_rows = queue_rows
        self.queue = queue.SimpleQueue()  # (kind, rows, their makings pickled): one item per request
        self.queued = 0  # rows in the queue, under queued_lock
        self.queued_lock = threading.Lock()
        self.batch_ready = threading.Event()  # set when a whole batch is queued, or the log stops
        self.engine = None
        # Made before a fork, used after: safe, since the master never holds it (it runs no writer).
        self.engine_lock = threading.Lock()
        self.process = None  # the writer process (in a worker)
        self.channel = None  # the worker's end of the socket pair to it
        self.feeder = None  # the thread that sends it batches and reads its reports
        self.in_flight = 0  # rows sent to the writer, not yet reported written or dropped (the feeder's)
        self.stopping = threading.Event()
        self.deadline = None  # when a stop must be over (monotonic)
        self.last_warning = float("-inf")
        self.summary = (float("-inf"), None)  # (read at, feedback summary)
        self.regressors = set()  # the models whose feedback is a number (`Recorder.learn` says which)

    @property
    def enabled(self):
        """False when PREDICTION_LOG=off."""
        return self.url is not None

    # --- Start-up, in the master -----------------------------------------------------------------

    def prepare(self):
        """Check the database, create or migrate its schema, and return the key that signs ids (made
        once, by whichever process gets there first, so every process sharing the database shares it).

        Raises `PredictionLogError` with one line that says what to do. Leaves no connection open.
        """
        if not self.enabled:
            return ids.new_key()
        engine = None
        try:
            engine = make_engine(self.url)
            with engine.begin() as connection:
                migrate(connection)
                insert_missing(connection, meta, [{"key": "id_key", "value": ids.new_key().hex()}], ["key"])
                key = connection.execute(sa.select(meta.c.value).where(meta.c.key == "id_key")).scalar_one()
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
            raise PredictionLogError(
                f"PREDICTION_LOG={redacted(self.url)}: not a database URL this service can use ({exc}). "
                "Use sqlite:///PATH, postgresql://USER@HOST/DB or off.") from None
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise PredictionLogError(
                f"PREDICTION_LOG={redacted(self.url)}: cannot use the database ({reason(exc)}). Check the URL and "
                "that the database runs and is writable, or set PREDICTION_LOG=off.") from None
        finally:
            if engine is not None:
                engine.dispose()
        return bytes.fromhex(key)

    # --- In each worker --------------------------------------------------------------------------

    def start(self):
        """Start the writer process and the thread that feeds it (in the worker, after the fork)."""
        if not self.enabled or (self.feeder and self.feeder.is_alive()):
            return
        self.stopping.clear()
        self.batch_ready.clear()
        self.launch()
        self.feeder = threading.Thread(target=self.feed_forever, name="prediction-log-feeder", daemon=True)
        self.feeder.start()

    def launch(self):
        """Start a writer process, connected to this one by a socket pair, and give it its settings.

        A new interpreter rather than a fork: it inherits no threads, locks, sockets or signal handlers
        of the worker, and the settings (the URL may hold a password) go through the socket, not argv.
        """
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WRITER_START, str(Path(__file__).resolve().parent.parent), str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        self.channel = multiprocessing.connection.Connection(ours.detach())
        self.channel.send({"url": self.url, "texts": self.texts, "days": self.days})
        self.in_flight = 0

    def stop(self, timeout):
        """Write what is queued, waiting at most `timeout` seconds; count what is left as dropped."""
        if self.feeder is None:
            return
        self.deadline = time.monotonic() + timeout
        self.stopping.set()
        self.batch_ready.set()
        self.feeder.join(timeout)
        try:
            self.process.wait(max(self.deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            self.process.kill()  # its rows are counted below; a feeder blocked on a full socket is released
            self.process.wait()
        self.feeder.join(1.0)
        self.channel.close()
        left = self.in_flight + self.take_all()
        if left:
            self.drop("exit", left)
        self.feeder = self.process = self.channel = None
        self.in_flight = 0
        if self.engine is not None:  # the worker's own, for the reads /models makes
            self.engine.dispose()
            self.engine = None

    def record(self, *, model, version, request_id, now, answers, texts, tokens=None, known=None, shadow=None,
               values=None):
        """Queue one row per scored input (its answer already has its `id`); never blocks or raises. For a
        text model `texts` are the texts; for a regressor, the named inputs (dicts), with its unrounded
        numbers in `values` and the shadow's numbers in `shadow`.

        The request queues what its rows are made from, pickled into one bytes object; the writer process
        makes the rows (`prediction_rows`), so neither the client nor the worker waits for them. Bytes,
        not the answers themselves: a queue of live dicts and lists, each kept for a fraction of a second,
        pushed them into the garbage collector's older generations and cost a GET about 20 µs in its
        collections.
        """
        if not self.enabled:
            return
        named = values is None and bool(texts) and isinstance(texts[0], dict)  # a classifier of named inputs
        if tokens is None:
            tokens = known = [None] * len(answers)
        shadow_version, shadow_labels = shadow if shadow is not None else (None, [None] * len(answers))
        if self.sample < 1.0:
            kept = [i for i, answer in enumerate(answers) if ids.sampled(answer["id"], self.sample)]
            answers, texts = [answers[i] for i in kept], [texts[i] for i in kept]
            tokens, known = [tokens[i] for i in kept], [known[i] for i in kept]
            shadow_labels = [shadow_labels[i] for i in kept]
            values = None if values is None else [values[i] for i in kept]
        room = self.reserve(len(answers))
        if room and values is not None:  # a regressor's: its numbers and named inputs
            self.queue.put(("value", room, pickle.dumps(
                (model, version, request_id, now, [(a["id"], v) for a, v in zip(answers[:room], values)],
                 texts[:room], shadow_version, shadow_labels[:room]), protocol=pickle.HIGHEST_PROTOCOL)))
        elif room and named:
            self.queue.put(("labelled", room, pickle.dumps(
                (model, version, request_id, now,
                 [(a["id"], a["prediction"], a["confidence"], a["probabilities"]) for a in answers[:room]],
                 texts[:room], shadow_version, shadow_labels[:room]), protocol=pickle.HIGHEST_PROTOCOL)))
        elif room:
            self.queue.put(("prediction", room, pickle.dumps(
                (model, version, request_id, now,
                 [(a["id"], a["prediction"], a["confidence"], a["probabilities"]) for a in answers[:room]],
                 texts[:room], tokens[:room], known[:room], shadow_version, shadow_labels[:room]),
                protocol=pickle.HIGHEST_PROTOCOL)))

    def record_feedback(self, rows):
        """Queue feedback rows (dicts of the `feedback` columns); never blocks."""
        room = self.reserve(len(rows))
        if room:
            self.queue.put(("feedback", room, pickle.dumps(rows[:room], protocol=pickle.HIGHEST_PROTOCOL)))

    def reserve(self, count):
        """How many of `count` new rows the queue has room for; the others are dropped and counted as
        queue_full."""
        with self.queued_lock:
            room = min(max(self.queue_rows - self.queued, 0), count)
            self.queued += room
            if self.queued >= BATCH_ROWS > self.queued - room:  # this request completed a batch
                self.batch_ready.set()
        if room < count:
            self.drop("queue_full", count - room)
        return room

    def drop(self, reason, count):
        """Count rows that will never be written, and warn (at most once a minute)."""
        self.on_drop(reason, count)
        now = time.monotonic()
        if now - self.last_warning >= WARN_EVERY:
            self.last_warning = now
            log.warning("prediction log: dropped %d row(s) (%s); counted in sentiment_prediction_log_dropped_total. "
                        "Recording goes on when the database at %s can take them.", count, reason, redacted(self.url))

    def connection(self):
        """A connection from this process's engine, made on first use (never inherited through a fork)."""
        with self.engine_lock:  # two requests reading /models may both be first
            if self.engine is None:
                self.engine = make_engine(self.url)
            return self.engine.begin()

    def feed_forever(self):
        """The feeder thread: send queued batches to the writer process and read its reports, until
        stopped and drained; then tell the writer so and wait (until the deadline) for its last reports."""
        while True:
            items = self.take_batch()
            if items:
                self.send(items)
            self.read_reports(0.0)
            if not items and self.stopping.is_set():
                break
        try:
            self.channel.send_bytes(END)
        except OSError:
            return
        while self.in_flight and (left := self.deadline - time.monotonic()) > 0 and self.read_reports(left):
            pass

    def take_batch(self):
        """Queued items of about BATCH_ROWS rows in all (fewer if there are not so many): waits up to
        FLUSH_SECONDS for the first request's rows, then up to FLUSH_SECONDS more for others to join them
        (less when a whole batch is there or the log stops).

        Gathering is what makes recording cheap: taken as they came, rows went one transaction per
        request, and a busy worker spent about as long recording a GET as answering it. The feeder sleeps
        while a batch gathers, woken by the request that completes it (`reserve`) or by `stop`: looking
        every 10 ms instead cost a busy worker about 40 µs of CPU a GET, in wake-ups that took the
        interpreter lock from its requests.
        """
        try:
            items = [self.queue.get(timeout=FLUSH_SECONDS)]
        except queue.Empty:
            return []
        if self.queued < BATCH_ROWS:
            self.batch_ready.wait(FLUSH_SECONDS)
        taken = items[0][1]
        while taken < BATCH_ROWS:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
            taken += items[-1][1]
        with self.queued_lock:
            self.queued -= taken
            if self.queued < BATCH_ROWS and not self.stopping.is_set():
                self.batch_ready.clear()
        return items

    def take_all(self):
        """Empty the queue; return how many rows it held."""
        taken = 0
        while True:
            try:
                taken += self.queue.get_nowait()[1]
            except queue.Empty:
                break
        with self.queued_lock:
            self.queued -= taken
        return taken

    def send(self, items):
        """Send a batch of queued items (each `(kind, rows, pickled rows' makings)`) to the writer process."""
        rows = sum(count for _, count, _ in items)
        message = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.channel.send_bytes(message)
        except OSError:  # the writer is gone (killed at stop, or it died): its rows are lost
            self.lost(rows)
            return
        self.in_flight += rows

    def read_reports(self, timeout):
        """Take the writer's reports (rows handled, and the error that dropped them, if one did), waiting
        at most `timeout` seconds for the first; False once the writer is gone."""
        try:
            while self.channel.poll(timeout):
                handled, error = self.channel.recv()
                self.in_flight -= handled
                if error is not None:
                    self.drop("database_error", handled)
                    log.debug("prediction log: a batch failed: %s", error)
                timeout = 0.0
        except (EOFError, OSError):
            if not self.stopping.is_set():
                self.lost(0)
            return False
        return True

    def lost(self, rows):
        """The writer process is gone: count what it had not written, and start another unless stopping."""
        if self.stopping.is_set():
            self.in_flight += rows  # stop() counts them as dropped at exit
            return
        self.drop("writer_lost", self.in_flight + rows)
        log.warning("prediction log: the writer process ended (status %s); starting another", self.process.poll())
        self.process.kill()
        self.process.wait()
        self.channel.close()
        self.launch()

    # --- In the writer process -------------------------------------------------------------------

    def write(self, batch):
        """Insert one batch: predictions and feedback (the latest label per id wins), in one transaction.
        Returns None, or the database's reason for refusing it (its rows are then dropped)."""
        rows, labels = batch["prediction"], batch["feedback"]
        try:
            with self.connection() as connection:
                if rows:
                    insert_predictions(connection, rows)
                if labels:
                    upsert(connection, feedback, labels, ["id"],
                           ["time", "model_version", "label", "error"],
                           where=lambda table, new: new.time >= table.c.time)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            if self.engine is not None:
                self.engine.dispose()  # reconnect next time: the server may have restarted
            time.sleep(1.0)  # no busy loop while the database is down
            return reason(exc)
        return None

    def apply_retention(self):
        """Delete rows older than PREDICTION_LOG_DAYS, if no other process did so within RETENTION_EVERY.

        The claim is one conditional UPDATE of a shared row, so exactly one process in a claim window
        does the work, on SQLite and PostgreSQL alike, without a lock held across the deletion.
        """
        now = time.time()
        try:
            with self.connection() as connection:
                insert_missing(connection, meta, [{"key": "retention_run", "value": "0"}], ["key"])
                claimed = connection.execute(
                    meta.update().where(meta.c.key == "retention_run",
                                        sa.cast(meta.c.value, sa.Float) < now - RETENTION_EVERY)
                    .values(value=repr(now))).rowcount
                if claimed:
                    cutoff = now - self.days * DAY
                    for table in (predictions, feedback):
                        connection.execute(table.delete().where(table.c.time < cutoff))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.debug("prediction log: retention deferred: %s", exc)

    # --- Reads for the service -------------------------------------------------------------------

    def feedback_summary(self):
        """{model: {"count", "accuracy"}} of feedback within the retention window, kept SUMMARY_SECONDS;
        None when there is no log or the database cannot be read now."""
        if not self.enabled:
            return None
        read_at, summary = self.summary
        if time.monotonic() - read_at < SUMMARY_SECONDS:
            return summary
        try:
            with self.connection() as connection:
                summary = summarize_feedback(connection, since=time.time() - self.days * DAY,
                                             regressors=self.regressors)
        except (sa.exc.SQLAlchemyError, OSError):
            summary = None
        self.summary = (time.monotonic(), summary)
        return summary


# The writer process: a new interpreter that imports this module from the repository's root (the parent of
# serving/) and runs writer_process.
WRITER_START = ("import sys; sys.path.insert(0, sys.argv[1]); from serving import prediction_log; "
                "prediction_log.writer_process(int(sys.argv[2]))")
END = pickle.dumps(None)  # the worker's last message: nothing more will come


def writer_process(fd):
    """The writer process: insert the batches the worker sends over the socket `fd`, report each
    (rows handled, error or None), delete old rows every RETENTION_EVERY seconds, and end when the
    worker says so or is gone (everything received is written first)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the worker says when to end
    channel = multiprocessing.connection.Connection(fd)
    settings = channel.recv()
    writer = PredictionLog(settings["url"], texts=settings["texts"], days=settings["days"])
    next_retention = time.monotonic() + RETENTION_FIRST
    while True:
        if time.monotonic() >= next_retention:
            next_retention = time.monotonic() + RETENTION_EVERY
            writer.apply_retention()
        try:
            if not channel.poll(max(next_retention - time.monotonic(), 0.0)):
                continue
            items = pickle.loads(channel.recv_bytes())
        except (EOFError, OSError):  # the worker is gone without a word (killed)
            return
        if items is None:
            return
        error = writer.write(batch_from(items, texts_kept=writer.texts))
        try:
            channel.send((sum(count for _, count, _ in items), error))
        except OSError:
            return


def batch_from(items, *, texts_kept):
    """The rows of the items a worker sent, as {"prediction": [tuples], "feedback": [dicts]}."""
    batch = {"prediction": [], "feedback": []}
    for kind, _, pickled in items:
        made_from = pickle.loads(pickled)
        if kind == "prediction":
            batch[kind].extend(prediction_rows(*made_from, texts_kept=texts_kept))
        elif kind == "value":
            batch["prediction"].extend(value_rows(*made_from))
        elif kind == "labelled":
            batch["prediction"].extend(labelled_rows(*made_from))
        else:
            batch[kind].extend(made_from)
    return batch


def configured_log(settings, on_drop=None):
    """The `PredictionLog` that a service's settings describe."""
    url = None if settings.PREDICTION_LOG == "off" else settings.PREDICTION_LOG
    return PredictionLog(url, texts=settings.PREDICTION_LOG_TEXTS, sample=settings.PREDICTION_LOG_SAMPLE,
                         days=settings.PREDICTION_LOG_DAYS, on_drop=on_drop)


def default_url(state_dir):
    """The default PREDICTION_LOG: a SQLite file in the state folder."""
    return "sqlite:///" + os.fspath(Path(state_dir) / "predictions.sqlite3")
