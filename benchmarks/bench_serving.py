"""Serving benchmark: the service against the tutorial's way and against Flask-RESTful's ceiling.

    python benchmarks/bench_serving.py             # full run: models from $KAGGLE_DATA_DIR, ~3 minutes
    python benchmarks/bench_serving.py --smoke     # a few seconds on tiny data (what CI runs)

In one run on loopback it builds both models into a temp dir, then starts under gunicorn, each with
the repo's real gunicorn.conf.py:
  service   `app:app`, the real service (GET /?query=..., fast scorer);
  baseline  `benchmarks.tutorial_app:app`, scikit-learn transform + predict + predict_proba per request;
  constant  `benchmarks.constant_app:app`, a bare Flask-RESTful app answering a constant (the
            framework's ceiling);
  stack     `benchmarks.stack_constant_app:app`, this service's whole stack (parsing, request ids,
            access log, metrics, CORS, headers) with scoring replaced by a constant (the service's
            ceiling: the gap to it is what scoring costs);
  no-ops    `benchmarks.no_ops_app:app`, the service parsing and scoring without its per-request
            operations (request ids, headers, CORS, metrics, access log): the gap to the service is
            what those cost.
wrk (Debian package `wrk`; -t2 -c8) drives each in alternating rounds, so machine noise hits all
five alike; the table shows medians over rounds, the median of the per-round ratios, the CPU time
the app's gunicorn workers spent per request (from /proc; wrk's own share left out), and the time
the same GET takes through the app's WSGI callable in-process, without gunicorn. It also
measures: median us per query on both scoring paths (in-process), phrases/s for a POST of 1,000
phrases over HTTP, `predict.py` wall time over Kaggle's test.tsv, time from start to a 200 on
/health, and the memory (RSS and PSS) of gunicorn's master and workers. The figures and what they
show are in benchmarks/README.md.
"""
import argparse
import importlib
import io
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_scoring
import requests
from werkzeug.test import EnvironBuilder

import model
from tests.support import Server, build_models, write_tiny_kaggle

ROOT = bench_scoring.ROOT
APPS = {"service": "app:app", "baseline": "benchmarks.tutorial_app:app", "constant": "benchmarks.constant_app:app",
        "stack": "benchmarks.stack_constant_app:app", "no-ops": "benchmarks.no_ops_app:app", "explain": "app:app"}
OTHERS = ("baseline", "constant", "stack")  # the table's ratio columns
# The service asked to explain every answer (the same app; the query adds explain=true).
EXPLAINED = {"explain"}
QUERY = "a charming and often affecting journey"  # a short phrase, as a user types it


def ready_seconds(server, path):
    """Seconds from the server's start until `path` answers 200."""
    server.wait_healthy(path, timeout=60)
    return time.perf_counter() - server.started


def memory(server):
    """(RSS MiB, PSS MiB) of the master and of each worker."""
    return [memory_mib(server.process.pid)] + [memory_mib(pid) for pid in sorted(server.workers())]


def workers_cpu_s(server):
    """CPU seconds (user + system) the live workers have used so far."""
    return sum(cpu_seconds(pid) for pid in server.workers())


def memory_mib(pid):
    """(RSS, PSS) of a process in MiB, from /proc/PID/smaps_rollup."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("Rss", "Pss"))


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, *, seconds, threads=2, connections=8):
    """Run wrk once; return requests/s, p50 and p99 latency (ms), the error count and the requests sent."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency_ms(output, "50%"), "p99": latency_ms(output, "99%"),
            "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0),
            "requests": int(re.search(r"(\d+) requests in", output).group(1))}


def latency_ms(output, percentile):
    """One percentile of wrk's latency distribution, in milliseconds."""
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_rounds(servers, *, rounds, seconds):
    """Alternate wrk runs over the servers; return each server's list of per-round results.

    Each result also has `cpu_us`, the workers' CPU time per request: unlike requests/s it does not
    count wrk's share of the two cores, so it shows what each app itself costs.
    """
    url_path = "/?query=" + requests.utils.quote(QUERY)
    results = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            before = workers_cpu_s(server)
            result = wrk(server.url + url_path + ("&explain=true" if name in EXPLAINED else ""), seconds=seconds)
            result["cpu_us"] = (workers_cpu_s(server) - before) / max(result["requests"], 1) * 1e6
            results[name].append(result)
    return results


def load_table(results, in_process):
    """One line per app (medians over rounds), the median per-round ratios, and the CPU costs."""
    lines = [f"{'app':<9} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
             f"{'vs baseline':>11} {'vs constant':>11} {'vs stack':>11} {'worker CPU us/req':>17} "
             f"{'in-process us/GET':>17}"]
    for name, runs in results.items():
        ratios = [ratio_text([r["rps"] / b["rps"] for r, b in zip(runs, results[other])])
                  for other in OTHERS]
        lines.append(f"{name:<9} {median(runs, 'rps'):>10,.0f} {median(runs, 'p50'):>7.2f} "
                     f"{median(runs, 'p99'):>7.2f} {sum(r['errors'] for r in runs):>6} "
                     f"{ratios[0]:>11} {ratios[1]:>11} {ratios[2]:>11} {median(runs, 'cpu_us'):>17.0f} "
                     f"{in_process[name]:>17.1f}")
    return "\n".join(lines)


def median(runs, key):
    """The median of one figure over rounds."""
    return statistics.median(r[key] for r in runs)


def ratio_text(ratios):
    """The median of per-round ratios: each round's apps ran back to back, under the same noise."""
    return f"{statistics.median(ratios):.2f}x"


def in_process_us(target, model_dir, metrics_dir, *, calls, explain=False):
    """Median us per GET /?query=... through one app's WSGI callable, with no server and no network.

    Each app is timed in a process of its own (this script with --wsgi-us), as the stack app patches
    the model class. Set beside the workers' CPU per request, it shows what gunicorn adds.
    """
    metrics_dir.mkdir()
    environment = {**os.environ, "MODEL_DIR": str(model_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    done = subprocess.run([sys.executable, __file__, "--wsgi-us", target, "--calls", str(calls),
                           *(["--explain"] if explain else [])], cwd=ROOT,
                          env=environment, capture_output=True, text=True, check=True)
    return float(done.stdout)


def time_wsgi(target, calls, *, explain=False):
    """Import `target` (module:name), call it `calls` times with the benchmark's GET, print the median us."""
    sys.stdout = open(os.devnull, "w")  # the apps' access lines; the figure goes to the real stdout
    sys.path.insert(0, str(ROOT))
    module, name = target.split(":")
    application = getattr(importlib.import_module(module), name)
    query = {"query": QUERY, **({"explain": "true"} if explain else {})}
    base = EnvironBuilder(path="/", query_string=query).get_environ()

    def get():
        body = application(dict(base, **{"wsgi.input": io.BytesIO(b"")}), lambda status, headers, exc_info=None: None)
        try:
            b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    for _ in range(calls // 4):  # warm-up
        get()
    means = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            get()
        means.append((time.perf_counter() - started) / calls * 1e6)
    print(statistics.median(means), file=sys.__stdout__)


def post_batch_rate(url, phrases, *, repeats):
    """Phrases per second for POST / with a batch of 1,000 phrases (median over `repeats`)."""
    batch = (phrases * (1000 // len(phrases) + 1))[:1000]
    timings = []
    with requests.Session() as session:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            response = session.post(url + "/", json={"queries": batch}, timeout=60)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
    return 1000 / statistics.median(timings[1:])


def predict_wall_s(test_file, model_dir, out, *, repeats):
    """Median wall seconds, and CPU seconds, of `python predict.py TEST -o OUT`, start-up included."""
    timings, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "predict.py"), str(test_file), "-o", str(out),
                        "--model-dir", str(model_dir)], check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(timings), statistics.median(cpu)


def start_service(model_dir, tmp, *, extra_args, label):
    """Launch the service alone; return it, the seconds to a 200 on /health, and its memory then."""
    server = Server(model_dir, target=APPS["service"], log_path=tmp / f"{label}.log", args=extra_args)
    seconds = ready_seconds(server, "/health")
    time.sleep(0.5)  # let every worker finish booting, so all of them are counted
    return server, seconds, memory(server)


def extra_startups(model_dir, tmp, *, repeats, extra_args):
    """Seconds to a healthy /health for `repeats` more launches of the service, each stopped at once."""
    timings = []
    for i in range(repeats):
        server = Server(model_dir, target=APPS["service"], log_path=tmp / f"start{i}.log", args=extra_args)
        try:
            timings.append(ready_seconds(server, "/health"))
        finally:
            server.stop()
    return timings


def main(argv=None):
    """Build models, start the five apps, measure, print the table and the other figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, one 1-second round: a few seconds")
    parser.add_argument("--rounds", type=int, default=7, help="wrk rounds per app (default 7)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--gunicorn-arg", action="append", default=[], metavar="ARG",
                        help="extra gunicorn argument for every app, e.g. --gunicorn-arg=--workers=3 "
                             "(to compare settings; the default is gunicorn.conf.py alone)")
    parser.add_argument("--wsgi-us", metavar="MODULE:APP",
                        help="only time GETs through MODULE:APP's WSGI callable in this process (needs MODEL_DIR) "
                             "and print the median us: the table's in-process column")
    parser.add_argument("--calls", type=int, default=2000, help="GETs per timing with --wsgi-us (default 2000)")
    parser.add_argument("--explain", action="store_true", help="with --wsgi-us: GETs with explain=true")
    args = parser.parse_args(argv)
    if args.wsgi_us:
        time_wsgi(args.wsgi_us, args.calls, explain=args.explain)
        return 0
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is not installed; on Debian/Ubuntu: apt-get install -y wrk")
    rounds, seconds = (1, 1) if args.smoke else (args.rounds, args.seconds)
    extra = args.gunicorn_arg
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        tmp = Path(tmp)
        data_dir = write_tiny_kaggle(tmp / "data") if args.smoke else bench_scoring.kaggle_data_dir()
        model_dir = build_models(bench_scoring.train_file(data_dir), tmp / "models")
        phrases = bench_scoring.test_phrases(data_dir)
        test_file = next(p for p in (data_dir / "test.tsv.gz", data_dir / "test.tsv") if p.is_file())

        startups = extra_startups(model_dir, tmp, repeats=0 if args.smoke else 2, extra_args=extra)
        servers = {}
        try:
            servers["service"], first_startup, memory = start_service(model_dir, tmp, extra_args=extra,
                                                                      label="service")
            startup = statistics.median([first_startup, *startups])
            others = [name for name in APPS if name != "service"]
            for name in others:
                servers[name] = Server(model_dir, target=APPS[name], log_path=tmp / f"{name}.log", args=extra)
            for name in others:
                ready_seconds(servers[name], "/?query=ready")
            results = load_rounds(servers, rounds=rounds, seconds=seconds)
            batch_rate = post_batch_rate(servers["service"].url, phrases, repeats=3 if args.smoke else 10)
        finally:
            for server in servers.values():
                server.stop()
        in_process = {name: in_process_us(target, model_dir, tmp / f"metrics-{name}", calls=200 if args.smoke else 2000,
                                          explain=name in EXPLAINED) for name, target in APPS.items()}
        fine = bench_scoring.short_phrases(phrases, count=200 if args.smoke else 3000)
        scorer = model.SentimentModel.load(model_dir / "fine-grained")
        fast_us = bench_scoring.median_us_per_query(scorer.scorer_.predict_proba, fine)
        sklearn_us = bench_scoring.median_us_per_query(scorer.predict_proba_sklearn, fine)
        predict_s, predict_cpu_s = predict_wall_s(test_file, model_dir, tmp / "submission.csv",
                                                  repeats=1 if args.smoke else 3)

    print(f"GET /?query=<{len(QUERY.split())} words>, wrk -t2 -c8, {rounds} round(s) of {seconds} s per app, "
          f"alternating; medians over rounds; gunicorn.conf.py{' ' + ' '.join(extra) if extra else ''}")
    print(load_table(results, in_process))
    explained = statistics.median(e["rps"] / p["rps"] for e, p in zip(results["explain"], results["service"]))
    print(f"\nGET with explain=true against the same GET without: {explained:.2f}x requests/s "
          "(median of per-round ratios)")
    print(f"scoring in-process, fine-grained model, median per short query: fast {fast_us:.1f} us, "
          f"scikit-learn {sklearn_us:.1f} us")
    print(f"POST / with 1,000 phrases over HTTP: {batch_rate:,.0f} phrases/s")
    print(f"predict.py over {test_file.name} ({len(phrases):,} phrases): {predict_s:.2f} s wall "
          f"({predict_cpu_s:.2f} s CPU), start-up included")
    print(f"start-up to a 200 on /health: {startup:.2f} s")
    print("memory after start-up, MiB: " + "; ".join(
        f"{'master' if i == 0 else f'worker {i}'} RSS {rss:.0f} PSS {pss:.0f}" for i, (rss, pss) in enumerate(memory))
        + f"; total PSS {sum(pss for _, pss in memory):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
