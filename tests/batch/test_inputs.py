"""batch/inputs.py: blocks of whole lines from files and byte ranges (cells), plain or gzip; inputs that
are not what they claim are named with their file and line."""
import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

import util
from batch import inputs


def write(path, text, *, packed=False):
    """Write `text` to `path`, gzip-compressed if `packed`; return the path."""
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    return path


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("size", [1024, 4096, inputs.BLOCK_SIZE])
def test_blocks_hold_whole_lines_and_know_where_they_start(tmp_path, packed, size):
    lines = [f"line {n} " + "word " * (n % 37) for n in range(1, 3001)]
    path = write(tmp_path / ("in.txt.gz" if packed else "in.txt"), "\n".join(lines))  # no newline at the end
    blocks = list(inputs.read_blocks([path], kaggle=False, block_size=size))
    assert [b.number for b in blocks] == list(range(len(blocks)))
    assert (len(blocks) > 10) == (size < 10_000)
    assert b"".join(b.data for b in blocks).decode().split("\n") == lines
    for b in blocks:
        first = b.data.decode().split("\n")[0]
        assert first == lines[b.first_line - 1]
        assert b.data.endswith(b"\n") or b is blocks[-1]
    assert sum(b.disk_bytes for b in blocks) == path.stat().st_size


def cell_blocks(paths, *, kaggle, block_size):
    """The blocks a Dask worker reads for itself: every cell of `plan_cells`, each cell's first line number
    counted from the cells before it, as the client does."""
    blocks, next_line = [], {}
    for cell in inputs.plan_cells(paths, kaggle=kaggle, block_size=block_size):
        first_line = next_line.get(cell.file, 1)
        blocks += inputs.read_cell_blocks(cell, block_size, first_line)
        if cell.offset is not None:
            next_line[cell.file] = first_line + inputs.count_cell_lines(cell, block_size)
    return blocks


def where(blocks):
    """What a reader's blocks hold, apart from numbering and progress: (file, first line, bytes)."""
    return [(b.path, b.first_line, b.data) for b in blocks]


@given(lengths=st.lists(st.integers(0, 300), min_size=0, max_size=120), size=st.integers(16, 400),
       ending=st.sampled_from(["", "\n"]))
def test_a_worker_reading_its_own_byte_ranges_gets_the_local_readers_blocks(tmp_path_factory, lengths, size, ending):
    folder = tmp_path_factory.mktemp("cells")
    text = "\n".join("x" * n for n in lengths) + ending  # lines longer than a block span several cells
    first = write(folder / "first.txt", text)
    second = write(folder / "second.txt", "one\ntwo\n" * 20)
    assert where(cell_blocks([first, second], kaggle=False, block_size=size)) == \
        where(inputs.read_blocks([first, second], kaggle=False, block_size=size))


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_kaggle_file_read_by_cells_skips_its_header_once(tmp_path, packed):
    rows = [f"{n}\t{n // 3}\tphrase {n}" + " word" * (n % 13) for n in range(1, 400)]
    path = write(tmp_path / "test.tsv", "\n".join(["PhraseId\tSentenceId\tPhrase", *rows]) + "\n", packed=packed)
    cells = inputs.plan_cells([path], kaggle=True, block_size=1024)
    assert (len(cells) == 1 and cells[0].offset is None) if packed else len(cells) > 10
    assert where(cell_blocks([path], kaggle=True, block_size=1024)) == \
        where(inputs.read_blocks([path], kaggle=True, block_size=1024))


def test_a_gzip_file_is_one_cell_read_whole_as_the_local_reader_cuts_it(tmp_path):
    path = write(tmp_path / "in.txt.gz", "".join(f"line {n}\n" for n in range(3000)), packed=True)
    [cell] = inputs.plan_cells([path], kaggle=False, block_size=1024)
    assert cell.offset is None and cell.location == str(path.resolve())
    blocks = inputs.read_cell_blocks(cell, 1024, 1)
    assert len(blocks) > 10 and where(blocks) == where(inputs.read_blocks([path], kaggle=False, block_size=1024))


@pytest.mark.parametrize("change, message", [
    (lambda path: path.write_bytes(path.read_bytes()[:500]),
     r"changed during the run \(5,000 bytes when it started, 500 now\)"),
    (lambda path: path.unlink(), r"cannot be read where the Dask worker runs .*use --read-on client"),
])
def test_a_file_that_shrinks_or_vanishes_after_planning_is_named(tmp_path, change, message):
    path = write(tmp_path / "in.txt", "abcd\n" * 1000)
    cells = inputs.plan_cells([path], kaggle=False, block_size=1024)
    change(path)
    with pytest.raises(util.DataError, match=rf"^{path}: {message}"):
        inputs.read_cell_blocks(cells[-1], 1024, 1)


@pytest.mark.parametrize("header", ["PhraseId\tSentenceId\tPhrase\tSentiment", "PhraseId\tSentenceId\tPhrase\t"])
def test_a_kaggle_header_with_other_columns_is_refused_rather_than_scored_as_text(tmp_path, header):
    path = write(tmp_path / "train.tsv", f"{header}\n1\t1\tgood\t3\n")
    with pytest.raises(util.DataError, match=r"line 1: the header has 4 columns .*tail -n \+2"):
        inputs.is_kaggle_test(path)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_broken_gzip_file_is_a_data_error_naming_it(tmp_path, damage):
    packed = gzip.compress(("a fine line\n" * 20_000).encode())
    packed = packed[: len(packed) // 2] if damage == "truncated" else packed[:20] + b"\x00" * 50 + packed[70:]
    path = tmp_path / "in.txt.gz"
    path.write_bytes(packed)
    with pytest.raises(util.DataError, match=f"^{path}: not a readable gzip file"):
        list(inputs.read_blocks([path], kaggle=False, block_size=1024))


def test_a_line_too_long_to_be_a_review_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_LINE", 4096)
    path = write(tmp_path / "in.txt", "a short line\n" * 500 + "x" * 10_000 + "\nshort again\n")
    with pytest.raises(util.DataError, match=f"^{path}: line 501: longer than 4,096 bytes; give a text file"):
        list(inputs.read_blocks([path], kaggle=False, block_size=1024))
