"""Reads of the prediction log for the build, the notebook and the drift report: pandas DataFrames of the
predictions and the feedback, and the shadow's comparison. Reading never creates or migrates a database.
"""
from pathlib import Path

import sqlalchemy as sa

from serving.log_schema import (
    PredictionLogError,
    engine_url,
    feedback,
    make_engine,
    meta,
    predictions,
    reason,
    redacted,
)


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
    the feedback's columns and the prediction's `confidence`, `text_sha256`, `text` and (a regressor's)
    `inputs` (None when absent)."""
    query = (sa.select(feedback, predictions.c.confidence, predictions.c.text_sha256, predictions.c.text,
                       predictions.c.inputs)
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
