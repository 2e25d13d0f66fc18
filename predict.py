"""Score files offline with a built model, in this process or on a Dask cluster.

    python predict.py test.tsv -o submission.csv             # Kaggle test.tsv (plain or .gz)
    python predict.py reviews.txt -o scores.csv --model binary
    python predict.py reviews.txt --explain 3                # and each line's three strongest terms
    python predict.py films.jsonl -o ratings.csv --model ratings   # one film a line: {"genre": ..., "budget": ...}
    python predict.py 'corpus/*.txt.gz' --output-dir scores/ --engine dask --scheduler tcp://10.0.0.5:8786
    python predict.py 's3://reviews/2026/*.txt' --output-dir /shared/scores --engine dask --scheduler tcp://10.0.0.5:8786

A Kaggle test file (header `PhraseId<TAB>SentenceId<TAB>Phrase`) becomes Kaggle's submission format,
`PhraseId,Sentiment`, one row per phrase in the file's order (the order of sampleSubmission.csv).
Any other file is read as plain text, one text per line; each non-blank line gets a row with its
line number, the predicted label, the confidence and every label's probability; with `--explain K`,
a last column `explanation` holds the K terms that moved the answer most, strongest first, as
`term:contribution;...`: each term's share of the log-odds of the prediction against the runner-up
label (positive pushes toward the prediction). Explanations are only for plain text: Kaggle's
submission format has no room for them, so `--explain` with a test.tsv is refused. With `--model ratings`
each line is a film as a JSON object (the instances of `POST /ratings`), and its row holds the line
number, the rating predicted and the inputs the model never saw (`batch/films.py`).

With `--engine dask` the workers read their own byte ranges and write their own parts when they can
open the inputs (URLs, a local cluster, or a scheduler on this machine); `--read-on client` makes this
process read and send each block instead.

This file is the command line; reading, scoring and writing blocks is `batch/blocks.py`, and the Dask engine
is `batch/cluster.py`. More in docs/batch.md.
"""
import argparse
import glob
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

import kinds
import util
from batch import blocks as batch
from batch import inputs
from serving import config
from store import artifacts


def positive_int(unit, asked, example):
    """An argparse type: a whole number of at least 1 `unit`; its errors say what is `asked` and show `example`."""
    def parse(value):
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number; give {asked}, e.g. {example}") from None
        if number < 1:
            raise argparse.ArgumentTypeError(f"{number} {unit}: give at least 1, e.g. {example}")
        return number
    return parse


def block_size(value):
    """argparse type for --block-size: a size such as 4MiB, 512kB or 65536, of at least 1 KiB."""
    from dask.utils import parse_bytes  # only when asked: dask takes a moment to import

    try:
        size = parse_bytes(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size; give e.g. 4MiB or 512kB") from None
    if size < 1024:
        raise argparse.ArgumentTypeError(f"{value!r} is less than 1 KiB; give e.g. 4MiB")
    return size


def parse_args(argv):
    """The command line, checked: `SystemExit(2)` with argparse's message when it does not make sense."""
    parser = argparse.ArgumentParser(
        description="Score Kaggle test files or text files (one text per line), plain or gzip, block by block.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="Kaggle test.tsv(.gz) files, or text files with one text per line; a quoted glob "
                             "such as 'reviews/*.txt.gz' is expanded in sorted order")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", default="-", help="the CSV file to write (default: standard output)")
    where.add_argument("--output-dir", type=Path, metavar="DIR",
                       help="write one CSV per block (part-00000.csv, ...) and _SUCCESS into DIR, a new folder")
    parser.add_argument("--model", default="fine-grained",
                        help="which model scores the inputs: binary, fine-grained (the default; a Kaggle submission "
                             "always uses it), ratings, or a model added with `release.py add`")
    parser.add_argument("--model-dir", type=Path, default=config.model_dir(),
                        help="where the models are (default $MODEL_DIR or lib/models)")
    parser.add_argument("--explain", type=positive_int("terms", "how many terms to show", "--explain 3"), metavar="K",
                        help="plain text only: add a column with each line's K strongest terms and their "
                             "contributions to the log-odds of the prediction")
    parser.add_argument("--engine", choices=["local", "dask"], default="local",
                        help="local: this process (default); dask: a Dask cluster")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --engine dask: the scheduler of a running cluster, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--workers", metavar="N",
                        type=positive_int("workers", "how many worker processes", "--workers 2"),
                        help="with --engine dask and no --scheduler: worker processes of the local cluster "
                             "(default: one per core)")
    parser.add_argument("--read-on", choices=["auto", "client", "workers"], default="auto",
                        help="with --engine dask: who reads the inputs. workers: each reads its own byte ranges "
                             "(the inputs must be URLs or paths every worker can open) and, with --output-dir, "
                             "writes its own parts; client: this process reads and sends the blocks; auto "
                             "(default): workers for URLs or a cluster on this machine, else client")
    parser.add_argument("--block-size", type=block_size, default=inputs.BLOCK_SIZE, metavar="SIZE",
                        help="input bytes per block, the unit of work and of --output-dir files (default 4MiB)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="show a progress bar on standard error even when it is not a terminal")
    shown.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    if args.engine == "local" and (args.scheduler or args.workers or args.read_on != "auto"):
        parser.error("--scheduler, --workers and --read-on are for --engine dask")
    if args.scheduler and args.workers:
        parser.error("--workers starts a local cluster; with --scheduler the cluster's own workers do the work")
    return args


def input_files(patterns):
    """The files the command line names, globs expanded in sorted order; `DataError` for a name that is none."""
    paths = []
    for pattern in patterns:
        if inputs.is_url(pattern):
            paths += remote_files(pattern)
        elif Path(pattern).is_file():
            paths.append(Path(pattern))
        elif Path(pattern).is_dir():
            raise util.DataError(f"{pattern}: is a folder; give its files, e.g. '{Path(pattern) / '*.txt'}'.")
        elif glob.has_magic(pattern):
            matches = sorted(Path(match) for match in glob.glob(pattern) if Path(match).is_file())
            if not matches:
                raise util.DataError(f"{pattern}: matches no file.")
            paths += matches
        else:
            raise util.DataError(f"{pattern}: no such file.")
    return paths


def remote_files(pattern):
    """The files an fsspec URL names (a glob expanded in sorted order); `DataError` for one that names none."""
    import fsspec  # only for URLs: each kind needs its own package (docs/batch.md)

    with inputs.reading_url(pattern):
        filesystem, path = fsspec.core.url_to_fs(pattern)
        if glob.has_magic(pattern):
            matches = sorted(filesystem.unstrip_protocol(match) for match in filesystem.glob(path))
            if not matches:
                raise util.DataError(f"{pattern}: matches no file.")
            return matches
        if not filesystem.isfile(path):
            raise util.DataError(f"{pattern}: no such file.")
    return [pattern]


def read_on_workers(args, paths):
    """True when the Dask workers read the inputs themselves (--read-on, or what auto chooses, with a note
    on standard error when it leaves the reading to the client)."""
    if args.read_on != "auto":
        return args.read_on == "workers"
    if args.scheduler is None or all(inputs.is_url(path) for path in paths):
        return True  # a local cluster shares this machine's files; every worker can open a URL
    host = urlsplit(args.scheduler if "://" in args.scheduler else f"tcp://{args.scheduler}").hostname
    if host in ("localhost", "127.0.0.1", "::1"):
        return True
    if not args.quiet:
        print(f"note: the client reads the inputs and sends them to the cluster at {args.scheduler}, since they are "
              "files on this machine; give --read-on workers if every worker sees them at the same paths "
              "(a shared file system), or give URLs.", file=sys.stderr)
    return False


def takes_rows(model_dir, model):
    """Whether `model` takes named inputs, one JSON object a line (films, for ratings), not text."""
    if model in config.NUMBER_MODELS:
        return True
    try:
        return artifacts.read_manifest(artifacts.resolve_folder(Path(model_dir) / model)).get(
            "kind", kinds.DEFAULT_KIND) != kinds.DEFAULT_KIND
    except (kinds.ModelError, OSError, ValueError):
        return False  # loading it says what is wrong


def input_kind(paths, explain, model, rows=False):
    """True for Kaggle test files, False for plain text (or a model's rows: `rows`); `DataError` for a mix,
    or --explain with Kaggle files or rows."""
    if rows:  # films, as JSON lines: never a Kaggle file
        if explain:
            raise util.DataError(f"--explain is for the text models' answers; the {model} model's are numbers.")
        return False
    kinds = {path: inputs.is_kaggle_test(path) for path in paths}
    if len(set(kinds.values())) > 1:
        kaggle = next(path for path, kind in kinds.items() if kind)
        text = next(path for path, kind in kinds.items() if not kind)
        raise util.DataError(f"{kaggle} is a Kaggle test file but {text} is plain text; score them in separate runs.")
    kaggle = kinds[paths[0]]
    if kaggle and explain:  # refused rather than ignored: the user asked for something the file can't hold
        raise util.DataError(f"{paths[0]} is a Kaggle test file, and its submission has no room for explanations; "
                             "--explain is for plain text, one text per line "
                             "(e.g. `tail -n +2 test.tsv | cut -f3 > phrases.txt`).")
    return kaggle


def check_output(args):
    """`DataError` now, before any scoring, when the output cannot be written where asked."""
    target = args.output_dir or (None if args.output == "-" else Path(args.output))
    if target is not None and not target.parent.is_dir():
        raise util.DataError(f"cannot write {target}: no folder {target.parent}.")


def load_model(args, kaggle):
    """The `batch.VerifiedModel` that scores these inputs, whichever the engine; `ModelError` when it is unusable."""
    verified = batch.VerifiedModel(args.model_dir / ("fine-grained" if kaggle else args.model))
    if kaggle and verified.labels != util.FINE_GRAINED_LABELS:
        raise kinds.ModelError(f"{verified.folder}: a Kaggle submission needs the fine-grained model (labels 0-4); "
                               "build it with `python build_model.py --data PATH/train.tsv`.")
    return verified


def score(args, paths, kaggle):
    """Run the job; return (rows scored, model name)."""
    verified = load_model(args, kaggle)
    job = batch.Job(kaggle=kaggle, explain=args.explain, file_column=len(paths) > 1 and not kaggle,
                    films=not kaggle and takes_rows(args.model_dir, args.model))
    if args.output_dir:
        output = batch.FolderOutput(args.output_dir, job.header(verified.labels))
    else:
        output = batch.FileOutput(args.output, job.header(verified.labels))
    rows = 0
    with output, tqdm(total=sum(map(inputs.file_size, paths)), unit="B", unit_scale=True,
                      unit_divisor=1024, desc="scoring", file=sys.stderr, dynamic_ncols=True,
                      disable=args.quiet or not (args.progress or sys.stderr.isatty())) as bar:
        def deliver(block, count, data):
            nonlocal rows
            output.write(block, data)
            rows += count
            bar.update(block.disk_bytes)
            bar.set_postfix_str(f"{rows:,} {'phrases' if kaggle else 'films' if job.films else 'lines'}",
                                refresh=False)

        if args.engine == "local":
            batch.run_local(verified, job, inputs.read_blocks(paths, kaggle=kaggle, block_size=args.block_size),
                            deliver)
        else:
            run_dask(args, paths, verified, job, deliver, staging=getattr(output, "staging", None))
        if kaggle and rows == 0:  # inside the `with`: an empty submission is not written
            raise util.DataError(f"{', '.join(map(str, paths))}: a header but no rows; nothing to submit.")
    return rows, verified.name


def run_dask(args, paths, verified, job, deliver, *, staging):
    """The Dask engine: the workers read the inputs (and write the parts into `staging`, the output folder
    being filled, if any), or the client reads them and sends the blocks."""
    from batch import cluster  # only here: distributed takes a moment to import

    on_workers = read_on_workers(args, paths)
    with cluster.session(verified, scheduler=args.scheduler, workers=args.workers or cluster.default_workers(),
                         quiet=args.quiet) as (client, plugin):
        if on_workers:
            cells = inputs.plan_cells(paths, kaggle=job.kaggle, block_size=args.block_size)
            cluster.score_cells(client, plugin, job, cells, deliver, block_size=args.block_size,
                                staging=None if staging is None else str(staging.resolve()))
        else:
            cluster.score_blocks(client, plugin, job, inputs.read_blocks(paths, kaggle=job.kaggle,
                                                                         block_size=args.block_size), deliver)


def main(argv=None):
    """Score the inputs; exit non-zero with a one-line message when an input, the model or the cluster is unusable."""
    args = parse_args(argv)
    try:
        paths = input_files(args.inputs)
        kaggle = input_kind(paths, args.explain, args.model, takes_rows(args.model_dir, args.model))
        check_output(args)
        rows, name = score(args, paths, kaggle)
    except util.DataError as exc:
        return fail(exc, 2)
    except BrokenPipeError:  # standard output's reader has gone (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (kinds.ModelError, ConnectionError) as exc:
        return fail(exc, 1)
    except OSError as exc:
        return fail(f"{exc.filename}: {exc.strerror}." if exc.filename else exc, 1)
    except KeyboardInterrupt:
        return fail("interrupted." if args.output == "-" and not args.output_dir else
                    "interrupted; nothing was written.", 130)
    if not args.quiet:
        where = args.output_dir or args.output
        unit = "phrases" if kaggle else "films" if args.model in config.NUMBER_MODELS else \
            "rows" if takes_rows(args.model_dir, args.model) else "lines"
        print(f"scored {rows:,} {unit} with the {name} model -> {where}", file=sys.stderr)
    return 0


def fail(error, code):
    """Print `error: ...` on standard error and return the exit code."""
    print(f"error: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stopped run cleans up as Ctrl-C does
    sys.exit(main())
