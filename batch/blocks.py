"""Score a corpus block by block: one block's rows, and where the rows go.

`predict.py` cuts its inputs into blocks of whole lines (`batch/inputs.py`), turns each block into CSV
rows with `score_block`, and writes the rows in input order to a `FileOutput` or a `FolderOutput`.
The local engine (`run_local`) scores the blocks one after another in its own process; the Dask
engine (`cluster.py`) sends each block to a worker, which calls the same `score_block`, so the two
engines write the same bytes. Only a few blocks are in memory at a time, whatever the input's size.

Two kinds of input, told apart by their first line:
- a Kaggle test file (header `PhraseId<TAB>SentenceId<TAB>Phrase`) becomes Kaggle's submission,
  `PhraseId,Sentiment`;
- anything else is plain text, one text per line; each non-blank line gets a row with its line
  number, label, confidence and every label's probability (and with `explain`, its strongest terms).
"""
import csv
import io
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kinds
import util
from batch import films
from batch.inputs import decode
from store import artifacts

SUBMISSION_HEADER = ["PhraseId", "Sentiment"]
SUCCESS_FILE = "_SUCCESS"


@dataclass(frozen=True)
class Job:
    """What every block of one run is scored for.

    kaggle : bool
        The inputs are Kaggle test files: write a submission.
    explain : int or None
        Plain text only: add each line's `explain` strongest terms.
    file_column : bool
        Plain text (or films) from several files: a first column names each line's file.
    films : bool
        JSON lines of films, for a model of named inputs (`batch/films.py`).
    """
    kaggle: bool
    explain: int | None = None
    file_column: bool = False
    films: bool = False  # JSON lines of films, for a model of named inputs (batch/films.py)

    def header(self, labels):
        """The CSV header of this job's output, as bytes."""
        if self.films:
            columns = [*(["file"] if self.file_column else []), *films.header(labels)]
        elif self.kaggle:
            columns = SUBMISSION_HEADER
        else:
            columns = [*(["file"] if self.file_column else []), "line", "prediction", "confidence", *labels,
                       *(["explanation"] if self.explain else [])]
        return csv_bytes([columns])


class VerifiedModel:
    """A model folder checked against its manifest, as the very bytes whose hashes were checked: what both
    engines take. The local engine loads it here (`load`); the Dask engine sends `files` to its workers,
    which check and load them there. `ModelError` when the folder is unusable."""

    def __init__(self, folder):
        self.folder = artifacts.resolve_folder(folder)  # errors name the version, as on every other load path
        self.files = kinds.read_files(self.folder)
        manifest = json.loads(self.files[artifacts.MANIFEST_FILE])
        self.labels, self.name = manifest["labels"], manifest["name"]

    def load(self):
        """The loaded `SentimentModel`, from the checked bytes (checked again, as a worker does)."""
        return kinds.from_files(self.files, self.folder)


# --- One block ------------------------------------------------------------------------------------

def parse_block(job, block):
    """The block's (keys, texts): PhraseIds of a Kaggle file, line numbers of plain text (blank lines skipped).

    Raises `DataError` naming the file and line of a row that is not what the file claims to be.
    """
    lines = decode(block.data, block.path, block.first_line).split("\n")
    if lines[-1] == "":  # the newline ending the block's last line
        lines.pop()
    keys, texts = [], []
    for number, line in enumerate(lines, start=block.first_line):
        line = line.rstrip("\r")
        if job.kaggle:
            if not line:
                continue
            phrase_id, _, phrase = kaggle_fields(line, block.path, number)
            keys.append(phrase_id)
            texts.append(phrase)
        elif line.strip():
            keys.append(number)
            texts.append(line)
    return keys, texts


def kaggle_fields(line, path, number):
    """The three fields of a Kaggle test row; `DataError` naming the line when it has other fields."""
    fields = line.split("\t")
    if len(fields) != 3:
        raise util.DataError(f"{path}: line {number}: {len(fields)} tab-separated fields; a Kaggle test row has "
                             f"3 ({', '.join(util.TEST_COLUMNS)}). Fix or remove the line.")
    if not (fields[0].isascii() and fields[0].isdigit()):
        raise util.DataError(f"{path}: line {number}: PhraseId {fields[0]!r} is not a whole number. "
                             "Fix or remove the line.")
    return fields


def score_block(scorer, job, block):
    """Score one block; return (row count, the rows as CSV bytes).

    `scorer` is a loaded text classifier (`kinds.text.TextClassifier`). The probabilities come from its
    vectorised path (`predict_proba_matrix`), whose rows do not depend on the other texts in the call, so the
    bytes do not depend on where blocks end.
    """
    if job.films:
        return films.score_films(scorer, job, block)
    keys, texts = parse_block(job, block)
    if not texts:
        return 0, b""
    if job.kaggle:
        return len(keys), csv_bytes(zip(keys, scorer.predict_proba_matrix(texts).argmax(axis=1).tolist()))
    prefix = [block.path] if job.file_column else []
    if job.explain:
        answers = scorer.predict(texts, explain=True)
        return len(keys), csv_bytes(
            [*prefix, key, answer["prediction"], answer["confidence"], *answer["probabilities"].values(),
             strongest_terms(answer["explanation"], job.explain)] for key, answer in zip(keys, answers))
    return len(keys), text_rows(prefix, keys, scorer.labels, scorer.predict_proba_matrix(texts))


# repr(k / 1000) for k in 0..1000: the text of every probability rounded to 3 decimals, as the API rounds.
THOUSANDTHS = np.array([repr(k / 1000) for k in range(1001)], dtype=object)


def text_rows(prefix, keys, labels, probabilities):
    """CSV bytes of plain-text rows, the same as writing each `SentimentModel.answer` with `csv`, made with
    array operations: [*prefix, line, prediction, confidence, *probabilities], rounded to 3 decimals."""
    lead = csv_bytes([prefix]).decode()[:-1] + "," if prefix else ""  # the file name (quoted if need be)
    names = np.array([csv_bytes([[label]]).decode()[:-1] for label in labels], dtype=object)
    rounded = thousandths(probabilities)
    columns = [map(str, keys), names[probabilities.argmax(axis=1)], THOUSANDTHS[rounded.max(axis=1)],
               *THOUSANDTHS[rounded].T]
    return "".join([f"{lead}{','.join(row)}\n" for row in zip(*columns)]).encode("utf-8")


def thousandths(values):
    """`round(value, 3) * 1000` of each value in [0, 1], as integers; exactly Python's rounding, which
    `np.rint(values * 1000)` misses only within float error of a half, where Python decides."""
    scaled = values * 1000
    rounded = np.rint(scaled).astype(np.int64)
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    for index in zip(*np.nonzero(near_half)):
        rounded[index] = round(round(float(values[index]), 3) * 1000)
    return rounded


def strongest_terms(explanation, k):
    """The first `k` terms of a model's explanation as `term:contribution;...`, contributions to 3 decimals.

    The model's terms are words of two or more word characters (or n-grams of them), so neither
    separator can occur inside one.
    """
    # + 0.0 turns a -0.0 left by rounding a tiny negative into 0.0, so no term reads "-0.000".
    return ";".join(f"{term['term']}:{round(term['contribution'], 3) + 0.0:.3f}"
                    for term in explanation["terms"][:k])


def csv_bytes(rows):
    """Rows as CSV (`\\n` line ends), encoded as UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def run_local(verified, job, blocks, deliver):
    """The local engine: load the `VerifiedModel`, score each block in this process and hand it to
    `deliver(block, rows, data)`."""
    scorer = verified.load()
    for block in blocks:
        deliver(block, *score_block(scorer, job, block))


# --- Outputs --------------------------------------------------------------------------------------

class FileOutput:
    """One CSV file written as the rows come, whole or not at all (renamed into place at the end), or
    standard output for "-". Use as a context manager; an error inside it leaves no file behind."""

    def __init__(self, path, header):
        self.path, self.header = path, header

    def __enter__(self):
        if self.path == "-":
            sys.stdout.flush()
            self.handle, self.writer = sys.stdout.buffer, None
        else:
            self.writer = util.atomic_writer(self.path)
            self.handle = self.writer.__enter__()
        self.handle.write(self.header)
        return self

    def write(self, block, data):
        """Append a block's rows."""
        self.handle.write(data)

    def __exit__(self, *exc_info):
        if self.writer is None:
            self.handle.flush()
            return False
        return self.writer.__exit__(*exc_info)


class FolderOutput:
    """A folder of CSV files, one per block (`part-00000.csv`, ..., each with the header), and an empty
    `_SUCCESS` once all are written. It is filled under a temporary name beside it and renamed at the end,
    so it appears whole or not at all; it must not exist yet (or be empty)."""

    def __init__(self, path, header):
        self.path, self.header = Path(path), header
        if self.path.exists() and not (self.path.is_dir() and not any(self.path.iterdir())):
            raise util.DataError(f"{self.path}: already exists; remove it or choose another --output-dir.")

    def __enter__(self):
        self.staging = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        self.parts = 0
        return self

    def write(self, block, data):
        """Write a block's rows as the next part file; `data` may be a `WrittenPart` already in the folder."""
        part = self.staging / f"part-{self.parts:05d}.csv"
        if isinstance(data, WrittenPart):
            os.rename(self.staging / data.name, part)
        else:
            write_part(part, self.header + data)
        self.parts += 1

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        try:
            for leftover in self.staging.glob(".*"):  # written by a worker that died before its task finished
                leftover.unlink()
            (self.staging / SUCCESS_FILE).touch()
            os.chmod(self.staging, 0o777 & ~util.UMASK)
            if self.path.is_dir():  # empty, checked at the start
                self.path.rmdir()
            os.rename(self.staging, self.path)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        return False


@dataclass(frozen=True)
class WrittenPart:
    """A block's rows that a Dask worker wrote into the output folder itself, as the hidden file `name`."""
    name: str


def write_part(path, data):
    """Write one part file whole, synced to disk, renamed into place (a retried task may write it again)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as part:
        part.write(data)
        os.fsync(part.fileno())
    os.replace(temporary, path)
