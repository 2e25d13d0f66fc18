"""predict.py: Kaggle submissions from test.tsv, per-line scores (and --explain) for plain text, clear errors;
several inputs, bad lines, output folders, progress, flat memory. The Dask engine: test_cluster.py and
e2e/test_dask_engine.py."""
import csv
import fcntl
import gzip
import io
import os
import pty
import random
import re
import select
import signal
import struct
import subprocess
import sys
import termios

import pytest

import kinds
import predict
import util
from batch import inputs
from kinds.text import FAST_PATH_MAX_BATCH
from support import FILLER, ROOT, WORDS, run_predict, wait_for


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
    expected = kinds.load(model_dir / "fine-grained").predict_proba(list(test["Phrase"])).argmax(axis=1)
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


def test_a_file_that_is_not_utf8_text_is_a_clear_error_naming_the_line(model_dir, tmp_path, capsys):
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"\xff\xfe\x00 not text \x9c\n")
    code, error = run_bad([path, "--model-dir", model_dir], capsys)
    assert code == 2 and error == f"error: {path}: line 1: not UTF-8 text."


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
    scorer = kinds.load(model_dir / "binary")
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
    known = kinds.load(model_dir / "binary").predict([path.read_text().strip()], explain=True)[0]
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
    scorer = kinds.load(model_dir / "binary")
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


# --- Corpora: several files, blocks, bad lines, outputs, progress and memory ------------------------

def corpus(folder, name, lines, *, packed=False):
    """Write a plain-text corpus of `lines` (gzip if `packed`); return its path."""
    path = folder / name
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if packed else text.encode())
    return path


def review_lines(count, seed=0):
    """`count` short reviews from the test vocabulary, a blank line now and then."""
    rng = random.Random(seed)
    vocabulary = [word for words in WORDS.values() for word in words] + FILLER
    return ["" if n % 17 == 0 else " ".join(rng.choices(vocabulary, k=rng.randint(1, 9))) for n in range(count)]


def score(capsys, *args):
    """Run predict.main; return (exit code, stdout, stderr)."""
    code = predict.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_several_files_and_globs_are_scored_in_order_with_a_file_column(model_dir, tmp_path, capsys):
    first = corpus(tmp_path, "a.txt", review_lines(300, seed=1))
    second = corpus(tmp_path, "b.txt.gz", review_lines(200, seed=2), packed=True)
    code, out, _ = score(capsys, first, second, "--model-dir", model_dir, "--block-size", "1KiB")
    assert code == 0
    table = rows(out)
    assert table[0] == ["file", "line", "prediction", "confidence", *util.FINE_GRAINED_LABELS]
    expected = [[str(path), str(n)] for path, lines in ((first, review_lines(300, seed=1)),
                                                       (second, review_lines(200, seed=2)))
                for n, line in enumerate(lines, start=1) if line]
    assert [row[:2] for row in table[1:]] == expected
    single = [rows(score(capsys, path, "--model-dir", model_dir)[1]) for path in (first, second)]
    assert [row[1:] for row in table[1:]] == single[0][1:] + single[1][1:]  # the same scores as one at a time
    code, globbed, _ = score(capsys, tmp_path / "*.txt*", "--model-dir", model_dir)  # quoted: predict.py expands it
    assert code == 0 and globbed == out


def test_several_kaggle_files_make_one_submission(model_dir, tiny_data, tmp_path, capsys):
    test = (tiny_data / "test.tsv").read_text().splitlines()
    (tmp_path / "one.tsv").write_text("\n".join(test[:8]) + "\n")
    (tmp_path / "two.tsv.gz").write_bytes(gzip.compress(("\n".join([test[0], *test[8:]]) + "\n").encode()))
    code, split, _ = score(capsys, tmp_path / "one.tsv", tmp_path / "two.tsv.gz", "--model-dir", model_dir)
    assert code == 0
    assert split == score(capsys, tiny_data / "test.tsv", "--model-dir", model_dir)[1]


@pytest.mark.parametrize("case", ["folder", "empty glob", "kaggle and text"])
def test_inputs_that_are_not_files_of_one_kind_are_refused(model_dir, tiny_data, tmp_path, capsys, case):
    text = corpus(tmp_path, "reviews.txt", ["a fine film"])
    args, expected = {
        "folder": ([tmp_path], f"error: {tmp_path}: is a folder; give its files, e.g. '{tmp_path / '*.txt'}'."),
        "empty glob": ([tmp_path / "*.tsv"], f"error: {tmp_path / '*.tsv'}: matches no file."),
        "kaggle and text": ([tiny_data / "test.tsv", text],
                            f"error: {tiny_data / 'test.tsv'} is a Kaggle test file but {text} is plain text; "
                            "score them in separate runs."),
    }[case]
    code, error = run_bad([*args, "--model-dir", model_dir, "-o", tmp_path / "out.csv"], capsys)
    assert code == 2 and error == expected
    assert not (tmp_path / "out.csv").exists()


def test_a_kaggle_test_file_with_no_rows_is_refused_and_writes_nothing(model_dir, tmp_path, capsys):
    path = tmp_path / "test.tsv"
    path.write_text("PhraseId\tSentenceId\tPhrase\n\n")
    code, error = run_bad([path, "-o", tmp_path / "submission.csv", "--model-dir", model_dir], capsys)
    assert code == 2 and error == f"error: {path}: a header but no rows; nothing to submit."
    assert sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("output", ["file", "folder"])
@pytest.mark.parametrize("kind", ["kaggle", "text"])
def test_a_bad_line_deep_in_the_input_stops_the_run_naming_it_and_leaves_no_output(
        model_dir, tmp_path, capsys, output, kind):
    if kind == "kaggle":
        lines = ["PhraseId\tSentenceId\tPhrase", *(f"{n}\t1\t{text}" for n, text in enumerate(review_lines(3000), 1))]
        lines[2500] = "2500\t1\ta phrase\twith a tab"
        problem = "4 tab-separated fields"
    else:
        lines = review_lines(3000)
        problem = "not UTF-8 text"
    path = corpus(tmp_path, "in.tsv.gz", lines, packed=True)
    if kind == "text":  # one bad byte on line 2501
        text = gzip.decompress(path.read_bytes()).split(b"\n")
        text[2500] = b"caf\xe9 au lait"
        path.write_bytes(gzip.compress(b"\n".join(text)))
    out = tmp_path / "out"
    where = ["-o", out] if output == "file" else ["--output-dir", out]
    code, error = run_bad([path, *where, "--model-dir", model_dir, "--model", "binary", "--block-size", "1KiB"], capsys)
    assert code == 2 and error.startswith(f"error: {path}: line 2501: ") and problem in error
    assert sorted(tmp_path.iterdir()) == [path]  # nothing written, not even a temporary file


def test_an_output_folder_holds_one_file_per_block_which_together_are_the_single_file(model_dir, tmp_path, capsys):
    path = corpus(tmp_path, "reviews.txt", review_lines(2000))
    code, single, _ = score(capsys, path, "--model-dir", model_dir, "--block-size", "4KiB")
    assert code == 0
    out = tmp_path / "scores"
    code, nothing, said = score(capsys, path, "--model-dir", model_dir, "--block-size", "4KiB", "--output-dir", out)
    assert code == 0 and nothing == "" and said.strip().endswith(f"-> {out}")
    parts = sorted(out.glob("part-*.csv"))
    assert len(parts) > 5 and (out / "_SUCCESS").exists()
    header, *_ = single.splitlines(keepends=True)
    assert all(part.read_text().startswith(header) for part in parts)
    assert header + "".join(part.read_text()[len(header):] for part in parts) == single
    code, error = run_bad([path, "--model-dir", model_dir, "--output-dir", out], capsys)
    assert code == 2 and error == f"error: {out}: already exists; remove it or choose another --output-dir."


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler, --workers and --read-on are for --engine dask"),
    (["--workers", "2"], "--scheduler, --workers and --read-on are for --engine dask"),
    (["--engine", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers starts a local cluster"),
    (["--engine", "dask", "--workers", "0"], "argument --workers: 0 workers: give at least 1, e.g. --workers 2"),
    (["--engine", "dask", "--workers", "two"], "'two' is not a whole number; give how many worker processes, e.g. "
                                              "--workers 2"),
    (["--block-size", "lots"], "'lots' is not a size; give e.g. 4MiB"),
    (["--block-size", "100"], "'100' is less than 1 KiB"),
    (["--quiet", "--progress"], "not allowed with argument"),
    (["-o", "x.csv", "--output-dir", "x"], "not allowed with argument"),
])
def test_options_that_do_not_fit_together_are_usage_errors(model_dir, tmp_path, capsys, args, message):
    path = corpus(tmp_path, "reviews.txt", ["a fine film"])
    with pytest.raises(SystemExit) as exit_:
        predict.main([str(path), "--model-dir", str(model_dir), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_progress_shows_on_request_and_quiet_prints_nothing_but_errors(model_dir, tmp_path):
    path = corpus(tmp_path, "reviews.txt", review_lines(3000))
    common = [path, "--model-dir", model_dir, "-o", tmp_path / "out.csv", "--block-size", "8KiB"]
    plain, shown, quiet = run_predict(*common), run_predict(*common, "--progress"), run_predict(*common, "--quiet")
    assert plain.returncode == shown.returncode == quiet.returncode == 0
    lines = f"{sum(map(bool, review_lines(3000))):,} lines"
    assert plain.stderr == f"scored {lines} with the fine-grained model -> {tmp_path / 'out.csv'}\n"
    assert "scoring: 100%" in shown.stderr and lines in shown.stderr and shown.stderr.endswith(plain.stderr)
    assert quiet.stderr == "" and quiet.stdout == ""
    failed = run_predict(tmp_path / "nope.txt", "--quiet", "--model-dir", model_dir)
    assert failed.returncode == 2 and failed.stderr == f"error: {tmp_path / 'nope.txt'}: no such file.\n"


def test_a_terminal_gets_a_progress_bar_without_asking(model_dir, tmp_path):
    path = corpus(tmp_path, "reviews.txt", review_lines(500))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal 80 columns wide
    with open(follower, "wb", closefd=True) as terminal:
        process = subprocess.run([sys.executable, "predict.py", str(path), "--model-dir", str(model_dir),
                                  "-o", str(tmp_path / "out.csv")], cwd=ROOT, stderr=terminal, timeout=300)
    seen = b""
    while select.select([leader], [], [], 0.5)[0]:
        try:
            seen += os.read(leader, 65536)
        except OSError:  # EIO: everything written has been read and the other end is closed
            break
    os.close(leader)
    scored = f"scored {sum(map(bool, review_lines(500)))} lines".encode()
    assert process.returncode == 0 and b"scoring: 100%" in seen and scored in seen


def peak_memory_kib(*args):
    """Peak resident memory of a predict.py run in its own process, in KiB: Linux's VmHWM, which starts afresh
    at exec (ru_maxrss would carry over this test process's own peak from before the fork)."""
    measure = ("import re, sys, predict; code = predict.main(sys.argv[1:]); "
               "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)); sys.exit(code)")
    process = subprocess.run([sys.executable, "-c", measure, *map(str, args)], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
    assert process.returncode == 0, process.stderr
    return int(process.stdout)


def test_peak_memory_does_not_grow_with_the_input(model_dir, tmp_path):
    small = corpus(tmp_path, "small.txt", review_lines(150_000))
    large = tmp_path / "large.txt"
    large.write_bytes(small.read_bytes() * 10)  # 1,500,000 lines, ~50 MB
    common = ["--model-dir", model_dir, "--model", "binary", "--quiet"]
    small_peak = peak_memory_kib(small, "-o", tmp_path / "small.csv", *common)
    large_peak = peak_memory_kib(large, "-o", tmp_path / "large.csv", *common)
    assert large.stat().st_size > 10 * inputs.BLOCK_SIZE
    assert large_peak <= 1.25 * small_peak, (small_peak, large_peak)
    rows_out = [(tmp_path / name).read_bytes().count(b"\n") - 1 for name in ("small.csv", "large.csv")]
    assert rows_out[1] == 10 * rows_out[0]


def test_standard_output_read_in_part_ends_the_run_quietly(model_dir, tmp_path):
    path = corpus(tmp_path, "reviews.txt", review_lines(100_000))
    done = subprocess.run(f"{sys.executable} predict.py {path} --model-dir {model_dir} --block-size 16KiB | head -3",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[0].startswith("line,prediction") and len(done.stdout.splitlines()) == 3
    assert done.stderr == ""


def test_a_run_stopped_by_sigterm_leaves_no_output(model_dir, tmp_path):
    path = corpus(tmp_path, "reviews.txt", review_lines(200_000))
    out = tmp_path / "out.csv"
    process = subprocess.Popen([sys.executable, "predict.py", str(path), "--model-dir", str(model_dir), "-o", str(out),
                                "--block-size", "16KiB"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: list(tmp_path.glob(".out.csv.*")), timeout=60)  # scoring has started
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130 and error == "error: interrupted; nothing was written.\n"
    assert sorted(tmp_path.iterdir()) == [path]


# --- Films, for the ratings model ------------------------------------------------------------------

def test_films_as_json_lines_get_the_apis_rating_and_unseen_inputs(model_dir, tmp_path, capsys):
    import json

    from app import create_app

    # The last film's budget is text, as a URL would send it: the API takes it, so predict.py does too.
    films = [{"genre": "Drama", "budget": 2e7, "director": "Director 3"}, {"genre": "Horror", "budget": 1000000},
             {"genre": "Documentary", "budget": 5e5, "director": "A Newcomer", "release_year": 2009},
             {"genre": "Drama", "budget": "3e6", "running_time": 95}]
    source = tmp_path / "films.jsonl"
    source.write_text(json.dumps(films[0]) + "\n\n" + "\n".join(json.dumps(f) for f in films[1:]) + "\n")
    out = tmp_path / "ratings.csv"
    assert predict.main([str(source), "--model", "ratings", "--model-dir", str(model_dir), "-o", str(out)]) == 0
    assert "scored 4 films with the ratings model" in capsys.readouterr().err
    rows = list(csv.reader(out.open()))
    client = create_app({"MODEL_DIR": str(model_dir), "PREDICTION_LOG": "off"}).test_client()
    answers = client.post("/ratings", json={"instances": films}).get_json()["predictions"]
    assert rows[0] == ["line", "prediction", "unseen"]
    assert rows[1:] == [[str(line), repr(a["prediction"]), ";".join(a["unseen"])]
                        for line, a in zip([1, 3, 4, 5], answers)]


@pytest.mark.parametrize("line, message", [
    ('{"genre": "Drama"', "line 2: not JSON"),
    ('["Drama", 5]', "line 2: a JSON list, not an object"),
    ('{"genre": "Drama", "budget": -1}', "line 2: budget must be a finite positive number"),
    ('{"genre": "Noir", "budget": 5e6}', "line 2: genre 'Noir' is not one the model knows"),
    ('{"genre": "Drama", "budget": 1' + "0" * 400 + "}", "line 2: budget must be a finite positive number"),
    ('{"genre": "Drama", "budget": 5e6, "director": "x\\ud800"}', "line 2: the film holds a lone surrogate"),
    # Two objects on one line, the next line's object cut in two: each line must hold exactly one film.
    ('{"genre": "Drama", "budget": 5e6},{"genre": "Comedy", "budget": 6e6}\n{"genre": "Horror", "budget": 7e6,\n'
     '"director": "x"}', "line 2: not JSON"),
])
def test_a_bad_film_stops_the_run_naming_its_line(model_dir, tmp_path, capsys, line, message):
    source = tmp_path / "films.jsonl"
    source.write_text('{"genre": "Drama", "budget": 5e6}\n' + line + "\n")
    out = tmp_path / "ratings.csv"
    assert predict.main([str(source), "--model", "ratings", "--model-dir", str(model_dir), "-o", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_explanations_are_refused_for_the_ratings_model(model_dir, tmp_path, capsys):
    source = tmp_path / "films.jsonl"
    source.write_text('{"genre": "Drama", "budget": 5e6}\n')
    assert predict.main([str(source), "--model", "ratings", "--model-dir", str(model_dir), "--explain", "3"]) == 2
    assert "the ratings model's are numbers" in capsys.readouterr().err
