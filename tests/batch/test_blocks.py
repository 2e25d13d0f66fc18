"""batch/blocks.py: one block's rows exactly as the model answers, outputs whole or absent."""
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
from batch import inputs

TEXT = batch.Job(kaggle=False)
KAGGLE = batch.Job(kaggle=True)


def block(data, *, first_line=1, path="in.txt", number=0):
    """A block of `data` (str or bytes) as read_blocks makes them."""
    data = data.encode() if isinstance(data, str) else data
    return inputs.Block(path, first_line, data, number, len(data))


def write(path, text, *, packed=False):
    """Write `text` to `path`, gzip-compressed if `packed`; return the path."""
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    return path


def test_a_kaggle_files_header_is_skipped_and_its_rows_keep_their_file_line_numbers(tmp_path):
    rows = [f"{n}\t{n // 3}\tphrase {n}" for n in range(1, 400)]
    path = write(tmp_path / "test.tsv", "\n".join(["PhraseId\tSentenceId\tPhrase", *rows]) + "\n")
    assert inputs.is_kaggle_test(path)
    blocks = list(inputs.read_blocks([path], kaggle=True, block_size=1024))
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
                        for b in inputs.read_blocks([path], kaggle=False, block_size=size))

    assert scored(1024) == scored(7777) == scored(inputs.BLOCK_SIZE)


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
