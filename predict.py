"""Score a file offline with a built model.

    python predict.py test.tsv -o submission.csv             # Kaggle test.tsv (plain or .gz)
    python predict.py reviews.txt -o scores.csv --model binary

A Kaggle test file (header `PhraseId<TAB>SentenceId<TAB>Phrase`) becomes Kaggle's submission format,
`PhraseId,Sentiment`, one row per phrase in the file's order (the order of sampleSubmission.csv).
Any other file is read as plain text, one text per line; each non-blank line gets a row with its
line number, the predicted label, the confidence and every label's probability.
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


def write_line_scores(scorer, path, out):
    """Write label and probabilities for each non-blank line of a text file; return the row count."""
    with open_text(path) as handle:
        lines = [(number, line.rstrip("\r\n")) for number, line in enumerate(handle, start=1)]
    lines = [(number, text) for number, text in lines if text.strip()]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "prediction", "confidence", *scorer.labels])
    if lines:
        for (number, _), answer in zip(lines, scorer.predict([text for _, text in lines])):
            writer.writerow([number, answer["prediction"], answer["confidence"],
                             *answer["probabilities"].values()])
    return len(lines)


def main(argv=None):
    """Score the file; exit non-zero with a clear message when the input or the model is unusable."""
    parser = argparse.ArgumentParser(description="Score a Kaggle test.tsv or a text file, one text per line.")
    parser.add_argument("input", type=Path, help="Kaggle test.tsv(.gz), or a text file with one text per line")
    parser.add_argument("-o", "--output", default="-", help="where to write the CSV (default: standard output)")
    parser.add_argument("--model", default="fine-grained", choices=list(config.MODEL_ROUTES),
                        help="which model scores plain text (a Kaggle submission always uses fine-grained)")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR") or config.DEFAULT_MODEL_DIR),
                        help="where the models are (default $MODEL_DIR or lib/models)")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        print(f"error: {args.input}: no such file.", file=sys.stderr)
        return 2
    try:
        kaggle = is_kaggle_test(args.input)
        scorer = model.SentimentModel.load(args.model_dir / ("fine-grained" if kaggle else args.model))
    except model.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"error: {args.input}: not UTF-8 text.", file=sys.stderr)
        return 2
    out = io.StringIO()
    try:
        rows = (write_submission if kaggle else write_line_scores)(scorer, args.input, out)
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
