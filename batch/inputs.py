"""The inputs of a batch run, cut into blocks of whole lines: local files or fsspec URLs, plain or
gzip, read by this process (`read_blocks`) or planned as cells that Dask workers read themselves
(`plan_cells`, `read_cell_blocks`). `batch/blocks.py` scores a block; only a few are in memory at a time.
"""
import gzip
import io
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import util

# Bytes of input per block. A block is scored with one vectorised call, so it should hold thousands of
# lines; it is also the unit a Dask worker receives and, with --output-dir, one file of output.
BLOCK_SIZE = 4 << 20
# No review is this long; a "line" that is must be another kind of file, and is refused before it fills memory.
MAX_LINE = 16 << 20


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
