"""In-process scoring benchmark: FastScorer against scikit-learn's transform + predict_proba.

    python benchmarks/bench_scoring.py                 # models built from $KAGGLE_DATA_DIR into a temp dir
    python benchmarks/bench_scoring.py --model-dir lib/models
    python benchmarks/bench_scoring.py --smoke         # a few seconds, tiny data

Prints the median microseconds per query for short phrases on both paths, then, for batch sizes
1..5000 of Kaggle test phrases, the median time per batch on each path and the smallest size at
which scikit-learn is faster: the figure behind `model.FAST_PATH_MAX_BATCH`.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kinds  # noqa: E402
import util  # noqa: E402
from kinds import text as model  # noqa: E402
from tests.support import build_models, write_tiny_kaggle  # noqa: E402

BATCH_SIZES = [1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000, 2000, 5000]
SMOKE_BATCH_SIZES = [1, 10, 100]


def kaggle_data_dir():
    """The folder with Kaggle's train.tsv.gz and test.tsv.gz, from KAGGLE_DATA_DIR; exit if absent."""
    folder = Path(os.environ.get("KAGGLE_DATA_DIR", ROOT.parent / "shared" / "data" / "kaggle-movie-reviews"))
    if not (folder / "train.tsv.gz").is_file():
        sys.exit(f"error: no Kaggle train.tsv.gz in {folder}; set KAGGLE_DATA_DIR (or use --smoke).")
    return folder


def train_file(data_dir):
    """Kaggle's train.tsv.gz, or the tiny data's train.tsv."""
    return next(p for p in (data_dir / "train.tsv.gz", data_dir / "train.tsv") if p.is_file())


def test_phrases(data_dir):
    """Kaggle's test phrases (or the tiny data's), in file order."""
    test = next(p for p in (data_dir / "test.tsv.gz", data_dir / "test.tsv") if p.is_file())
    return list(util.read_kaggle_test(test)["Phrase"])


def short_phrases(phrases, *, count, seed=0):
    """`count` phrases of 3 to 8 words: what a user types into ?query=."""
    short = [p for p in phrases if 3 <= len(p.split()) <= 8] or phrases
    return random.Random(seed).choices(short, k=count)


def median_us_per_query(score, texts):
    """Median microseconds of `score([text])` over `texts`, each call timed on its own."""
    for text in texts[:50]:  # warm caches and lazy imports
        score([text])
    timings = []
    for text in texts:
        started = time.perf_counter_ns()
        score([text])
        timings.append(time.perf_counter_ns() - started)
    return statistics.median(timings) / 1000


def median_batch_ms(score, phrases, size, *, repeats, seed=0):
    """Median milliseconds to score a random batch of `size` phrases, over `repeats` batches."""
    rng = random.Random(seed)
    batches = [rng.choices(phrases, k=size) for _ in range(repeats)]
    score(batches[0])
    timings = []
    for batch in batches:
        started = time.perf_counter()
        score(batch)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def repeats_for(size):
    """Enough batches for a stable median without spending minutes on the big ones."""
    return max(3, min(200, 20_000 // size))


def run(model_dir, phrases, *, queries, sizes):
    """All measurements for the fine-grained model (the larger); return a dict of figures."""
    loaded = kinds.load(Path(model_dir) / "fine-grained")
    queries_ = short_phrases(phrases, count=queries)
    figures = {
        "fast_us": median_us_per_query(loaded.scorer_.predict_proba, queries_),
        "sklearn_us": median_us_per_query(loaded.predict_proba_sklearn, queries_),
        "answer_us": median_us_per_query(loaded.predict, queries_),
        "explained_us": median_us_per_query(lambda texts: loaded.predict(texts, explain=True), queries_),
        "batches": [],
    }
    for size in sizes:
        fast = median_batch_ms(loaded.scorer_.predict_proba, phrases, size, repeats=repeats_for(size))
        sklearn = median_batch_ms(loaded.predict_proba_sklearn, phrases, size, repeats=repeats_for(size))
        figures["batches"].append((size, fast, sklearn))
    # The crossover: the smallest measured size from which scikit-learn wins at every larger size too,
    # so one noisy batch does not move it.
    crossover = None
    for size, fast, sklearn in reversed(figures["batches"]):
        if sklearn >= fast:
            break
        crossover = size
    figures["crossover"] = crossover
    return figures


def report(figures):
    """The figures as text."""
    lines = [f"median per short query: fast {figures['fast_us']:.1f} us, "
             f"scikit-learn {figures['sklearn_us']:.1f} us ({figures['sklearn_us'] / figures['fast_us']:.0f}x)",
             f"median per short query, the whole answer: {figures['answer_us']:.1f} us, with its explanation "
             f"{figures['explained_us']:.1f} us (+{figures['explained_us'] - figures['answer_us']:.1f} us)",
             f"{'batch':>6} {'fast ms':>9} {'sklearn ms':>10} {'fast us/text':>12} {'sklearn us/text':>15}"]
    for size, fast, sklearn in figures["batches"]:
        lines.append(f"{size:>6} {fast:>9.3f} {sklearn:>10.3f} {fast * 1000 / size:>12.1f} "
                     f"{sklearn * 1000 / size:>15.1f}{'  <- scikit-learn faster' if sklearn < fast else ''}")
    crossover = figures["crossover"]
    lines.append(f"scikit-learn is faster from batch size {crossover} (current FAST_PATH_MAX_BATCH = "
                 f"{model.FAST_PATH_MAX_BATCH})" if crossover else "the fast path was faster at every size")
    return "\n".join(lines)


def main(argv=None):
    """Build or find the models, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="built models (default: build from $KAGGLE_DATA_DIR)")
    parser.add_argument("--smoke", action="store_true", help="tiny data and few sizes: a few seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        data_dir = write_tiny_kaggle(Path(tmp) / "data") if args.smoke else kaggle_data_dir()
        model_dir = args.model_dir or build_models(train_file(data_dir), Path(tmp) / "models")
        figures = run(model_dir, test_phrases(data_dir), queries=200 if args.smoke else 3000,
                      sizes=SMOKE_BATCH_SIZES if args.smoke else BATCH_SIZES)
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
