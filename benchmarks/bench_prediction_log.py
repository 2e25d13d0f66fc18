"""Prediction-log benchmark: what a row costs on disk, and how fast one writer process inserts them.

    python benchmarks/bench_prediction_log.py              # 100,000 rows into SQLite and PostgreSQL
    python benchmarks/bench_prediction_log.py --rows 1000 --no-postgres

For each engine (a SQLite file; a private PostgreSQL cluster started with tests.support's
PostgresCluster), without and with texts, it queues `--rows` answers as the service does (binary
model, a 38-character phrase, a request id), lets one `PredictionLog` writer insert them, and prints
the rows per second it wrote and the bytes per row on disk (SQLite: the file after a checkpoint;
PostgreSQL: `pg_total_relation_size` of the table with its indexes). docs/running.md turns these into
disk per day at a request rate.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import ids, prediction_log  # noqa: E402
from tests.support import PostgresCluster, postgres_bin  # noqa: E402

TEXT = "a charming and often affecting journey"  # 38 characters, about a Kaggle test phrase's mean
TOKENS = 6  # its tokens, all known
VERSION = "20261201T120000Z-0a1b2c3d"


def fill(url, rows, *, texts):
    """Queue `rows` answers, in requests of 1,000, to a started writer and let it insert them all; return the
    rows per second from the first request queued to the last row written (the writer's start-up, and the
    first row, which shows it is up, left out)."""
    log = prediction_log.PredictionLog(url, texts=texts, queue_rows=rows + 1)
    signer = ids.Signer(log.prepare())
    now = time.time()
    answers = [{"prediction": "Positive", "confidence": 0.873, "probabilities": {"Negative": 0.127, "Positive": 0.873},
                "id": signer.issue(model_index=0, label_index=1, version=ids.version_tag(VERSION), now=now)}
               for _ in range(rows)]
    log.start()
    *answers, first = answers  # the writer is up once this one's row is written
    log.record(model="binary", version=VERSION, request_id=None, now=now, answers=[first], texts=[TEXT])
    while first["id"] not in set(prediction_log.read_predictions(url)["id"]):
        time.sleep(0.05)
    rows -= 1
    started = time.perf_counter()
    for start in range(0, rows, 1000):
        count = len(answers[start:start + 1000])
        log.record(model="binary", version=VERSION, request_id=os.urandom(16).hex(), now=now,
                   answers=answers[start:start + 1000], texts=[TEXT] * count, tokens=[TOKENS] * count,
                   known=[TOKENS] * count)
    log.stop(timeout=3600)
    return rows / (time.perf_counter() - started)


def on_disk(url, path=None):
    """Bytes the predictions take: the SQLite file after a checkpoint, or PostgreSQL's table and indexes."""
    engine = prediction_log.make_engine(url)
    try:
        with engine.connect() as connection:
            if path is not None:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return os.path.getsize(path)
            return connection.exec_driver_sql("SELECT pg_total_relation_size('predictions')").scalar()
    finally:
        engine.dispose()


def main(argv=None):
    """Measure both engines, without and with texts, and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per measurement (default 100,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    print(f"{'engine':<11} {'texts':<5} {'rows/s written':>14} {'bytes/row':>9}")
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        for texts in (False, True):
            path = Path(tmp) / f"log-{texts}.sqlite3"
            url = f"sqlite:///{path}"
            rate = fill(url, args.rows, texts=texts)
            print(f"{'SQLite':<11} {str(texts).lower():<5} {rate:>14,.0f} {on_disk(url, path) / args.rows:>9.0f}")
    if args.no_postgres or postgres_bin("initdb") is None:
        return 0
    cluster = PostgresCluster()
    try:
        for texts in (False, True):
            url = cluster.database(f"bench_{int(texts)}")
            rate = fill(url, args.rows, texts=texts)
            print(f"{'PostgreSQL':<11} {str(texts).lower():<5} {rate:>14,.0f} {on_disk(url) / args.rows:>9.0f}")
    finally:
        cluster.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
