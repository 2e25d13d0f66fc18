"""predict.py: Kaggle submissions from test.tsv, per-line scores (and --explain) for plain text, clear errors."""
import csv
import gzip
import io
import random
import re
import subprocess
import sys

import pytest

import predict
import util
from model import FAST_PATH_MAX_BATCH, SentimentModel
from support import FILLER, ROOT, WORDS


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


def explained_rows(path, model_dir, capsys, *args):
    """Score `path` with the binary model and `args`; return its CSV rows as dicts keyed by the header."""
    assert predict.main([str(path), "--model", "binary", "--model-dir", str(model_dir), *args]) == 0
    header, *body = rows(capsys.readouterr().out)
    return header, [dict(zip(header, row)) for row in body]


def parse_explanation(cell):
    """`term:contribution;...` as a list of (term, contribution)."""
    return [(term, float(number)) for term, number in (part.rsplit(":", 1) for part in cell.split(";"))] if cell else []


def test_explain_adds_each_lines_strongest_terms_as_the_model_explains_them(model_dir, tmp_path, capsys):
    texts = ["the movie is dull and tedious, a tedious film", "a brilliant, dazzling masterpiece of a story",
             "zzzqx qqqv", "awful"]
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(texts) + "\n")
    header, table = explained_rows(path, model_dir, capsys, "--explain", "3")
    assert header == ["line", "prediction", "confidence", *util.BINARY_LABELS, "explanation"]
    scorer = SentimentModel.load(model_dir / "binary")
    for text, row in zip(texts, table):
        expected = scorer.predict([text], explain=True)[0]["explanation"]["terms"][:3]
        assert parse_explanation(row["explanation"]) == [(t["term"], round(t["contribution"], 3)) for t in expected]
        assert all(re.fullmatch(r"\w[\w ]*:-?\d+\.\d{3}", part) for part in row["explanation"].split(";") if part)
    first = parse_explanation(table[0]["explanation"])
    assert len(first) == 3 and [abs(c) for _, c in first] == sorted((abs(c) for _, c in first), reverse=True)
    assert table[2]["explanation"] == ""  # no known term, nothing to show
    assert [term for term, _ in parse_explanation(table[3]["explanation"])] == ["awful"]  # fewer terms than K


@pytest.mark.parametrize("k", [1, 2, 50])
def test_explain_k_caps_the_terms_shown_at_k_or_at_what_the_line_holds(model_dir, tmp_path, capsys, k):
    path = tmp_path / "reviews.txt"
    path.write_text("the cast is charming and the story is solid but the plot is flat\n")
    known = SentimentModel.load(model_dir / "binary").predict([path.read_text().strip()], explain=True)[0]
    terms = [t["term"] for t in known["explanation"]["terms"]]
    assert len(terms) > 2
    _, [row] = explained_rows(path, model_dir, capsys, "--explain", str(k))
    assert [term for term, _ in parse_explanation(row["explanation"])] == terms[:k]


def test_explanations_are_right_for_a_batch_scored_through_scikit_learn(model_dir, tmp_path, capsys):
    rng = random.Random(1)
    vocabulary = [word for words in WORDS.values() for word in words] + FILLER + ["zzzqx"]
    texts = [" ".join(rng.choices(vocabulary, k=rng.randint(1, 8))) for _ in range(FAST_PATH_MAX_BATCH + 50)]
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(texts) + "\n")
    _, table = explained_rows(path, model_dir, capsys, "--explain", "2")
    assert len(table) == len(texts)
    scorer = SentimentModel.load(model_dir / "binary")
    for text, row in zip(texts, table):  # one text at a time: the fast path, which the model proves equal
        answer = scorer.predict([text], explain=True)[0]
        assert row["prediction"] == answer["prediction"]
        expected = [(t["term"], round(t["contribution"], 3)) for t in answer["explanation"]["terms"][:2]]
        assert parse_explanation(row["explanation"]) == expected


def test_without_explain_the_output_has_no_explanation_column_and_the_same_scores(model_dir, tmp_path, capsys):
    path = tmp_path / "reviews.txt"
    path.write_text("a brilliant, dazzling masterpiece\n\nawful, dreadful and unwatchable\n")
    assert predict.main([str(path), "--model-dir", str(model_dir)]) == 0
    plain = capsys.readouterr().out
    assert predict.main([str(path), "--model-dir", str(model_dir), "--explain", "2"]) == 0
    explained = rows(capsys.readouterr().out)
    assert rows(plain) == [row[:-1] for row in explained]
    assert "explanation" not in plain.splitlines()[0]


@pytest.mark.parametrize("k", ["0", "-1", "two", "1.5", ""])
def test_explain_needs_a_whole_number_of_terms_of_at_least_one(model_dir, tmp_path, capsys, k):
    path = tmp_path / "reviews.txt"
    path.write_text("a brilliant film\n")
    with pytest.raises(SystemExit) as exit_:
        predict.main([str(path), "--model-dir", str(model_dir), "--explain", k])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and captured.out == ""
    assert "argument --explain: " in captured.err and "e.g. --explain 3" in captured.err


def test_explain_on_a_kaggle_test_file_is_refused_and_writes_nothing(model_dir, tiny_data, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    code, error = run_bad([tiny_data / "test.tsv", "-o", out, "--model-dir", model_dir, "--explain", "3"], capsys)
    assert code == 2 and error.startswith(f"error: {tiny_data / 'test.tsv'} is a Kaggle test file")
    assert "--explain is for plain text" in error
    assert not out.exists()
