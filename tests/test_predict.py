"""predict.py: Kaggle submissions from test.tsv, per-line scores for plain text, clear errors."""
import csv
import gzip
import io
import subprocess
import sys

import pytest

import predict
import util
from model import SentimentModel
from support import ROOT


def rows(text):
    """CSV text as a list of rows."""
    return list(csv.reader(io.StringIO(text)))


def test_kaggle_test_file_becomes_a_submission_in_sample_submission_order(kaggle_model_dir, kaggle_dir, tmp_path):
    out = tmp_path / "submission.csv"
    process = subprocess.run(
        [sys.executable, "predict.py", str(kaggle_dir / "test.tsv.gz"), "-o", str(out),
         "--model-dir", str(kaggle_model_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    submission, sample = rows(out.read_text()), rows((kaggle_dir / "sampleSubmission.csv").read_text())
    assert submission[0] == sample[0] == ["PhraseId", "Sentiment"]
    assert [row[0] for row in submission] == [row[0] for row in sample]
    assert {row[1] for row in submission[1:]} == {"0", "1", "2", "3", "4"}
    assert f"scored {len(sample) - 1:,} phrases with the fine-grained model" in process.stderr


def test_tiny_kaggle_test_file_is_scored_with_labels_the_model_would_give(model_dir, tiny_data, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert predict.main([str(tiny_data / "test.tsv"), "-o", str(out), "--model-dir", str(model_dir)]) == 0
    submission = rows(out.read_text())
    test = util.read_kaggle_test(tiny_data / "test.tsv")
    assert [row[0] for row in submission[1:]] == test["PhraseId"].tolist()
    expected = SentimentModel.load(model_dir / "fine-grained").predict_proba(list(test["Phrase"])).argmax(axis=1)
    assert [int(row[1]) for row in submission[1:]] == expected.tolist()


@pytest.mark.parametrize("name, labels", [("fine-grained", util.FINE_GRAINED_LABELS),
                                          ("binary", util.BINARY_LABELS)])
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_plain_text_gets_label_and_probabilities_per_non_blank_line(model_dir, tmp_path, capsys, name, labels, packed):
    text = "a brilliant, dazzling masterpiece\n\n   \nawful, dreadful and unwatchable\n"
    path = tmp_path / ("reviews.txt.gz" if packed else "reviews.txt")
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    assert predict.main([str(path), "--model", name, "--model-dir", str(model_dir)]) == 0
    table = rows(capsys.readouterr().out)
    assert table[0] == ["line", "prediction", "confidence", *labels]
    assert [row[0] for row in table[1:]] == ["1", "4"]
    assert [row[1] for row in table[1:]] == ["Positive", "Negative"]
    for row in table[1:]:
        probabilities = [float(p) for p in row[3:]]
        assert abs(sum(probabilities) - 1) <= 0.01
        assert float(row[2]) == max(probabilities)
        assert row[1] == labels[probabilities.index(max(probabilities))]


def run_bad(args, capsys):
    """Run predict.py's main on bad input; return (exit code, the one line on stderr)."""
    code = predict.main([str(a) for a in args])
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return code, error


def test_a_missing_input_file_is_a_clear_error(model_dir, tmp_path, capsys):
    code, error = run_bad([tmp_path / "nope.tsv", "--model-dir", model_dir], capsys)
    assert code != 0 and error == f"error: {tmp_path / 'nope.tsv'}: no such file."


@pytest.mark.parametrize("state", ["no model dir", "empty model dir", "no fine-grained model"])
def test_no_model_to_score_with_is_a_clear_error_naming_it(model_dir, tiny_data, tmp_path, capsys, state):
    models = tmp_path / "models"
    if state != "no model dir":
        models.mkdir()
    if state == "no fine-grained model":
        (models / "binary").symlink_to((model_dir / "binary").resolve())
    out = tmp_path / "submission.csv"
    code, error = run_bad([tiny_data / "test.tsv", "-o", out, "--model-dir", models], capsys)
    assert code != 0 and error.startswith("error: ")
    assert str(models / "fine-grained") in error and "build_model.py" in error
    assert not out.exists()


def test_an_output_that_cannot_be_written_is_a_clear_error(model_dir, tiny_data, tmp_path, capsys):
    out = tmp_path / "no-such-folder" / "submission.csv"
    code, error = run_bad([tiny_data / "test.tsv", "-o", out, "--model-dir", model_dir], capsys)
    assert code != 0 and error.startswith(f"error: cannot write {out}")


def test_a_file_that_is_not_utf8_text_is_a_clear_error(model_dir, tmp_path, capsys):
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"\xff\xfe\x00 not text \x9c\n")
    code, error = run_bad([path, "--model-dir", model_dir], capsys)
    assert code != 0 and error == f"error: {path}: not UTF-8 text."
