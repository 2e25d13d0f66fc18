"""Batch scoring benchmark: predict.py's local engine and its Dask engine over large corpora.

    python benchmarks/bench_batch.py                         # 1M and 5M lines, models built from $KAGGLE_DATA_DIR
    python benchmarks/bench_batch.py --model-dir lib/models --lines 1000000 --rounds 1
    python benchmarks/bench_batch.py --smoke                 # a minute, tiny data
    python benchmarks/bench_batch.py --cluster               # a running cluster of 2 workers, 2M lines
    python benchmarks/bench_batch.py --cluster --smoke
    python benchmarks/bench_batch.py --films                 # films for the ratings model, from $MOVIES_DATA_DIR
    python benchmarks/bench_batch.py --films --smoke

Writes each corpus by repeating Kaggle's test phrases, one per line, to the size asked, then runs
predict.py as a user does (a process of its own, `--model binary -o FILE`) with the local engine and
with the Dask engine on a local cluster of 1 and of 2 workers, in alternation for `--rounds` rounds.
With `--films` the corpus is films instead, one JSON object per line (`POST /ratings`' instances: the
films of vega-datasets' movies.json as cleaned for training, each with the inputs it has, repeated), and
predict.py runs `--model ratings`.
For each engine and size it prints the median wall time (start-up included), phrases per second and
the median peak resident memory of predict.py's own process (for the Dask engine, the client's). It
checks that every engine wrote the same bytes, and prints each engine's start-up cost: the
wall time of the same command on 1,000 lines.

With `--cluster` it starts a cluster as docs/batch.md does (`dask scheduler` and `dask worker --nworkers 2
--nthreads 1` on loopback, the workers with `cluster.WORKER_ENVIRONMENT`) and compares the local engine
with `--scheduler` runs where the workers read (`-o FILE`, and `--output-dir`, where they write the parts
too) and where the client reads. Besides wall time it measures CPU (user + system, from /proc) of
predict.py, the scheduler and the workers, over each run and over a small run, whose difference is the
marginal cost of the lines between them, model loading and start-up taken out. From those costs per
block it prints what more workers would do on paper.
"""
import argparse
import contextlib
import hashlib
import io
import json
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
from batch.inputs import BLOCK_SIZE  # noqa: E402
from tests.support import DaskCluster, build_models, write_tiny_kaggle, write_tiny_movies  # noqa: E402

ENGINES = {"local": [], "dask, 1 worker": ["--engine", "dask", "--workers", "1"],
           "dask, 2 workers": ["--engine", "dask", "--workers", "2"]}
# With --cluster: predict.py's options for each row, the scheduler's address added.
CLUSTER_ENGINES = {"local": [], "workers read, -o": ["--read-on", "workers"],
                   "workers read+write": ["--read-on", "workers", "--output-dir"],
                   "client reads, -o": ["--read-on", "client"]}
# Runs predict.main in this process and prints its peak resident memory in KiB: VmHWM, which starts
# afresh at exec (getrusage's ru_maxrss would carry over the benchmark's own peak from before the fork);
# then its CPU seconds (user + system): in all, and inside the engine's call (batch.blocks.run_local or
# predict.run_dask: the run without Python's start-up and imports).
MEASURED = """
import functools, os, re, sys, predict
from batch import blocks as batch
engine = [0.0]
def timed(function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        started = sum(os.times()[:2])
        try:
            return function(*args, **kwargs)
        finally:
            engine[0] += sum(os.times()[:2]) - started
    return call
batch.run_local, predict.run_dask = timed(batch.run_local), timed(predict.run_dask)
code = predict.main(sys.argv[1:])
print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))
print(sum(os.times()[:2]), engine[0])
sys.exit(code)
"""


def write_corpus(phrases, lines, path):
    """Write `lines` lines cycling through `phrases`; return the path."""
    block = "\n".join(phrases) + "\n"
    whole, rest = divmod(lines, len(phrases))
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(whole):
            out.write(block)
        out.write("".join(p + "\n" for p in phrases[:rest]))
    return path


def run(corpus, out, model_dir, engine, options=None, model="binary"):
    """One predict.py run; return (wall seconds, phrases scored, its process's peak resident KiB, its CPU s,
    its CPU s inside the engine's call). `options` are the engine's (default: `ENGINES[engine]`)."""
    return finish(start(corpus, out, model_dir, engine, options, model))


def start(corpus, out, model_dir, engine, options=None, model="binary"):
    """Start one predict.py run (`finish` waits for it); an option list ending in --output-dir takes `out`."""
    options = ENGINES[engine] if options is None else options
    where = [str(out)] if options[-1:] == ["--output-dir"] else ["-o", str(out)]
    process = subprocess.Popen([sys.executable, "-c", MEASURED, str(corpus), "--model", model,
                                "--model-dir", str(model_dir), *options, *where],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return engine, process, time.perf_counter()


def finish(started):
    """Wait for a run `start` began; return what `run` returns."""
    engine, process, began = started
    stdout, stderr = process.communicate(timeout=3600)
    wall = time.perf_counter() - began
    if process.returncode != 0:
        sys.exit(f"error: predict.py failed with the {engine} engine:\n{stderr[-3000:]}")
    said = [line for line in stderr.splitlines() if line.startswith("scored ")][-1]
    peak, cpu, engine_cpu = stdout.split()
    return wall, int(said.split()[1].replace(",", "")), int(peak), float(cpu), float(engine_cpu)


def film_lines(movies_json):
    """The films of a movies.json as cleaned for training, each as a JSON line of the inputs it has."""
    from training import movies

    frame = movies.read_movies(movies_json).frame
    names = [*movies.CATEGORIES, *movies.NAMES, *movies.NUMBERS, "release_year"]
    lines = []
    for record in frame[names].to_dict("records"):
        film = {}
        for name, value in record.items():
            if isinstance(value, float) and value == value and value.is_integer():
                value = int(value)  # 20000000, as a person writes a budget, not 20000000.0
            if value is not None and value == value:
                film[name] = value
        lines.append(json.dumps(film))
    return lines


def digest(path):
    """The sha256 of an output file, or of an output folder's parts as one file (one header, rows in order)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    parts = [part.read_bytes() for part in sorted(path.glob("part-*.csv"))]
    header = parts[0][:parts[0].index(b"\n") + 1]
    return hashlib.sha256(header + b"".join(part[len(header):] for part in parts)).hexdigest()


def remove(path):
    """Remove an output file or folder."""
    if path.is_dir():
        for part in path.iterdir():
            part.unlink()
        path.rmdir()
    else:
        path.unlink()


def cpu_seconds(pid):
    """User + system CPU seconds of a process and of all its descendants alive now."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def cluster_main(args, phrases, model_dir, tmp):
    """--cluster: the local engine and the Dask engine on a running cluster of 2 workers, with CPU by process."""
    started = DaskCluster(tmp / "dask", workers=2)
    try:
        with started.client():
            pass
        engines = {name: [*(["--engine", "dask", "--scheduler", started.address] if options else []), *options]
                   for name, options in CLUSTER_ENGINES.items()}
        lines = args.lines[0]
        sizes = (lines // 20, lines)
        corpora = {size: write_corpus(phrases, size, tmp / f"corpus-{size}.txt") for size in sizes}
        halves = {size: write_corpus(phrases, size // 2, tmp / f"half-{size}.txt") for size in sizes}
        results = {(engine, size): [] for engine in [*engines, SIDE_BY_SIDE] for size in sizes}
        digests = {size: set() for size in sizes}
        for _ in range(args.rounds):
            for size in sizes:
                for engine, options in engines.items():
                    before = cpu_seconds(started.scheduler.pid), cpu_seconds(started.workers.pid)
                    wall, count, _, _, client = run(corpora[size], tmp / "out", model_dir, engine, options)
                    after = cpu_seconds(started.scheduler.pid), cpu_seconds(started.workers.pid)
                    results[engine, size].append((wall, count, client, after[0] - before[0], after[1] - before[1]))
                    digests[size].add(digest(tmp / "out"))
                    remove(tmp / "out")
                pair = [finish(run) for run in [start(halves[size], tmp / f"side-{n}.csv", model_dir, "local", [])
                                                for n in (1, 2)]]
                results[SIDE_BY_SIDE, size].append((max(r[0] for r in pair), sum(r[1] for r in pair),
                                                    sum(r[4] for r in pair), 0.0, 0.0))
        if any(len(found) != 1 for found in digests.values()):
            sys.exit("error: the engines wrote different outputs")
        print("outputs: the same bytes from every engine (a folder's parts joined, one header)")
    finally:
        started.stop()
    report_cluster(results, sizes, args.block_size or BLOCK_SIZE, os.path.getsize(corpora[lines]), args.rounds)


# A reference row, not an engine: two local-engine processes at once, each on half the lines, to show what
# running two scorers side by side on this machine's two cores costs per phrase, whatever runs them.
SIDE_BY_SIDE = "local, 2 side by side"


def report_cluster(results, sizes, block_size, corpus_bytes, rounds):
    """Print the wall times, the CPU by process and the costs per block, and what they mean for more workers.

    Per-phrase costs are marginal: the difference between the large and the small run over the phrases
    between them, so start-up and model loading drop out. The workers and the scheduler tick over even when
    idle (heartbeats, Dask's system monitor): their idle rate, measured during the local engine's runs, is
    taken off their CPU for each second of the run's wall time.
    """
    small, lines = sizes

    def median(engine, size, field):
        return statistics.median(run[field] for run in results[engine, size])

    idle = [statistics.median(run[field] / run[0] for size in sizes for run in results["local", size])
            for field in (3, 4)]  # CPU s per wall s: the scheduler's, the workers' (all of them)

    def marginal(engine):
        """µs per phrase: the client (inside the engine's call), the scheduler and the workers, idle taken off."""
        extra = median(engine, lines, 1) - median(engine, small, 1)
        wall = median(engine, lines, 0) - median(engine, small, 0)
        client = median(engine, lines, 2) - median(engine, small, 2)
        scheduler, workers = ((median(engine, lines, field) - median(engine, small, field) - rate * wall)
                              for field, rate in zip((3, 4), idle))
        return [value / extra * 1e6 for value in (client, scheduler, workers)]

    phrases = median("local", lines, 1)
    blocks = -(-corpus_bytes // block_size)
    print(f"{lines:,} lines ({corpus_bytes / 2**20:.0f} MiB, {blocks} blocks of {block_size / 2**20:g} MiB) and "
          f"{small:,} lines, for marginal costs; a running cluster of 2 single-threaded workers; {rounds} round(s), "
          "medians")
    print(f"idle CPU while the local engine runs: scheduler {idle[0]:.3f} s/s, workers {idle[1]:.3f} s/s (taken off)")
    print(f"{'engine':<22} {'wall s':>7} {'phrases/s':>10} {'x local':>8}   {'CPU s: client':>13} {'scheduler':>9} "
          f"{'workers':>8}   {'µs/phrase: client':>17} {'scheduler':>9} {'workers':>8} {'x local':>8}")
    local_speed = phrases / median("local", lines, 0)
    costs = {engine: marginal(engine) for engine in [*CLUSTER_ENGINES, SIDE_BY_SIDE]}
    local_cost = costs["local"][0]
    for engine, (client, scheduler, workers) in costs.items():
        wall = median(engine, lines, 0)
        work = workers if engine in CLUSTER_ENGINES and engine != "local" else client
        shown = [f"{value:.3f}" if engine in CLUSTER_ENGINES and engine != "local" else "-"
                 for value in (scheduler, workers)]
        print(f"{engine:<22} {wall:>7.2f} {phrases / wall:>10,.0f} {phrases / wall / local_speed:>7.2f}x   "
              f"{median(engine, lines, 2):>13.2f} {median(engine, lines, 3):>9.2f} {median(engine, lines, 4):>8.2f}   "
              f"{client:>17.3f} {shown[0]:>9} {shown[1]:>8} {work / local_cost:>7.2f}x")
    per_block = phrases / blocks
    dask = {engine: cost for engine, cost in costs.items() if engine in CLUSTER_ENGINES and engine != "local"}
    print(f"marginal CPU per block of {block_size / 2**20:g} MiB ({per_block:,.0f} phrases), ms: "
          + "; ".join(f"{engine}: client {c * per_block / 1000:.2f}, scheduler {s * per_block / 1000:.2f}, "
                      f"a worker {w * per_block / 1000:.0f}" for engine, (c, s, w) in dask.items()))
    print("client CPU per million lines, marginal: "
          + "; ".join(f"{engine} {c * lines / phrases:.3f} s" for engine, (c, _, _) in dask.items()))
    client, scheduler, worker = (max(value, 1e-3) for value in costs["workers read+write"])
    print("on paper, workers reading and writing, one core each, the scheduler and the client on cores of their own "
          "(each capped by its CPU per block; network and storage not counted):")
    for count in (4, 16, 64):
        caps = {"workers": count * 1e6 / worker, "scheduler": 1e6 / scheduler, "client": 1e6 / client}
        bound = min(caps, key=caps.get)
        needed = block_size * count * scheduler / worker  # the scheduler's cost is per block, not per byte
        print(f"  {count:>2} workers: {caps[bound]:>12,.0f} phrases/s, bound by the {bound}; "
              f"{count * 1e6 / worker / per_block:,.1f} blocks/s; blocks of {needed / 2**20:.2f} MiB or more keep "
              f"the scheduler ({1e6 / scheduler / per_block:,.0f} blocks/s at most) below its cap")


def main():
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, help="built models (default: built from $KAGGLE_DATA_DIR)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 20,000 and 60,000 lines, one round")
    parser.add_argument("--films", action="store_true",
                        help="films (JSON lines) for the ratings model instead of phrases for the binary one")
    parser.add_argument("--cluster", action="store_true",
                        help="a running cluster of 2 workers: workers reading, the client reading, CPU by process "
                             "(default 2,000,000 lines)")
    args = parser.parse_args()
    args.block_size = None
    if args.cluster and args.lines == parser.get_default("lines"):
        args.lines = [2_000_000]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        if args.films:
            return films_main(args, tmp)
        if args.smoke:
            data = write_tiny_kaggle(tmp / "data")
            args.lines, args.rounds = ([60_000] if args.cluster else [20_000, 60_000]), 1
        else:
            data = Path(os.environ.get("KAGGLE_DATA_DIR", ROOT.parent / "shared" / "data" / "kaggle-movie-reviews"))
            if args.model_dir is None and not (data / "train.tsv.gz").is_file():
                sys.exit(f"error: no Kaggle train.tsv.gz in {data}; set KAGGLE_DATA_DIR (or use --smoke).")
        model_dir = args.model_dir or build_models(next(data.glob("train.tsv*")), tmp / "models")
        phrases = list(util.read_kaggle_test(next(data.glob("test.tsv*")))["Phrase"])
        if args.cluster:
            return cluster_main(args, phrases, model_dir, tmp)
        print(f"corpora: Kaggle's {len(phrases):,} test phrases repeated; binary model; {os.cpu_count()} cores; "
              f"{args.rounds} round(s), medians")
        compare_engines(args, phrases, model_dir, tmp, "binary", "phrases")


def films_main(args, tmp):
    """--films: films for the ratings model, from $MOVIES_DATA_DIR's movies.json (or tiny ones with --smoke)."""
    from training.movies import MOVIES_ENV

    if args.smoke:
        movies_json = write_tiny_movies(tmp / "data")
        args.lines, args.rounds = [20_000, 60_000], 1
    else:
        movies_json = Path(os.environ.get(MOVIES_ENV, ROOT.parent / "shared" / "data" / "vega-movies")) / "movies.json"
        if args.model_dir is None and not movies_json.is_file():
            sys.exit(f"error: no movies.json at {movies_json}; set {MOVIES_ENV} (or use --smoke).")
    if args.model_dir is None:
        import build_model

        args.model_dir = tmp / "models"
        with contextlib.redirect_stdout(io.StringIO()):
            if build_model.main(["--only", "ratings", "--movies", str(movies_json), "--out", str(args.model_dir)]):
                sys.exit("error: building the ratings model failed")
    films = film_lines(movies_json)
    print(f"corpora: {len(films):,} films of {movies_json.name} repeated, one JSON object per line; ratings model; "
          f"{os.cpu_count()} cores; {args.rounds} round(s), medians")
    compare_engines(args, films, args.model_dir, tmp, "ratings", "films")


def compare_engines(args, items, model_dir, tmp, model, unit):
    """Each engine in turn on each corpus size, `--rounds` times: the table of medians, one row per engine
    and size, and a check that every engine wrote the same bytes."""
    startup = {engine: run(write_corpus(items, 1000, tmp / "small.txt"), tmp / "small.csv", model_dir, engine,
                           model=model)[0] for engine in ENGINES}
    print("start-up, wall time of 1,000 lines: "
          + ", ".join(f"{engine} {seconds:.2f} s" for engine, seconds in startup.items()))
    print(f"{'lines':>10}  {'engine':<16} {'wall s':>8} {unit + '/s':>10} {'x local':>8} {'peak MiB':>9}")
    for lines in args.lines:
        corpus = write_corpus(items, lines, tmp / f"corpus-{lines}.txt")
        results = {engine: [] for engine in ENGINES}
        digests = set()
        for _ in range(args.rounds):
            for engine in ENGINES:
                out = tmp / "out.csv"
                results[engine].append(run(corpus, out, model_dir, engine, model=model))
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
