"""batch.py: blocks of whole lines, one block's rows exactly as the model answers, outputs whole or absent."""
import csv
import gzip
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kinds
import util
from batch import blocks as batch

TEXT = batch.Job(kaggle=False)
KAGGLE = batch.Job(kaggle=True)


def block(data, *, first_line=1, path="in.txt", number=0):
    """A block of `data` (str or bytes) as read_blocks makes them."""
    data = data.encode() if isinstance(data, str) else data
    return batch.Block(path, first_line, data, number, len(data))


def write(path, text, *, packed=False):
    """Write `text` to `path`, gzip-compressed if `packed`; return the path."""
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    return path


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("size", [1024, 4096, batch.BLOCK_SIZE])
def test_blocks_hold_whole_lines_and_know_where_they_start(tmp_path, packed, size):
    lines = [f"line {n} " + "word " * (n % 37) for n in range(1, 3001)]
    path = write(tmp_path / ("in.txt.gz" if packed else "in.txt"), "\n".join(lines))  # no newline at the end
    blocks = list(batch.read_blocks([path], kaggle=False, block_size=size))
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
    for cell in batch.plan_cells(paths, kaggle=kaggle, block_size=block_size):
        first_line = next_line.get(cell.file, 1)
        blocks += batch.read_cell_blocks(cell, block_size, first_line)
        if cell.offset is not None:
            next_line[cell.file] = first_line + batch.count_cell_lines(cell, block_size)
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
        where(batch.read_blocks([first, second], kaggle=False, block_size=size))


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_kaggle_file_read_by_cells_skips_its_header_once(tmp_path, packed):
    rows = [f"{n}\t{n // 3}\tphrase {n}" + " word" * (n % 13) for n in range(1, 400)]
    path = write(tmp_path / "test.tsv", "\n".join(["PhraseId\tSentenceId\tPhrase", *rows]) + "\n", packed=packed)
    cells = batch.plan_cells([path], kaggle=True, block_size=1024)
    assert (len(cells) == 1 and cells[0].offset is None) if packed else len(cells) > 10
    assert where(cell_blocks([path], kaggle=True, block_size=1024)) == \
        where(batch.read_blocks([path], kaggle=True, block_size=1024))


def test_a_gzip_file_is_one_cell_read_whole_as_the_local_reader_cuts_it(tmp_path):
    path = write(tmp_path / "in.txt.gz", "".join(f"line {n}\n" for n in range(3000)), packed=True)
    [cell] = batch.plan_cells([path], kaggle=False, block_size=1024)
    assert cell.offset is None and cell.location == str(path.resolve())
    blocks = batch.read_cell_blocks(cell, 1024, 1)
    assert len(blocks) > 10 and where(blocks) == where(batch.read_blocks([path], kaggle=False, block_size=1024))


@pytest.mark.parametrize("change, message", [
    (lambda path: path.write_bytes(path.read_bytes()[:500]),
     r"changed during the run \(5,000 bytes when it started, 500 now\)"),
    (lambda path: path.unlink(), r"cannot be read where the Dask worker runs .*use --read-on client"),
])
def test_a_file_that_shrinks_or_vanishes_after_planning_is_named(tmp_path, change, message):
    path = write(tmp_path / "in.txt", "abcd\n" * 1000)
    cells = batch.plan_cells([path], kaggle=False, block_size=1024)
    change(path)
    with pytest.raises(util.DataError, match=rf"^{path}: {message}"):
        batch.read_cell_blocks(cells[-1], 1024, 1)


def test_a_kaggle_files_header_is_skipped_and_its_rows_keep_their_file_line_numbers(tmp_path):
    rows = [f"{n}\t{n // 3}\tphrase {n}" for n in range(1, 400)]
    path = write(tmp_path / "test.tsv", "\n".join(["PhraseId\tSentenceId\tPhrase", *rows]) + "\n")
    assert batch.is_kaggle_test(path)
    blocks = list(batch.read_blocks([path], kaggle=True, block_size=1024))
    assert blocks[0].first_line == 2 and len(blocks) > 3
    parsed = [batch.parse_block(KAGGLE, b) for b in blocks]
    assert [k for keys, _ in parsed for k in keys] == [str(n) for n in range(1, 400)]
    assert [t for _, texts in parsed for t in texts] == [f"phrase {n}" for n in range(1, 400)]


def test_plain_text_keys_are_line_numbers_of_non_blank_lines_with_crlf_stripped():
    keys, texts = batch.parse_block(TEXT, block("first\r\n\r\n   \n\tsecond \nthird", first_line=41))
    assert keys == [41, 44, 45] and texts == ["first", "\tsecond ", "third"]


@pytest.mark.parametrize("line, problem", [
    ("7\t1", "2 tab-separated fields; a Kaggle test row has 3"),
    ("7\t1\tgood\textra", "4 tab-separated fields"),
    ("x7\t1\tgood", "PhraseId 'x7' is not a whole number"),
    ("-7\t1\tgood", "PhraseId '-7' is not a whole number"),
    ("\u0667\t1\tgood", "PhraseId '\u0667' is not a whole number"),  # a digit, but not one Kaggle writes
    ("\t1\tgood", "PhraseId '' is not a whole number"),
])
def test_a_broken_kaggle_row_names_its_file_and_line(line, problem):
    data = "1\t1\tfine\n2\t1\talso fine\n" + line + "\n"
    with pytest.raises(util.DataError) as refused:
        batch.parse_block(KAGGLE, block(data, first_line=120, path="test.tsv"))
    assert str(refused.value).startswith("test.tsv: line 122: ") and problem in str(refused.value)


def test_bytes_that_are_not_utf8_name_their_line():
    with pytest.raises(util.DataError, match=r"^in.txt: line 12: not UTF-8 text\.$"):
        batch.parse_block(TEXT, block(b"fine\nfine\n\nbad \xff\n", first_line=9))


@pytest.mark.parametrize("header", ["PhraseId\tSentenceId\tPhrase\tSentiment", "PhraseId\tSentenceId\tPhrase\t"])
def test_a_kaggle_header_with_other_columns_is_refused_rather_than_scored_as_text(tmp_path, header):
    path = write(tmp_path / "train.tsv", f"{header}\n1\t1\tgood\t3\n")
    with pytest.raises(util.DataError, match=r"line 1: the header has 4 columns .*tail -n \+2"):
        batch.is_kaggle_test(path)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_broken_gzip_file_is_a_data_error_naming_it(tmp_path, damage):
    packed = gzip.compress(("a fine line\n" * 20_000).encode())
    packed = packed[: len(packed) // 2] if damage == "truncated" else packed[:20] + b"\x00" * 50 + packed[70:]
    path = tmp_path / "in.txt.gz"
    path.write_bytes(packed)
    with pytest.raises(util.DataError, match=f"^{path}: not a readable gzip file"):
        list(batch.read_blocks([path], kaggle=False, block_size=1024))


def test_a_line_too_long_to_be_a_review_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "MAX_LINE", 4096)
    path = write(tmp_path / "in.txt", "a short line\n" * 500 + "x" * 10_000 + "\nshort again\n")
    with pytest.raises(util.DataError, match=f"^{path}: line 501: longer than 4,096 bytes; give a text file"):
        list(batch.read_blocks([path], kaggle=False, block_size=1024))


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50))
def test_thousandths_round_exactly_as_python_rounds(values):
    values = np.array(values)
    assert batch.thousandths(values).tolist() == [round(round(v, 3) * 1000) for v in values.tolist()]


def test_thousandths_agree_with_python_at_every_half_and_its_neighbours():
    halves = np.array([(k + 0.5) / 1000 for k in range(1000)])
    values = np.concatenate([halves, np.nextafter(halves, 0), np.nextafter(halves, 1), [0.0, 1.0]])
    assert batch.thousandths(values).tolist() == [round(round(v, 3) * 1000) for v in values.tolist()]


@pytest.mark.parametrize("name", ["binary", "fine-grained"])
@pytest.mark.parametrize("file_column", [False, True])
def test_a_blocks_rows_are_the_models_answers_written_with_csv(model_dir, name, file_column):
    scorer = kinds.load(model_dir / name)
    texts = ["a brilliant, dazzling masterpiece", "awful, dreadful and unwatchable", "zzzqx", "the film is a film"]
    job = batch.Job(kaggle=False, file_column=file_column)
    count, data = batch.score_block(scorer, job, block("\n".join(texts) + "\n", path='my, "odd" file.txt'))
    buffer = io.StringIO()
    for number, answer in enumerate(scorer.predict(texts * 40)[: len(texts)], start=1):  # the vectorised path
        csv.writer(buffer, lineterminator="\n").writerow(
            [*(['my, "odd" file.txt'] if file_column else []), number, answer["prediction"], answer["confidence"],
             *answer["probabilities"].values()])
    assert count == len(texts) and data.decode() == buffer.getvalue()


def test_where_blocks_end_does_not_change_a_byte(model_dir, tmp_path):
    scorer = kinds.load(model_dir / "fine-grained")
    words = ["good", "bad", "dull", "brilliant", "awful", "charming", "film", "plot", "zzzqx"]
    lines = [" ".join(words[(n * k) % len(words)] for k in range(1, n % 7 + 2)) for n in range(5000)]
    path = write(tmp_path / "in.txt", "\n".join(lines) + "\n")

    def scored(size):
        return b"".join(batch.score_block(scorer, TEXT, b)[1]
                        for b in batch.read_blocks([path], kaggle=False, block_size=size))

    assert scored(1024) == scored(7777) == scored(batch.BLOCK_SIZE)


def test_a_file_output_is_renamed_into_place_only_when_whole(tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("the previous run\n")
    with pytest.raises(RuntimeError), batch.FileOutput(out, b"header\n") as output:
        output.write(block("x"), b"row 1\n")
        assert out.read_text() == "the previous run\n"
        raise RuntimeError("the run fails half way")
    assert out.read_text() == "the previous run\n" and sorted(tmp_path.iterdir()) == [out]
    with batch.FileOutput(out, b"header\n") as output:
        output.write(block("x"), b"row 1\n")
    assert out.read_text() == "header\nrow 1\n"


def test_a_folder_output_appears_whole_with_success_or_not_at_all(tmp_path):
    out = tmp_path / "scores"
    with pytest.raises(RuntimeError), batch.FolderOutput(out, b"h\n") as output:
        output.write(block("x", number=0), b"a\n")
        raise RuntimeError("the run fails half way")
    assert list(tmp_path.iterdir()) == []
    out.mkdir()  # an empty folder is fine to fill
    with batch.FolderOutput(out, b"h\n") as output:
        output.write(block("x", number=0), b"a\n")
        output.write(block("x", number=1), b"b\n")
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-00000.csv", "part-00001.csv"]
    assert (out / "part-00001.csv").read_text() == "h\nb\n"
    with pytest.raises(util.DataError, match="already exists; remove it or choose another --output-dir"):
        batch.FolderOutput(out, b"h\n")
