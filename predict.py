"""Score a file offline with a built model.

    python predict.py test.tsv -o submission.csv             # Kaggle test.tsv (plain or .gz)
    python predict.py reviews.txt -o scores.csv --model binary
    python predict.py reviews.txt --explain 3                # and each line's three strongest terms

A Kaggle test file (header `PhraseId<TAB>SentenceId<TAB>Phrase`) becomes Kaggle's submission format,
`PhraseId,Sentiment`, one row per phrase in the file's order (the order of sampleSubmission.csv).
Any other file is read as plain text, one text per line; each non-blank line gets a row with its
line number, the predicted label, the confidence and every label's probability; with `--explain K`,
a last column `explanation` holds the K terms that moved the answer most, strongest first, as
`term:contribution;...`: each term's share of the log-odds of the prediction against the runner-up
label (positive pushes toward the prediction). Explanations are only for plain text: Kaggle's
submission format has no room for them, so `--explain` with a test.tsv is refused.
"""
import argparse
import csv
import gzip
import io
import os
import sys
from pathlib import Path

import config
import model
import util


def open_text(path):
    """Open a plain or gzip-compressed text file for reading."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if compressed else open(path, encoding="utf-8")


def is_kaggle_test(path):
    """True when the file starts with Kaggle's test.tsv header."""
    with open_text(path) as handle:
        return handle.readline().rstrip("\r\n").split("\t")[:3] == util.TEST_COLUMNS


def write_submission(scorer, path, out):
    """Write Kaggle's submission (PhraseId,Sentiment) for a test.tsv; return the row count."""
    frame = util.read_kaggle_test(path)
    if scorer.labels != util.FINE_GRAINED_LABELS:
        raise SystemExit("error: a Kaggle submission needs the fine-grained model (labels 0-4); "
                         "build it with `python build_model.py --data PATH/train.tsv`.")
    labels = scorer.predict_proba(list(frame["Phrase"])).argmax(axis=1)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["PhraseId", "Sentiment"])
    writer.writerows(zip(frame["PhraseId"], labels.tolist()))
    return len(frame)


def write_line_scores(scorer, path, out, *, explain=None):
    """Write label and probabilities for each non-blank line of a text file, and with `explain` (a count
    of terms) each line's strongest terms; return the row count."""
    with open_text(path) as handle:
        lines = [(number, line.rstrip("\r\n")) for number, line in enumerate(handle, start=1)]
    lines = [(number, text) for number, text in lines if text.strip()]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "prediction", "confidence", *scorer.labels, *(["explanation"] if explain else [])])
    if lines:
        texts = [text for _, text in lines]
        answers = scorer.predict(texts, explain=True) if explain else scorer.predict(texts)
        for (number, _), answer in zip(lines, answers):
            writer.writerow([number, answer["prediction"], answer["confidence"], *answer["probabilities"].values(),
                             *([strongest_terms(answer["explanation"], explain)] if explain else [])])
    return len(lines)


def strongest_terms(explanation, k):
    """The first `k` terms of a model's explanation as `term:contribution;...`, contributions to 3 decimals.

    The model's terms are words of two or more word characters (or n-grams of them), so neither
    separator can occur inside one.
    """
    # + 0.0 turns a -0.0 left by rounding a tiny negative into 0.0, so no term reads "-0.000".
    return ";".join(f"{term['term']}:{round(term['contribution'], 3) + 0.0:.3f}"
                    for term in explanation["terms"][:k])


def positive_int(value):
    """argparse type for --explain: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number; give how many terms to show, "
                                         "e.g. --explain 3") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} terms: give at least 1, e.g. --explain 3")
    return number


def main(argv=None):
    """Score the file; exit non-zero with a clear message when the input or the model is unusable."""
    parser = argparse.ArgumentParser(description="Score a Kaggle test.tsv or a text file, one text per line.")
    parser.add_argument("input", type=Path, help="Kaggle test.tsv(.gz), or a text file with one text per line")
    parser.add_argument("-o", "--output", default="-", help="where to write the CSV (default: standard output)")
    parser.add_argument("--model", default="fine-grained", choices=list(config.MODEL_ROUTES),
                        help="which model scores plain text (a Kaggle submission always uses fine-grained)")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR") or config.DEFAULT_MODEL_DIR),
                        help="where the models are (default $MODEL_DIR or lib/models)")
    parser.add_argument("--explain", type=positive_int, metavar="K",
                        help="plain text only: add a column with each line's K strongest terms and their "
                             "contributions to the log-odds of the prediction")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        print(f"error: {args.input}: no such file.", file=sys.stderr)
        return 2
    try:
        kaggle = is_kaggle_test(args.input)
        if kaggle and args.explain:  # refused rather than ignored: the user asked for something the file can't hold
            print(f"error: {args.input} is a Kaggle test file, and its submission has no room for explanations; "
                  "--explain is for plain text, one text per line "
                  "(e.g. `tail -n +2 test.tsv | cut -f3 > phrases.txt`).",
                  file=sys.stderr)
            return 2
        scorer = model.SentimentModel.load(args.model_dir / ("fine-grained" if kaggle else args.model))
    except model.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"error: {args.input}: not UTF-8 text.", file=sys.stderr)
        return 2
    out = io.StringIO()
    try:
        if kaggle:
            rows = write_submission(scorer, args.input, out)
        else:
            rows = write_line_scores(scorer, args.input, out, explain=args.explain)
    except util.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output == "-":
        sys.stdout.write(out.getvalue())
    else:  # all or nothing: a failed run never leaves half a submission behind
        try:
            util.write_atomic(args.output, out.getvalue().encode("utf-8"))
        except OSError as exc:
            print(f"error: cannot write {args.output}: {exc.strerror or exc}.", file=sys.stderr)
            return 2
    print(f"scored {rows:,} {'phrases' if kaggle else 'lines'} with the {scorer.name} model -> {args.output}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
