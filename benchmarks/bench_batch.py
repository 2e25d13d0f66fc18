"""Batch scoring benchmark: predict.py's local engine and its Dask engine over large corpora.

    python benchmarks/bench_batch.py                         # 1M and 5M lines, models built from $KAGGLE_DATA_DIR
    python benchmarks/bench_batch.py --model-dir lib/models --lines 1000000 --rounds 1
    python benchmarks/bench_batch.py --smoke                 # a minute, tiny data

Writes each corpus by repeating Kaggle's test phrases, one per line, to the size asked, then runs
predict.py as a user does (a process of its own, `--model binary -o FILE`) with the local engine and
with the Dask engine on a local cluster of 1 and of 2 workers, in alternation for `--rounds` rounds.
For each engine and size it prints the median wall time (start-up included), phrases per second and
the median peak resident memory of predict.py's own process (for the Dask engine, the client's). It
checks that every engine wrote the same bytes, and prints each engine's start-up cost: the
wall time of the same command on 1,000 lines.
"""
import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import util  # noqa: E402
from tests.support import build_models, write_tiny_kaggle  # noqa: E402

ENGINES = {"local": [], "dask, 1 worker": ["--engine", "dask", "--workers", "1"],
           "dask, 2 workers": ["--engine", "dask", "--workers", "2"]}
# Runs predict.main in this process and prints its peak resident memory in KiB: VmHWM, which starts
# afresh at exec (getrusage's ru_maxrss would carry over the benchmark's own peak from before the fork).
MEASURED = ("import re, sys, predict; code = predict.main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)); sys.exit(code)")


def write_corpus(phrases, lines, path):
    """Write `lines` lines cycling through `phrases`; return the path."""
    block = "\n".join(phrases) + "\n"
    whole, rest = divmod(lines, len(phrases))
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(whole):
            out.write(block)
        out.write("".join(p + "\n" for p in phrases[:rest]))
    return path


def run(corpus, out, model_dir, engine):
    """One predict.py run; return (wall seconds, phrases scored, its process's peak resident KiB)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, str(corpus), "-o", str(out), "--model", "binary",
                           "--model-dir", str(model_dir), *ENGINES[engine]],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: predict.py failed with the {engine} engine:\n{done.stderr[-3000:]}")
    said = [line for line in done.stderr.splitlines() if line.startswith("scored ")][-1]
    return wall, int(said.split()[1].replace(",", "")), int(done.stdout)


def digest(path):
    """The sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, help="built models (default: built from $KAGGLE_DATA_DIR)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 20,000 and 60,000 lines, one round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        if args.smoke:
            data = write_tiny_kaggle(tmp / "data")
            args.lines, args.rounds = [20_000, 60_000], 1
        else:
            data = Path(os.environ.get("KAGGLE_DATA_DIR", ROOT.parent / "shared" / "data" / "kaggle-movie-reviews"))
            if args.model_dir is None and not (data / "train.tsv.gz").is_file():
                sys.exit(f"error: no Kaggle train.tsv.gz in {data}; set KAGGLE_DATA_DIR (or use --smoke).")
        model_dir = args.model_dir or build_models(next(data.glob("train.tsv*")), tmp / "models")
        phrases = list(util.read_kaggle_test(next(data.glob("test.tsv*")))["Phrase"])
        print(f"corpora: Kaggle's {len(phrases):,} test phrases repeated; binary model; {os.cpu_count()} cores; "
              f"{args.rounds} round(s), medians")
        startup = {engine: run(write_corpus(phrases, 1000, tmp / "small.txt"), tmp / "small.csv", model_dir, engine)[0]
                   for engine in ENGINES}
        print("start-up, wall time of 1,000 lines: "
              + ", ".join(f"{engine} {seconds:.2f} s" for engine, seconds in startup.items()))
        print(f"{'lines':>10}  {'engine':<16} {'wall s':>8} {'phrases/s':>10} {'x local':>8} {'peak MiB':>9}")
        for lines in args.lines:
            corpus = write_corpus(phrases, lines, tmp / f"corpus-{lines}.txt")
            results = {engine: [] for engine in ENGINES}
            digests = set()
            for _ in range(args.rounds):
                for engine in ENGINES:
                    out = tmp / "out.csv"
                    results[engine].append(run(corpus, out, model_dir, engine))
                    digests.add(digest(out))
                    out.unlink()
            if len(digests) != 1:
                sys.exit(f"error: the engines wrote different outputs for {lines:,} lines")
            speed = {}
            for engine, runs in results.items():
                wall = statistics.median(r[0] for r in runs)
                speed[engine] = runs[0][1] / wall
                peak = statistics.median(r[2] for r in runs) / 1024
                print(f"{lines:>10,}  {engine:<16} {wall:>8.2f} {speed[engine]:>10,.0f} "
                      f"{speed[engine] / speed['local']:>7.2f}x {peak:>9.0f}")
            corpus.unlink()
        print("outputs: the same bytes from every engine")


if __name__ == "__main__":
    main()
