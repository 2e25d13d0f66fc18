"""The prediction log's database: its tables (defined once, here, for SQLite and PostgreSQL), the engine,
the start-up migration, and the SQL of its writes.

`serving/prediction_log.py` queues and writes rows with these; `serving/log_reads.py` reads them back.
No SQL is written anywhere else. The layer is SQLAlchemy 2 Core: one table definition for both
engines, their dialects' upserts, and a connection pool that checks a connection before use.
"""
import contextlib
import functools
import hashlib
import itertools
import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from serving.config import ConfigError, without_password

SCHEMA_VERSION = 4  # 2: tokens and known_tokens; 3: shadow_version and shadow_label; 4: numbers (below)
metadata = sa.MetaData()
# One row per scored input: a text and its label, or (from schema 4) a regressor's named inputs and its
# number, the text columns then empty. `time` is Unix seconds: the same arithmetic on both engines, and
# windows are plain comparisons on an index.
predictions = sa.Table(
    "predictions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(128)),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("label", sa.String(64)),  # a classifier's (every row before schema 4)
    sa.Column("confidence", sa.Float),
    sa.Column("probabilities", sa.Text),  # JSON {label: probability}, as answered
    sa.Column("text_length", sa.Integer),  # a text model's
    sa.Column("text_sha256", sa.String(64)),
    sa.Column("text", sa.Text),  # only with PREDICTION_LOG_TEXTS=true
    # The drift signals of the text: its tokens, and those the model knows (None in rows of schema 1).
    sa.Column("tokens", sa.Integer),
    sa.Column("known_tokens", sa.Integer),
    # The shadow version that scored the same text, and its label (None without a shadow, and before schema 3).
    sa.Column("shadow_version", sa.String(64)),
    sa.Column("shadow_label", sa.String(64)),
    # A regressor's (schema 4): the number, unrounded; the named inputs as JSON; the shadow's number.
    sa.Column("value", sa.Float),
    sa.Column("inputs", sa.Text),
    sa.Column("shadow_value", sa.Float),
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
    sa.Column("predicted", sa.String(64), nullable=False),  # a regressor's number as text (repr), from schema 4
    sa.Column("label", sa.String(64), nullable=False),  # the true label, or a regressor's true number as text
    # How wrong the answer was, as its model's kind measures it (schema 4): 0 or 1 for a label, the absolute
    # error for a number. None in older rows, whose labels are compared instead.
    sa.Column("error", sa.Float),
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


NOW_OPTIONAL = ("label", "confidence", "probabilities", "text_length", "text_sha256")


def add_number_columns(connection):
    """Schema 3 to 4: rows of regressors. The predictions' label and text columns may be empty; the
    value, inputs and shadow_value columns, and feedback's error (unless the feedback table was just made
    with it), are added, empty in the rows there.

    PostgreSQL drops the NOT NULL constraints in place. SQLite cannot, so its predictions table is made
    anew and the rows copied, in the migration's transaction: a large log takes a while, once."""
    inspector = sa.inspect(connection)
    if "error" not in {column["name"] for column in inspector.get_columns("feedback")}:
        connection.execute(sa.text("ALTER TABLE feedback ADD COLUMN error FLOAT"))
    if connection.dialect.name == "postgresql":
        for name in NOW_OPTIONAL:
            connection.execute(sa.text(f"ALTER TABLE predictions ALTER COLUMN {name} DROP NOT NULL"))
        for name, type_ in (("value", "DOUBLE PRECISION"), ("inputs", "TEXT"), ("shadow_value", "DOUBLE PRECISION")):
            connection.execute(sa.text(f"ALTER TABLE predictions ADD COLUMN {name} {type_}"))
    else:
        kept = [column["name"] for column in sa.inspect(connection).get_columns("predictions")]
        connection.execute(sa.text("ALTER TABLE predictions RENAME TO predictions_schema3"))
        for index in sa.inspect(connection).get_indexes("predictions_schema3"):
            connection.execute(sa.text(f'DROP INDEX "{index["name"]}"'))
        predictions.create(connection)
        names = ", ".join(f'"{name}"' for name in kept)
        connection.execute(sa.text(f"INSERT INTO predictions ({names}) SELECT {names} FROM predictions_schema3"))
        connection.execute(sa.text("DROP TABLE predictions_schema3"))


# Steps from each schema version to the next, run in order at start: {from_version: function(connection)}.
MIGRATIONS = {1: add_token_counts, 2: add_shadow_columns, 3: add_number_columns}


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
             shadow_label, None, None, None)
            for (answer_id, label, confidence, probabilities), text, token_count, known_count, shadow_label
            in zip(scored, texts, tokens, known, shadow_labels)]


def value_rows(model, version, request_id, now, scored, inputs, shadow_version, shadow_values):
    """The `predictions` rows of one request to a regressor: each (id, number) as `scored` gives them, with
    its named inputs (JSON) and the shadow's number."""
    return [(answer_id, now, request_id, model, version, None, None, None, None, None, None, None, None,
             shadow_version if shadow_value is not None else None, None, value,
             json.dumps(row, separators=(",", ":"), ensure_ascii=False), shadow_value)
            for (answer_id, value), row, shadow_value in zip(scored, inputs, shadow_values)]


def labelled_rows(model, version, request_id, now, scored, inputs, shadow_version, shadow_labels):
    """The `predictions` rows of one request to a classifier of named inputs: each (id, label, confidence,
    probabilities) as `scored` gives them, with its named inputs (JSON) and the shadow's label."""
    return [(answer_id, now, request_id, model, version, label, confidence, probabilities_json(probabilities),
             None, None, None, None, None, shadow_version if shadow_label else None, shadow_label, None,
             json.dumps(row, separators=(",", ":"), ensure_ascii=False), None)
            for (answer_id, label, confidence, probabilities), row, shadow_label in zip(scored, inputs, shadow_labels)]


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


def summarize_feedback(connection, *, since, regressors=()):
    """Feedback per model since a Unix time: its count, and its accuracy (a classifier) or mean absolute
    error (the models named in `regressors`)."""
    # Rows before schema 4 have no error: a label that is not the one predicted was wrong.
    error = sa.func.coalesce(feedback.c.error, sa.case((feedback.c.predicted == feedback.c.label, 0.0), else_=1.0))
    query = (sa.select(feedback.c.model, sa.func.count(), sa.func.sum(error))
             .where(feedback.c.time >= since).group_by(feedback.c.model))
    summary = {}
    for model, count, total in connection.execute(query):
        mean = total / count if count else None
        summary[model] = ({"count": count, "mae": None if mean is None else round(mean, 4)} if model in regressors
                          else {"count": count, "accuracy": None if mean is None else round(1 - mean, 4)})
    return summary
