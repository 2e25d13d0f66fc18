"""The prediction log: every scored text and every label sent back, in a real database.

One module owns it all: the tables (defined once, here), the start-up check and migration, the
bounded queue and the writer process that empties it, retention, and the queries the service, the
build, the notebook and the drift report read. No SQL is written anywhere else.

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

The database layer is SQLAlchemy 2 Core: one table definition for SQLite and PostgreSQL, their
dialects' upserts, and a connection pool that checks a connection before use.
"""
import contextlib
import functools
import hashlib
import itertools
import json
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
from sqlalchemy.dialects import postgresql, sqlite

from serving import ids
from serving.config import ConfigError, without_password

log = logging.getLogger("sentiment.prediction_log")

SCHEMA_VERSION = 3  # 2: tokens and known_tokens; 3: shadow_version and shadow_label
metadata = sa.MetaData()
# One row per scored text. `time` is Unix seconds: the same arithmetic on both engines, and windows
# are plain comparisons on an index.
predictions = sa.Table(
    "predictions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(128)),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("probabilities", sa.Text, nullable=False),  # JSON {label: probability}, as answered
    sa.Column("text_length", sa.Integer, nullable=False),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("text", sa.Text),  # only with PREDICTION_LOG_TEXTS=true
    # The drift signals of the text: its tokens, and those the model knows (None in rows of schema 1).
    sa.Column("tokens", sa.Integer),
    sa.Column("known_tokens", sa.Integer),
    # The shadow version that scored the same text, and its label (None without a shadow, and before schema 3).
    sa.Column("shadow_version", sa.String(64)),
    sa.Column("shadow_label", sa.String(64)),
)
# The latest label sent back for an answer, keyed by the answer's id. Model, version and verdict come
# from the signed id, so feedback stands on its own even when its prediction row was sampled out.
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("issued", sa.Float, nullable=False),  # when the answer was given
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64)),  # None when no served model has the id's version tag
    sa.Column("predicted", sa.String(64), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
)
# Small facts the processes share: the schema version, the key that signs ids, the last retention run.
meta = sa.Table(
    "service_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def add_token_counts(connection):
    """Schema 1 to 2: the tokens and known_tokens columns (empty in the rows already there)."""
    for name in ("tokens", "known_tokens"):
        connection.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} INTEGER"))


def add_shadow_columns(connection):
    """Schema 2 to 3: the shadow_version and shadow_label columns (empty in the rows already there)."""
    for name in ("shadow_version", "shadow_label"):
        connection.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} VARCHAR(64)"))


# Steps from each schema version to the next, run in order at start: {from_version: function(connection)}.
MIGRATIONS = {1: add_token_counts, 2: add_shadow_columns}

QUEUE_ROWS = 10_000  # per worker: about 5 s of a busy worker's rows, a few MB without texts
BATCH_ROWS = 1_000  # rows per insert
FLUSH_SECONDS = 0.25  # a lone row waits at most this long in the queue
GATHER_POLL = 0.01  # while a batch gathers, how often the writer looks whether a whole one is there
WARN_EVERY = 60.0  # seconds between warning lines about dropped rows
RETENTION_EVERY = 3600.0  # seconds between deletions of rows past PREDICTION_LOG_DAYS, across all workers
RETENTION_FIRST = 1.0  # seconds after a writer starts before it first tries (its first batch goes first)
SUMMARY_SECONDS = 5.0  # how long GET /models keeps a feedback summary read from the database
DAY = 86_400.0


class PredictionLogError(ConfigError):
    """The prediction log's database cannot be used: a bad URL, unreachable, or refusing the schema."""


def engine_url(url):
    """The SQLAlchemy URL for a PREDICTION_LOG value: postgresql:// means psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def redacted(url):
    """The URL as it may be printed: the operator's own, without its password."""
    return without_password(url)


def make_engine(url):
    """An engine for the URL: SQLite in WAL mode (readers never block the writer) with a busy wait,
    PostgreSQL with pre-pinged pooled connections so a restarted server is reconnected to."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path or path == ":memory:":  # each process, each thread even, would have a database of its own
            raise sa.exc.ArgumentError("a SQLite URL must name a file")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 5})

        @sa.event.listens_for(engine, "connect")
        def sqlite_settings(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL syncs at checkpoints: a power cut may lose the last rows, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2,
                            connect_args={"connect_timeout": 5})


def reason(exc):
    """A database error in one line: the driver's own words where there are some, not SQLAlchemy's wrapping."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]


def migrate(connection):
    """Create the tables if absent and bring an older schema up to SCHEMA_VERSION."""
    metadata.create_all(connection)
    found = connection.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    version = int(found) if found is not None else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise PredictionLogError(f"its schema is version {version}, newer than this service's {SCHEMA_VERSION}: "
                                 "upgrade the service, or point PREDICTION_LOG at another database.")
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](connection)
        version += 1
    upsert(connection, meta, [{"key": "schema_version", "value": str(version)}], ["key"], ["value"])


def upsert(connection, table, rows, keys, replace, where=None):
    """Insert rows; where a row with the same `keys` exists, replace its `replace` columns (if `where`)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in replace},
        where=where(table, statement.excluded) if where else None)
    connection.execute(statement, rows)


def insert_missing(connection, table, rows, keys):
    """Insert rows whose `keys` are not there yet; leave the others as they are."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).on_conflict_do_nothing(index_elements=keys), rows)


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

    def record(self, *, model, version, request_id, now, answers, texts, tokens=None, known=None, shadow=None):
        """Queue one row per scored text (its answer already has its `id`); never blocks or raises.

        The request queues what its rows are made from, pickled into one bytes object; the writer process
        makes the rows (`prediction_rows`), so neither the client nor the worker waits for them. Bytes,
        not the answers themselves: a queue of live dicts and lists, each kept for a fraction of a second,
        pushed them into the garbage collector's older generations and cost a GET about 20 µs in its
        collections.
        """
        if not self.enabled:
            return
        if tokens is None:
            tokens = known = [None] * len(answers)
        shadow_version, shadow_labels = shadow if shadow is not None else (None, [None] * len(answers))
        if self.sample < 1.0:
            kept = [i for i, answer in enumerate(answers) if ids.sampled(answer["id"], self.sample)]
            answers, texts = [answers[i] for i in kept], [texts[i] for i in kept]
            tokens, known = [tokens[i] for i in kept], [known[i] for i in kept]
            shadow_labels = [shadow_labels[i] for i in kept]
        room = self.reserve(len(answers))
        if room:
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
        request, and a busy worker spent about as long recording a GET as answering it.
        """
        try:
            items = [self.queue.get(timeout=FLUSH_SECONDS)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + FLUSH_SECONDS
        while (self.queued < BATCH_ROWS and time.monotonic() < deadline
               and not self.stopping.wait(GATHER_POLL)):
            pass
        taken = items[0][1]
        while taken < BATCH_ROWS:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
            taken += items[-1][1]
        with self.queued_lock:
            self.queued -= taken
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
                           ["time", "model_version", "label"], where=lambda table, new: new.time >= table.c.time)
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
                summary = summarize_feedback(connection, since=time.time() - self.days * DAY)
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
        else:
            batch[kind].extend(made_from)
    return batch


PREDICTION_COLUMNS = [column.name for column in predictions.columns]


@functools.lru_cache(maxsize=64)
def probabilities_format(labels):
    """A %-format that writes {label: probability, ...} for these labels, in this order, as compact JSON."""
    return "{" + ",".join(json.dumps(label).replace("%", "%%") + ":%s" for label in labels) + "}"


def probabilities_json(probabilities):
    """An answer's {label: probability} as compact JSON, the same text as `json.dumps` with
    separators=(",", ":") but without its per-call work: the floats are written as `json` writes them,
    and the labels are escaped once per label set. A row's largest cost after the insert itself."""
    return probabilities_format(tuple(probabilities)) % tuple(probabilities.values())


def prediction_rows(model, version, request_id, now, scored, texts, tokens, known, shadow_version, shadow_labels,
                    *, texts_kept):
    """The `predictions` rows (tuples in PREDICTION_COLUMNS' order) of one request's scored texts, each
    (id, label, confidence, probabilities) as `scored` gives them, with their tokens and known tokens and the
    shadow's label."""
    return [(answer_id, now, request_id, model, version, label, confidence, probabilities_json(probabilities),
             len(text), hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
             text if texts_kept else None, token_count, known_count, shadow_version if shadow_label else None,
             shadow_label)
            for (answer_id, label, confidence, probabilities), text, token_count, known_count, shadow_label
            in zip(scored, texts, tokens, known, shadow_labels)]


def insert_predictions(connection, rows):
    """Insert queued predictions (tuples in PREDICTION_COLUMNS' order): PostgreSQL's COPY, or on SQLite
    INSERTs of SQLITE_ROWS rows each (the last few rows by executemany).

    The writer's hot path, so the drivers' own bulk paths rather than SQLAlchemy's handling of a
    parameter dict per row: one writer inserts 1.2x to 2.3x the rows per second (benchmarks/README.md,
    bench_prediction_log.py).
    """
    columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in PREDICTION_COLUMNS)
    errors = connection.dialect.loaded_dbapi.Error
    if connection.dialect.name == "postgresql":
        # As SQLite's synchronous=NORMAL: the commit does not wait for its WAL to reach the disk. A crash
        # of the server may lose the last fraction of a second of rows, never corrupt the table.
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        statement = f"COPY {predictions.name} ({columns}) FROM STDIN"
        with raised_as_sqlalchemy(statement, errors), connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    # Whole chunks by one statement, the rest row by row: two statements in all, so sqlite3's cache of
    # prepared statements stays small (one per chunk size grew a worker's memory through a soak).
    whole = len(rows) - len(rows) % SQLITE_ROWS
    cursor = connection.connection.driver_connection.cursor()
    try:
        statement = sqlite_insert(columns, SQLITE_ROWS)
        with raised_as_sqlalchemy(statement, errors):
            for start in range(0, whole, SQLITE_ROWS):
                cursor.execute(statement, tuple(itertools.chain.from_iterable(rows[start:start + SQLITE_ROWS])))
        statement = sqlite_insert(columns, 1)
        with raised_as_sqlalchemy(statement, errors):
            cursor.executemany(statement, rows[whole:])
    finally:
        cursor.close()


SQLITE_ROWS = 999 // len(PREDICTION_COLUMNS)  # within the 999 parameters of a statement older SQLite builds allow


@functools.lru_cache(maxsize=4)
def sqlite_insert(columns, count):
    """An INSERT of `count` rows into the predictions table, in sqlite3's parameter style."""
    row = "(" + ", ".join("?" * len(PREDICTION_COLUMNS)) + ")"
    return f"INSERT INTO {predictions.name} ({columns}) VALUES " + ", ".join([row] * count)


@contextlib.contextmanager
def raised_as_sqlalchemy(statement, errors):
    """Errors a driver raises itself, wrapped as SQLAlchemy wraps those of what it runs."""
    try:
        yield
    except errors as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, errors) from None


def summarize_feedback(connection, *, since):
    """Feedback count and accuracy per model since a Unix time."""
    right = sa.func.sum(sa.case((feedback.c.predicted == feedback.c.label, 1), else_=0))
    query = (sa.select(feedback.c.model, sa.func.count(), right)
             .where(feedback.c.time >= since).group_by(feedback.c.model))
    return {model: {"count": count, "accuracy": round(correct / count, 4) if count else None}
            for model, count, correct in connection.execute(query)}


# --- Reads for the build, the notebook and the drift report -------------------------------------

def open_url(url):
    """An engine for reading a PREDICTION_LOG URL, or `PredictionLogError` when it cannot be read. Reading
    never creates: a SQLite file that is not there is an error, not a new empty log."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(engine_url(url)).database
        if not path or not Path(path).is_file():
            raise PredictionLogError(f"{redacted(url)}: no such file; a server with PREDICTION_LOG={url} makes it "
                                     "at its first start. Check the path (sqlite:/// then a relative path; "
                                     "sqlite://// then an absolute one).")
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            connection.execute(sa.select(meta.c.value).limit(1))
    except (sa.exc.SQLAlchemyError, OSError, ImportError, ValueError) as exc:
        raise PredictionLogError(f"{redacted(url)}: cannot read the prediction log ({reason(exc)}).") from None
    return engine


def read_predictions(url, *, since=None, model=None):
    """The prediction log as a pandas DataFrame, oldest first; `time` as UTC timestamps.

    A log no server has migrated yet (an older schema) reads too: its missing columns come as None.
    """
    def query(present):
        selected = sa.select(*[column if column.name in present else sa.null().label(column.name)
                               for column in predictions.columns]).order_by(predictions.c.time)
        if since is not None:
            selected = selected.where(predictions.c.time >= since)
        if model is not None:
            selected = selected.where(predictions.c.model == model)
        return selected
    return read_frame(url, query, times=["time"])


def read_feedback(url, *, since=None):
    """The feedback (the latest label per id) beside its prediction where one was logged: a DataFrame with
    the feedback's columns and the prediction's `confidence`, `text_sha256` and `text` (None when absent)."""
    query = (sa.select(feedback, predictions.c.confidence, predictions.c.text_sha256, predictions.c.text)
             .select_from(feedback.outerjoin(predictions, predictions.c.id == feedback.c.id))
             .order_by(feedback.c.time))
    if since is not None:
        query = query.where(feedback.c.time >= since)
    return read_frame(url, query, times=["time", "issued"])


def compare_shadow(url, *, model, since=None):
    """How a model's shadow versions did beside its live ones: one dict per (live version, shadow version)
    pair, with the texts both scored, how many got the same label from both, and of those with feedback,
    how many each version got right. Empty for a log older than schema 3 (it has no shadow labels)."""
    p, f = predictions, feedback
    right = [sa.func.sum(sa.case((f.c.label == label, 1), else_=0)) for label in (p.c.label, p.c.shadow_label)]
    query = (sa.select(p.c.model_version, p.c.shadow_version, sa.func.count(),
                       sa.func.sum(sa.case((p.c.label == p.c.shadow_label, 1), else_=0)), sa.func.count(f.c.id), *right)
             .select_from(p.outerjoin(f, f.c.id == p.c.id))
             .where(p.c.model == model, p.c.shadow_version.is_not(None))
             .group_by(p.c.model_version, p.c.shadow_version).order_by(sa.func.min(p.c.time)))
    if since is not None:
        query = query.where(p.c.time >= since)
    engine = open_url(url)
    try:
        with engine.connect() as connection:
            if "shadow_version" not in {c["name"] for c in sa.inspect(connection).get_columns(p.name)}:
                return []
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    return [{"live": live, "shadow": shadow, "texts": texts, "agreed": int(agreed), "feedback": labelled,
             "live_right": int(live_right or 0), "shadow_right": int(shadow_right or 0)}
            for live, shadow, texts, agreed, labelled, live_right, shadow_right in rows]


def read_frame(url, query, *, times):
    """A query's rows as a pandas DataFrame, its `times` columns (Unix seconds) as UTC timestamps; `query`
    may be a function of the predictions table's column names that makes it."""
    import pandas as pd

    engine = open_url(url)
    try:
        with engine.connect() as connection:
            if callable(query):  # a query made for the columns the predictions table has
                query = query({column["name"] for column in sa.inspect(connection).get_columns(predictions.name)})
            frame = pd.read_sql(query, connection)
    finally:
        engine.dispose()
    for column in times:
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def configured_log(settings, on_drop=None):
    """The `PredictionLog` that a service's settings describe."""
    url = None if settings.PREDICTION_LOG == "off" else settings.PREDICTION_LOG
    return PredictionLog(url, texts=settings.PREDICTION_LOG_TEXTS, sample=settings.PREDICTION_LOG_SAMPLE,
                         days=settings.PREDICTION_LOG_DAYS, on_drop=on_drop)


def default_url(state_dir):
    """The default PREDICTION_LOG: a SQLite file in the state folder."""
    return "sqlite:///" + os.fspath(Path(state_dir) / "predictions.sqlite3")
