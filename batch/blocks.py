"""Score a corpus block by block: its inputs, their blocks, one block's rows, and where the rows go.

`predict.py` cuts its inputs into blocks of whole lines (`read_blocks`), turns each block into CSV
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
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kinds
import util
from store import artifacts

# Bytes of input per block. A block is scored with one vectorised call, so it should hold thousands of
# lines; it is also the unit a Dask worker receives and, with --output-dir, one file of output.
BLOCK_SIZE = 4 << 20
# No review is this long; a "line" that is must be another kind of file, and is refused before it fills memory.
MAX_LINE = 16 << 20
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
        Plain text from several files: a first column names each line's file.
    """
    kaggle: bool
    explain: int | None = None
    file_column: bool = False

    def header(self, labels):
        """The CSV header of this job's output, as bytes."""
        if self.kaggle:
            columns = SUBMISSION_HEADER
        else:
            columns = [*(["file"] if self.file_column else []), "line", "prediction", "confidence", *labels,
                       *(["explanation"] if self.explain else [])]
        return csv_bytes([columns])


@dataclass(frozen=True)
class Block:
    """Whole lines of one input file: its name as errors give it, the first line's number in that file, the
    lines' bytes (decompressed), the block's place in the run (from 0) and how many bytes of the file it
    took on disk (for progress)."""
    path: str
    first_line: int
    data: bytes
    number: int
    disk_bytes: int


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


# --- Inputs ---------------------------------------------------------------------------------------

def is_url(name):
    """True for an fsspec URL (`s3://bucket/key`, `https://host/file`), False for a path on this machine."""
    return "://" in str(name)


@contextmanager
def reading_url(url, where=""):
    """Turn what an fsspec back end raises about `url` into a `DataError` naming it (`where` says where it was
    read, for a Dask worker). Each back end raises its own kinds (botocore's, aiohttp's, ...), so any
    exception here is the storage's answer, not a bug of ours."""
    try:
        yield
    except util.DataError:
        raise
    except ImportError as exc:
        raise util.DataError(f"{url}: reading this kind of URL{where} needs a package that is not installed ({exc}); "
                             "see docs/batch.md.") from None
    except FileNotFoundError:
        raise util.DataError(f"{url}: no such file{where}.") from None
    except Exception as exc:
        raise util.DataError(f"{url}: cannot be read{where} ({type(exc).__name__}: {exc}).") from None


def open_input(path, where=""):
    """Open a file or fsspec URL for reading bytes; return (raw file, stream), the stream gunzipping a gzip file.

    A URL that cannot be opened is a `DataError` (`reading_url`); a path, an `OSError`."""
    if is_url(path):
        import fsspec  # only for URLs: each kind needs its own package (docs/batch.md)

        with reading_url(path, where):
            # fsspec's files read ranges but have no readline(size): give them an io buffer, as open() has.
            raw = io.BufferedReader(fsspec.open(str(path), "rb").open(), buffer_size=1 << 20)
    else:
        raw = open(path, "rb")
    compressed = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    return raw, (gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw)


def is_kaggle_test(path):
    """True when the file starts with Kaggle's test.tsv header; `DataError` for a Kaggle-like header with
    other columns (e.g. train.tsv), which would otherwise be scored as text."""
    raw, stream = open_input(path)
    with raw, stream:
        first = read_gzip(path, stream.readline, MAX_LINE)
    fields = decode(first, path, 1).rstrip("\r\n").split("\t")
    if fields[:3] != util.TEST_COLUMNS:
        return False
    if len(fields) != 3:
        raise util.DataError(f"{path}: line 1: the header has {len(fields)} columns ({', '.join(fields)}); "
                             f"a Kaggle test file has 3 ({', '.join(util.TEST_COLUMNS)}). Score the phrases as "
                             "plain text instead: `tail -n +2 FILE | cut -f3 > phrases.txt`.")
    return True


def read_blocks(paths, *, kaggle, block_size=BLOCK_SIZE):
    """Yield `Block`s of about `block_size` bytes of whole lines, file after file (a Kaggle header skipped)."""
    number = 0
    for path in paths:
        raw, stream = open_input(path)
        with raw, stream:
            for block in file_blocks(str(path), stream, kaggle=kaggle, block_size=block_size, number=number):
                yield block
                number += 1


def file_blocks(path, stream, *, kaggle, block_size, number=0):
    """Yield the `Block`s of one open file from its start (its Kaggle header skipped), numbered from `number`."""
    line = 1
    if kaggle:
        line += read_gzip(path, stream.readline, MAX_LINE).count(b"\n")
    position = 0
    while data := read_cell(path, stream, block_size, line):
        disk = raw_position(stream)
        yield Block(path, line, data, number, disk - position)
        number += 1
        line += data.count(b"\n")
        position = disk


def raw_position(stream):
    """How far into the file on disk a stream has read (for a gzip stream, of the compressed bytes)."""
    return stream.fileobj.tell() if isinstance(stream, gzip.GzipFile) else stream.tell()


def read_cell(path, stream, block_size, first_line):
    """The line-boundary rule, which every reader of blocks follows, so blocks end where they always end.

    Block k of a file holds the lines that start in bytes [k * block_size, (k + 1) * block_size) (of the
    decompressed bytes, for gzip). `stream` is at the start of a line: return that line and the next ones
    that start in the same block (b"" at the end of the file). `first_line` is the number of the first
    line read, for the `DataError` a line longer than `MAX_LINE` raises.
    """
    position = stream.tell()
    return read_whole_lines(path, stream, (position // block_size + 1) * block_size - position, first_line)


def seek_cell(path, stream, offset):
    """Move a seekable `stream` to the first line that starts at or after byte `offset` (the start of the
    block at `offset`, by `read_cell`'s rule): past the rest of a line that began before it."""
    if offset == 0:
        stream.seek(0)
        return
    stream.seek(offset - 1)
    if stream.read(1) == b"\n":
        return
    while (rest := read_gzip(path, stream.readline, MAX_LINE)) and not rest.endswith(b"\n"):
        pass  # a line longer than MAX_LINE: the block it starts in refuses it


@dataclass(frozen=True)
class Cell:
    """What a worker reads for itself (`read_cell_blocks`): the block at `offset` of one input, or the whole
    of a gzip input, which cannot be read from the middle (`offset` None).

    `name` is the input as errors give it, `location` what the worker opens (an absolute path or a URL),
    `file` its place among the run's inputs, `size` its size in bytes when the run started.
    """
    name: str
    location: str
    file: int
    offset: int | None
    size: int
    kaggle: bool


def plan_cells(paths, *, kaggle, block_size):
    """The `Cell`s that cover `paths`, in input order: one per `block_size` bytes of each plain file, one per
    gzip file."""
    cells = []
    for file, path in enumerate(paths):
        location = str(path) if is_url(path) else str(Path(path).resolve())
        raw, stream = open_input(location)
        with raw, stream:
            size = open_size(raw)  # as a worker's open_cell checks it, and with no second look at the storage
            offsets = [None] if isinstance(stream, gzip.GzipFile) else range(0, max(size, 1), block_size)
        cells += [Cell(str(path), location, file, offset, size, kaggle) for offset in offsets]
    return cells


def file_size(path):
    """The size in bytes of a file or fsspec URL."""
    if not is_url(path):
        return os.path.getsize(path)
    import fsspec

    with reading_url(path):
        filesystem, inner = fsspec.core.url_to_fs(str(path))
        return filesystem.size(inner)


def open_size(raw):
    """The size in bytes of an open input (a local file, or an fsspec file, which knows its size)."""
    return raw.raw.size if hasattr(raw.raw, "size") else os.fstat(raw.fileno()).st_size


@contextmanager
def open_cell(cell):
    """The cell's input, open on this worker and checked to be the file the run started with: `DataError` naming
    it when it cannot be opened here, or has changed size."""
    where = " where the Dask worker runs"
    try:
        raw, stream = open_input(cell.location, where)
    except OSError as exc:  # a path
        raise util.DataError(f"{cell.name}: cannot be read{where} ({exc.strerror or exc}); "
                             "if only this machine can read it, use --read-on client.") from None
    except util.DataError as exc:  # a URL
        raise util.DataError(f"{str(exc).removesuffix('.')}; if only this machine can read it, use --read-on "
                             "client.") from None
    with raw, stream:
        size = open_size(raw)
        if size != cell.size:
            raise util.DataError(f"{cell.name}: changed during the run ({cell.size:,} bytes when it started, "
                                 f"{size:,} now); score it again once it is complete.")
        yield stream


def count_cell_lines(cell, block_size):
    """How many lines start in the cell (its Kaggle header included): what puts a number on the next cell's
    first line."""
    with open_cell(cell) as stream:
        seek_cell(cell.name, stream, cell.offset)
        return read_cell(cell.name, stream, block_size, 1).count(b"\n") if stream.tell() < cell.offset + block_size \
            else 0


def read_cell_blocks(cell, block_size, first_line):
    """The `Block`s of a cell (none, one, or every block of a gzip file) as the local engine's reader cuts them;
    `first_line` is the number of the cell's first line. Blocks are numbered from 0 within the cell."""
    with open_cell(cell) as stream:
        if cell.offset is None:
            return list(file_blocks(cell.name, stream, kaggle=cell.kaggle, block_size=block_size))
        seek_cell(cell.name, stream, cell.offset)
        if stream.tell() >= cell.offset + block_size:  # a line from an earlier block fills this one
            return []
        line = first_line
        if cell.kaggle and cell.offset == 0:
            line += read_gzip(cell.name, stream.readline, MAX_LINE).count(b"\n")
        data = read_cell(cell.name, stream, block_size, line)
        return [Block(cell.name, line, data, 0, len(data))] if data else []


def read_whole_lines(path, stream, size, first_line):
    """`size` bytes of `stream`, then the rest of the line they end in (b"" at its end).

    `first_line` is the number of the first line read, for the `DataError` a line longer than `MAX_LINE` raises.
    """
    data = read_gzip(path, stream.read, size)
    if data and not data.endswith(b"\n"):
        rest = read_gzip(path, stream.readline, MAX_LINE)
        if len(rest) == MAX_LINE and not rest.endswith(b"\n"):
            long_line = first_line + data.count(b"\n")
            raise util.DataError(f"{path}: line {long_line}: longer than {MAX_LINE:,} bytes; "
                                 "give a text file with one text per line.")
        data += rest
    return data


def read_gzip(path, read, *args):
    """`read(*args)`, with a broken gzip stream turned into a `DataError` naming the file."""
    try:
        return read(*args)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise util.DataError(f"{path}: not a readable gzip file ({exc or 'it ends too soon'}).") from None


def decode(data, path, first_line):
    """The bytes as text; `DataError` naming the line that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise util.DataError(f"{path}: line {line}: not UTF-8 text.") from None


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
