"""Reading the training files and writing artifacts: the helpers `build_model.py`, `model.py` and
`predict.py` share (util.py). Bad files as a user meets them are in training/test_build.py."""
import bz2
import gzip
import hashlib
import os
import shutil

import pytest

import util


def gzipped(path):
    """A .gz copy of `path` next to it."""
    target = path.with_name(path.name + ".gz")
    with open(path, "rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def test_kaggle_train_reads_the_same_plain_and_gzipped(tiny_data, tmp_path):
    plain = shutil.copy(tiny_data / "train.tsv", tmp_path / "train.tsv")
    frame, from_gzip = util.read_kaggle_train(plain), util.read_kaggle_train(gzipped(plain))
    assert list(frame.columns) == util.TRAIN_COLUMNS
    assert frame.equals(from_gzip)
    assert len(frame) == len((tiny_data / "train.tsv").read_text().splitlines()) - 1
    assert set(frame["Sentiment"]) == {0, 1, 2, 3, 4}
    assert frame["SentenceId"].dtype.kind == frame["Sentiment"].dtype.kind == "i"


def test_whitespace_only_phrase_is_kept_as_text_not_nan(tiny_data):
    frame = util.read_kaggle_train(tiny_data / "train.tsv")
    blank = frame[frame["Phrase"].str.strip() == ""]
    assert blank["Phrase"].tolist() == [" "]
    assert all(isinstance(phrase, str) for phrase in frame["Phrase"])


def test_kaggle_test_file_reads_plain_and_gzipped_with_phrase_ids_as_written(tiny_data, tmp_path):
    plain = shutil.copy(tiny_data / "test.tsv", tmp_path / "test.tsv")
    frame = util.read_kaggle_test(plain)
    assert frame.equals(util.read_kaggle_test(gzipped(plain)))
    first = (tiny_data / "test.tsv").read_text().splitlines()[1].split("\t")
    assert frame.iloc[0].tolist() == first


def test_real_kaggle_train_has_156060_rows_and_its_whitespace_phrase(kaggle_dir):
    frame = util.read_kaggle_train(kaggle_dir / "train.tsv.gz")
    assert len(frame) == 156_060
    assert sorted(set(frame["Sentiment"])) == [0, 1, 2, 3, 4]
    assert (frame["Phrase"].str.strip() == "").sum() == 1


def test_rotten_tomatoes_reader_keeps_fresh_and_rotten_and_drops_plot_rows(tmp_path):
    path = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    path.write_bytes(bz2.compress(
        b'category,text,movie_name,has_plot_and_reviews\n'
        b'fresh,"A joy, start to finish.",Film A,True\n'
        b'plot,A man walks into a bar.,Film A,True\n'
        b'rotten,Dull.,Film B,False\n'))
    frame = util.read_rotten_tomatoes(path)
    assert frame["category"].tolist() == ["fresh", "rotten"]
    assert frame["text"].tolist() == ["A joy, start to finish.", "Dull."]


@pytest.mark.parametrize("content, message", [
    (gzip.compress(b""), "the file is empty"),
    (b"PhraseId,SentenceId,Phrase,Sentiment\n1,1,good,4\n", "missing column(s) PhraseId, SentenceId, Phrase, "),
    (b"PhraseId\tSentenceId\tPhrase\tSentiment\n1\t1\tgood\t2.5\n", "line 2: Sentiment '2.5' is not a whole number"),
    (b"PhraseId\tSentenceId\tPhrase\tSentiment\n1\t1\tgood\t2\n2\tone\tbad\t0\n",
     "line 3: SentenceId 'one' is not a whole number"),
    (b"PhraseId\tSentenceId\tPhrase\tSentiment\n1\t1\tgood\t4\n2\t1\tbad\t7\n3\t1\tugly\t-1\n",
     "line 3: unknown Sentiment label(s) [-1, 7]"),
    (b"PhraseId\tSentenceId\tPhrase\tSentiment\n1\t1\tgood\t2\tspare\n", "cannot be read as a table"),
    (b"PhraseId\tSentenceId\tPhrase\tSentiment\n1\t1\tgood\t99999999999999999999\n", "too large"),
])
def test_bad_rows_raise_a_one_line_data_error_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / ("train.tsv.gz" if content.startswith(b"\x1f\x8b") else "train.tsv")
    path.write_bytes(content)
    with pytest.raises(util.DataError) as error:
        util.read_kaggle_train(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_sha256_file_is_the_hash_of_the_bytes(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)  # over one read block
    assert util.sha256_file(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_write_atomic_replaces_the_file_whole_with_ordinary_permissions(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    util.write_json(path, {"a": 1})
    assert util.read_json(path) == {"a": 1}
    ordinary = tmp_path / "ordinary"
    ordinary.touch()
    assert path.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ordinary", "out.json"]


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        util.write_atomic(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
