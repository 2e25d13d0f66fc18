"""Serving benchmark: the service against the tutorial's way and against Flask-RESTful's ceiling.

    python benchmarks/bench_serving.py                        # full run: models from $KAGGLE_DATA_DIR, ~8 minutes
    python benchmarks/bench_serving.py --before /tmp/before   # and the code of another checkout beside it
    python benchmarks/bench_serving.py --apps service,log-off,postgres --rounds 15 --seconds 3   # a few rows
    python benchmarks/bench_serving.py --smoke                # a few seconds on tiny data (what CI runs)
    python benchmarks/bench_serving.py --classifier naive-bayes --before /tmp/before   # the old family, beside it
    python benchmarks/bench_serving.py --apps other --other-model naive-bayes/words    # this recipe against another

In one run on loopback it builds both models into a temp dir (with build_model.py's default recipe, or the
family and features --classifier and --features give), then starts under gunicorn, each with
the repo's real gunicorn.conf.py:

  service   `app:app`, the real service (GET /?query=..., fast scorer), recording every answer in its
            prediction log on SQLite (the default);
  log-off   the same with PREDICTION_LOG=off: nothing recorded;
  postgres  the same recording on PostgreSQL (a private cluster on loopback that the run starts and
            removes; --no-postgres leaves this row out);
  before    with --before DIR, `app:app` of the checkout in DIR, run there with its own gunicorn.conf.py
            and serving models built by its own build_model.py (its defaults: an older checkout may not
            read the files of today's recipes); its in-process figure comes from that checkout's own
            `bench_serving.py --wsgi-us`;
  other     with --other-model FAMILY/FEATURES, the service (recording on SQLite) serving models built
            with that family and features instead: one recipe's cost against another's, in one sitting;
  baseline  `benchmarks.tutorial_app:app`, scikit-learn transform + predict + predict_proba per request;
  constant  `benchmarks.constant_app:app`, a bare Flask-RESTful app answering a constant (the
            framework's ceiling);
  stack     `benchmarks.stack_constant_app:app`, this service's whole stack (parsing, request ids,
            access log, metrics, CORS, headers, recording on SQLite) with scoring replaced by a
            constant (the service's ceiling: the gap to it is what scoring costs);
  no-ops    `benchmarks.no_ops_app:app`, the service parsing, scoring and recording on SQLite without
            its per-request operations (request ids, headers, CORS, metrics, access log): the gap to
            the service is what those cost;
  explain   the service asked to explain every answer (`&explain=true`);
  v2        the service spoken to in the Open Inference Protocol: wrk POSTs one text to
            /v2/models/binary/infer (JSON, every output), and the POST rounds send the same 1,000
            phrases there as the others send to POST /;
  ratings   the service asked a film's rating (GET /ratings, typed query parameters) instead of a
            text's sentiment: the tabular regressor against the text classifier, in the same app;
  added-linear, added-forest
            the service asked for a house's price (GET /houses, GET /forest: typed query parameters)
            by a Ridge pipeline and a 50-tree random forest added with `release.py add` (made-up
            houses, fitted here on 1,000 of them; the forest's trees are about 20 deep);
  shadow    the service with a version of each model in shadow (`release.py shadow`): every text is
            scored by the shadow too, its label counted and recorded. The shadow is a copy of the live
            version under another folder: the same size and cost as any other version of the recipe.
Every server records to a database of its own in the run's temp dir, never the checkout's state/.
wrk (Debian package `wrk`; -t2 -c8) drives each in alternating rounds (the apps in turn, forwards
then backwards, so no app always runs after the same one), so machine noise hits all alike; the
table shows medians over rounds, the median of the per-round ratios, the CPU time the app's gunicorn
workers spent per request (from /proc; wrk's own share left out; the prediction log's writer processes
included), and the time the same GET takes through the app's WSGI callable in-process, without
gunicorn (the prediction log's writer running beside it). It then measures POST / with 1,000 phrases
(phrases/s) on service, log-off, postgres and before, in alternating bursts, and checks that every
recording server wrote a row for each answer it gave and dropped none
(sentiment_prediction_log_dropped_total in its /metrics); if one did not, it says so and exits 1.
It also measures: median us per query on both scoring paths (in-process), `predict.py` wall time
over Kaggle's test.tsv, time from start to a 200 on /health, and the memory (RSS and PSS) of
gunicorn's master, workers and writers. The figures and what they show are in benchmarks/README.md.
"""
import argparse
import contextlib
import importlib
import io
import json
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

import kinds
from serving import lifecycle, prediction_log
from store import artifacts, releases
from tests.support import PostgresCluster, Server, build_models, postgres_bin, write_tiny_kaggle, write_tiny_movies
from training import recipes

ROOT = bench_scoring.ROOT
APPS = {"service": "app:app", "log-off": "app:app", "postgres": "app:app", "before": "app:app",
        "baseline": "benchmarks.tutorial_app:app", "constant": "benchmarks.constant_app:app",
        "stack": "benchmarks.stack_constant_app:app", "no-ops": "benchmarks.no_ops_app:app", "explain": "app:app",
        "v2": "app:app", "shadow": "app:app", "other": "app:app", "ratings": "app:app", "added-linear": "app:app",
        "added-forest": "app:app"}
OTHERS = ("baseline", "constant", "stack", "log-off")  # the table's ratio columns
# The service asked to explain every answer (the same app; the query adds explain=true).
EXPLAINED = {"explain"}
# The rows whose app keeps a prediction log of this checkout (checked at the end), and where it is kept.
RECORDING = {"service": "SQLite", "postgres": "PostgreSQL", "stack": "SQLite", "no-ops": "SQLite", "explain": "SQLite",
            "v2": "SQLite", "shadow": "SQLite", "other": "SQLite", "ratings": "SQLite", "added-linear": "SQLite",
            "added-forest": "SQLite"}
# The rows whose POST / (v2: its infer) is measured.
POSTED = ("service", "log-off", "postgres", "before", "v2", "other")
QUERY = "a charming and often affecting journey"  # a short phrase, as a user types it
V2_INFER = "/v2/models/binary/infer"
# The ratings row's GET: a film as a person describes it (vega-datasets knows its director).
RATINGS_PATH = "/ratings?genre=Drama&budget=20000000&director=Christopher%20Nolan&release_year=2008"
# The added models' rows: a house as a person describes it, to a linear pipeline and a 50-tree forest added
# with `release.py add` (made-up house prices, tests/support.py's).
HOUSE = "area=north&rooms=3&age=20&distance=1.5"
OTHER_PATHS = {"ratings": RATINGS_PATH, "added-linear": "/houses?" + HOUSE, "added-forest": "/forest?" + HOUSE}


def v2_body(texts):
    """An Open Inference Protocol request for `texts`, as JSON."""
    return json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]})


def wrk_script(folder):
    """A wrk script that POSTs the v2 row's one-text inference request; its path."""
    path = Path(folder) / "v2-infer.lua"
    path.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = {json.dumps(v2_body([QUERY]))}\n")
    return path


def ready_seconds(server, path):
    """Seconds from the server's start until `path` answers 200."""
    server.wait_healthy(path, timeout=60)
    return time.perf_counter() - server.started


def memory(server):
    """(name, RSS MiB, PSS MiB) of the master, of each worker and of each prediction-log writer process."""
    return ([("master", *memory_mib(server.process.pid))]
            + [(f"worker {i}", *memory_mib(pid)) for i, pid in enumerate(sorted(server.workers()), 1)]
            + [(f"writer {i}", *memory_mib(pid)) for i, pid in enumerate(sorted(server.writers()), 1)])


def workers_cpu_s(server):
    """CPU seconds (user + system) the live workers and their prediction-log writers have used so far."""
    return sum(cpu_seconds(pid) for pid in server.workers() | server.writers())


def memory_mib(pid):
    """(RSS, PSS) of a process in MiB, from /proc/PID/smaps_rollup."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("Rss", "Pss"))


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, *, seconds, threads=2, connections=8, script=None):
    """Run wrk once (with `script`, a Lua file, for other requests than GET); return requests/s, p50 and
    p99 latency (ms), the error count and the requests sent."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               *(["-s", str(script)] if script else []), url]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode} on {url}: {done.stdout.strip()} {done.stderr.strip()}")
    output = done.stdout
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


def movies_file():
    """vega-datasets' movies.json, from MOVIES_DATA_DIR (default ../shared/data/vega-movies); exit if absent."""
    folder = Path(os.environ.get("MOVIES_DATA_DIR", ROOT.parent / "shared" / "data" / "vega-movies"))
    if not (folder / "movies.json").is_file():
        sys.exit(f"error: no movies.json in {folder}; set MOVIES_DATA_DIR (or use --smoke).")
    return folder / "movies.json"


def in_turn(servers, round_number):
    """The servers in this round's order: forwards, then backwards, so no app always runs after the same one."""
    order = list(servers.items())
    return order if round_number % 2 == 0 else order[::-1]


def load_rounds(servers, *, rounds, seconds, script=None):
    """Alternate wrk runs over the servers; return each server's list of per-round results.

    Each result also has `cpu_us`, the workers' CPU time per request: unlike requests/s it does not
    count wrk's share of the two cores, so it shows what each app itself costs. The v2 row POSTs with
    `script` to its inference path.
    """
    url_path = "/?query=" + requests.utils.quote(QUERY)
    results = {name: [] for name in servers}
    for round_number in range(rounds):
        for name, server in in_turn(servers, round_number):
            before = workers_cpu_s(server)
            try:
                if name == "v2":
                    result = wrk(server.url + V2_INFER, seconds=seconds, script=script)
                elif name in OTHER_PATHS:
                    result = wrk(server.url + OTHER_PATHS[name], seconds=seconds)
                else:
                    result = wrk(server.url + url_path + ("&explain=true" if name in EXPLAINED else ""),
                                 seconds=seconds)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{name}'s gunicorn (exit status {server.process.poll()}) said:\n"
                                   + server.output()[-3000:]) from None
            result["cpu_us"] = (workers_cpu_s(server) - before) / max(result["requests"], 1) * 1e6
            results[name].append(result)
    return results


def load_table(results, in_process):
    """One line per app (medians over rounds), the median per-round ratios, and the CPU costs."""
    others = [other for other in OTHERS if other in results]
    lines = [f"{'app':<9} {'requests/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
             + "".join(f"{'vs ' + other:>12} " for other in others)
             + f"{'worker CPU us/req':>17} {'in-process us/GET':>17}"]
    for name, runs in results.items():
        ratios = [ratio_text(round_ratios(results, name, other)) for other in others]
        lines.append(f"{name:<9} {median(runs, 'rps'):>10,.0f} {median(runs, 'p50'):>7.2f} "
                     f"{median(runs, 'p99'):>7.2f} {sum(r['errors'] for r in runs):>6} "
                     + "".join(f"{ratio:>12} " for ratio in ratios)
                     + f"{median(runs, 'cpu_us'):>17.0f} {in_process[name]:>17.1f}")
    return "\n".join(lines)


def median(runs, key):
    """The median of one figure over rounds."""
    return statistics.median(r[key] for r in runs)


def round_ratios(results, name, other, key="rps"):
    """`name`'s figure over `other`'s, round by round: each round's apps ran back to back, under the same noise."""
    return [r[key] / o[key] for r, o in zip(results[name], results[other])]


def ratio_text(ratios):
    """The median of per-round ratios."""
    return f"{statistics.median(ratios):.2f}x"


def ratio_line(label, ratios):
    """A comparison as printed: the median of the per-round ratios, then each round's."""
    return f"{label}: {ratio_text(ratios)} (rounds: {' '.join(f'{r:.2f}' for r in ratios)})"


def in_process_us(target, model_dir, metrics_dir, *, calls, explain=False, v2=False, path=None, env=None,
                  root=ROOT):
    """Median us per GET /?query=... through one app's WSGI callable, with no server and no network.

    Each app is timed in a process of its own (the --wsgi-us mode of `root`'s copy of this script), as
    the stack app patches the model class. Set beside the workers' CPU per request, it shows what
    gunicorn adds.
    """
    metrics_dir.mkdir()
    environment = {**os.environ, "MODEL_DIR": str(model_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                   **(env or {})}
    done = subprocess.run([sys.executable, str(Path(root) / "benchmarks" / "bench_serving.py"), "--wsgi-us", target,
                           "--calls", str(calls), *(["--explain"] if explain else []), *(["--v2"] if v2 else []),
                           *(["--path", path] if path else [])],
                          cwd=root,
                          env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"timing {target} in-process in {root} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout)


def time_wsgi(target, calls, *, explain=False, v2=False, path=None):
    """Import `target` (module:name), call it `calls` times with the benchmark's GET (with `v2`, its
    Open Inference Protocol request of the same text), print the median us.

    The app's per-process services (the prediction log's writer) run meanwhile, as in a worker.
    """
    sys.stdout = open(os.devnull, "w")  # the apps' access lines; the figure goes to the real stdout
    sys.path.insert(0, str(ROOT))
    module, name = target.split(":")
    application = getattr(importlib.import_module(module), name)
    query = {"query": QUERY, **({"explain": "true"} if explain else {})}
    request_body = v2_body([QUERY]).encode() if v2 else b""
    if path:  # another GET, e.g. the ratings row's
        base = EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2]).get_environ()
    else:
        base = (EnvironBuilder(path=V2_INFER, method="POST", data=request_body, content_type="application/json")
                if v2 else EnvironBuilder(path="/", query_string=query)).get_environ()

    def get():
        body = application(dict(base, **{"wsgi.input": io.BytesIO(request_body)}),
                           lambda status, headers, exc_info=None: None)
        try:
            b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    lifecycle.start_services(application)
    try:
        for _ in range(calls // 4):  # warm-up
            get()
        means = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                get()
            means.append((time.perf_counter() - started) / calls * 1e6)
    finally:
        lifecycle.stop_services(application, lifecycle.STOP_TIMEOUT)
    print(statistics.median(means), file=sys.__stdout__)


def post_rounds(servers, phrases, *, rounds, posts):
    """Alternate bursts of `posts` POSTs of 1,000 phrases over the servers; each one's phrases/s per round.

    A burst's POSTs go back to back on one connection, so a recording server's writer process inserts
    one POST's rows while the next is scored; after each burst the run waits a second, so that
    writer finishes before the next server's burst.
    """
    batch = (phrases * (1000 // len(phrases) + 1))[:1000]
    # The same phrases to every row: POST / {"queries": [...]}, and for v2 its inference request.
    bodies = {name: (V2_INFER, v2_body(batch)) if name == "v2" else ("/", json.dumps({"queries": batch}))
              for name in servers}
    sessions = {name: requests.Session() for name in servers}
    results = {name: [] for name in servers}

    def post(name):
        path, body = bodies[name]
        sessions[name].post(servers[name].url + path, data=body, headers={"Content-Type": "application/json"},
                            timeout=60).raise_for_status()

    try:
        for name in servers:  # warm-up
            post(name)
        for round_number in range(rounds):
            for name, _ in in_turn(servers, round_number):
                started = time.perf_counter()
                for _ in range(posts):
                    post(name)
                results[name].append({"rate": posts * len(batch) / (time.perf_counter() - started)})
                time.sleep(1.0)
    finally:
        for session in sessions.values():
            session.close()
    return results


def post_table(results, *, rounds, posts):
    """POST / phrases/s of each app (median over rounds) and its per-round ratios to the service with no log."""
    lines = [f"POST / with 1,000 phrases over HTTP, {rounds} round(s) of {posts} POSTs back to back per app, "
             "alternating; medians over rounds",
             f"{'app':<9} {'phrases/s':>10} {'vs log-off':>11}  per round vs log-off"]
    for name, runs in results.items():
        ratios = round_ratios(results, name, "log-off", key="rate")
        lines.append(f"{name:<9} {median(runs, 'rate'):>10,.0f} {ratio_text(ratios):>11}  "
                     + " ".join(f"{r:.2f}" for r in ratios))
    return "\n".join(lines)


def dropped_rows(server):
    """sentiment_prediction_log_dropped_total in the server's /metrics, summed over its reasons."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    return sum(float(n) for n in re.findall(r"^sentiment_prediction_log_dropped_total\{[^}]*\} (\S+)$", text, re.M))


def rows_written(url):
    """The rows in a prediction log's predictions table."""
    return len(prediction_log.read_predictions(url))


def recording_check(logs, answered, dropped):
    """A line per recording server: rows written for the answers it gave, and rows dropped; and whether all is well.

    Rows may exceed answers by the requests still in flight when a wrk run ended (answered, not counted).
    """
    lines = ["prediction log: rows written for the answers the clients counted, and "
             "sentiment_prediction_log_dropped_total in /metrics"]
    complete = True
    for name, url in logs.items():
        written = rows_written(url)
        complete &= written >= answered[name] and dropped[name] == 0
        lines.append(f"{name:<9} {RECORDING[name]:<10} {written:>10,} rows for {answered[name]:>10,} answers, "
                     f"dropped {dropped[name]:,.0f}")
    if not complete:
        lines.append("ROWS DROPPED OR MISSING: a recording row above did not record every answer, "
                     "so its figures are not those of full recording")
    return "\n".join(lines), complete


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


def add_pipelines(model_dir, tmp):
    """Add the rows added-linear and added-forest's models to `model_dir`, as a data scientist would: a
    Ridge pipeline at /houses and a 50-tree random forest on the same columns at /forest."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline

    from tests.support import house_pipeline, save_estimator
    from training import adopt

    fitted, held_out = house_pipeline(rows=4000)
    held_out.to_csv(tmp / "houses.csv", index=False)
    inputs = held_out.drop(columns="price")
    forest = Pipeline([("prepare", fitted.steps[0][1]), ("model", RandomForestRegressor(n_estimators=50,
                                                                                        random_state=0))])
    forest.fit(inputs, held_out["price"])
    with contextlib.redirect_stdout(io.StringIO()):
        adopt.add("houses", save_estimator(fitted, tmp / "houses.skops"), tmp / "houses.csv", model_dir=model_dir)
        adopt.add("forest", save_estimator(forest, tmp / "forest.skops"), tmp / "houses.csv", model_dir=model_dir)


def start_service(model_dir, tmp, *, env, extra_args, label):
    """Launch the service alone; return it, the seconds to a 200 on /health, and its memory then."""
    server = Server(model_dir, target=APPS["service"], env=env, log_path=tmp / f"{label}.log", args=extra_args)
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


def checkout(folder):
    """The other checkout of --before, as a Path; exit if it holds no app.py and gunicorn.conf.py."""
    folder = Path(folder).resolve()
    if not (folder / "app.py").is_file() or not (folder / "gunicorn.conf.py").is_file():
        sys.exit(f"error: --before {folder}: no app.py and gunicorn.conf.py there; give a checkout of this "
                 "repository, e.g. `git worktree add /tmp/before COMMIT`.")
    return folder


def commit_of(folder):
    """The short commit of a git checkout, or 'not a git checkout'."""
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "not a git checkout"


def main(argv=None):
    """Build models, start the apps, measure, print the tables and the other figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, one 1-second round: a few seconds")
    parser.add_argument("--rounds", type=int, default=7, help="wrk rounds per app (default 7)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--before", metavar="DIR",
                        help="also serve app:app of the checkout in DIR (e.g. a git worktree of an older commit), "
                             "the row `before`")
    parser.add_argument("--apps", metavar="NAMES",
                        help="only these rows, comma-separated, e.g. service,log-off,postgres,before: fewer apps "
                             "for more rounds in the same time (service and log-off are always run)")
    parser.add_argument("--classifier", choices=recipes.FAMILIES,
                        help="build this checkout's models with this family (default: build_model.py's)")
    parser.add_argument("--features", choices=recipes.FEATURES,
                        help="build this checkout's models over these features (default: the family's)")
    parser.add_argument("--other-model", metavar="FAMILY/FEATURES", type=other_recipe,
                        help="also serve models built with this family and features, the row `other`, e.g. "
                             "naive-bayes/words")
    parser.add_argument("--no-postgres", action="store_true",
                        help="leave out the row recording on PostgreSQL (needs Debian's postgresql otherwise)")
    parser.add_argument("--gunicorn-arg", action="append", default=[], metavar="ARG",
                        help="extra gunicorn argument for every app, e.g. --gunicorn-arg=--workers=3 "
                             "(to compare settings; the default is gunicorn.conf.py alone)")
    parser.add_argument("--wsgi-us", metavar="MODULE:APP",
                        help="only time GETs through MODULE:APP's WSGI callable in this process (needs MODEL_DIR) "
                             "and print the median us: the table's in-process column")
    parser.add_argument("--calls", type=int, default=2000, help="GETs per timing with --wsgi-us (default 2000)")
    parser.add_argument("--explain", action="store_true", help="with --wsgi-us: GETs with explain=true")
    parser.add_argument("--v2", action="store_true", help="with --wsgi-us: the Open Inference Protocol's POST")
    parser.add_argument("--path", help="with --wsgi-us: GET this path and query instead, e.g. the ratings row's")
    args = parser.parse_args(argv)
    if args.wsgi_us:
        time_wsgi(args.wsgi_us, args.calls, explain=args.explain, v2=args.v2, path=args.path)
        return 0
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is not installed; on Debian/Ubuntu: apt-get install -y wrk")
    before = checkout(args.before) if args.before else None
    names = [name for name in APPS if not (name == "postgres" and args.no_postgres) and (name != "before" or before)
             and (name != "other" or args.other_model)]
    if args.apps:
        chosen = {"service", "log-off", *args.apps.split(",")}
        if chosen - set(APPS):
            sys.exit(f"error: --apps: no app {', '.join(sorted(chosen - set(APPS)))}; the apps are {', '.join(APPS)}")
        if "before" in chosen and not before:
            sys.exit("error: --apps before needs --before DIR, the checkout to run")
        if "other" in chosen and not args.other_model:
            sys.exit("error: --apps other needs --other-model FAMILY/FEATURES, the models to serve")
        names = [name for name in names if name in chosen]
    if "postgres" in names and postgres_bin("initdb") is None:
        sys.exit("error: PostgreSQL's server programs are not installed (apt-get install -y postgresql); "
                 "or leave out the PostgreSQL row with --no-postgres")
    roots = {name: before if name == "before" else ROOT for name in names}
    rounds, seconds = (1, 1) if args.smoke else (args.rounds, args.seconds)
    posts = 3 if args.smoke else 10
    extra = args.gunicorn_arg
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        tmp = Path(tmp)
        cluster = PostgresCluster() if "postgres" in names else None
        try:
            served = {name: log_url(name, "served", tmp, cluster) for name in names}
            recipe = {"classifier": args.classifier, "features": args.features}
            figures = measure(names, roots, served, tmp, smoke=args.smoke, rounds=rounds, seconds=seconds,
                              posts=posts, extra=extra, recipe=recipe, other=args.other_model)
            recorded, complete = recording_check({name: served[name] for name in names if name in RECORDING},
                                                 figures["answered"], figures["dropped"])
            in_process = {name: in_process_us(APPS[name], figures["model_dirs"][name], tmp / f"metrics-{name}",
                                              calls=200 if args.smoke else 2000, explain=name in EXPLAINED,
                                              v2=name == "v2", path=OTHER_PATHS.get(name),
                                              env={"PREDICTION_LOG": log_url(name, "in-process", tmp, cluster)},
                                              root=roots[name])
                          for name in names}
        finally:
            if cluster is not None:
                cluster.remove()
    print_figures(figures, in_process, recorded, before=before, rounds=rounds, seconds=seconds, posts=posts,
                  extra=extra, recipe=recipe_text(args.classifier, args.features), other=args.other_model)
    return 0 if complete else 1


def other_recipe(value):
    """--other-model's FAMILY/FEATURES as {"classifier": ..., "features": ...}."""
    family, _, features = value.partition("/")
    if family not in recipes.FAMILIES or features not in recipes.FEATURES:
        raise argparse.ArgumentTypeError(f"{value!r}: give FAMILY/FEATURES, FAMILY one of "
                                         f"{', '.join(recipes.FAMILIES)} and FEATURES one of "
                                         f"{', '.join(recipes.FEATURES)}")
    return {"classifier": family, "features": features}


def recipe_text(classifier, features):
    """How the run's models were built, as printed."""
    if classifier is None and features is None:
        return "build_model.py's default recipe"
    return f"{classifier or 'the default family'} over {features or 'its default features'}"


def build_args(recipe):
    """build_model.py's arguments for a recipe's family and features (none: its defaults)."""
    return [arg for key in ("classifier", "features") if recipe.get(key) for arg in (f"--{key}", recipe[key])]


def start_build_elsewhere(root, train, out, log_path):
    """Start `root`'s own build_model.py on `train` into `out` (a checkout's models, as its code builds them);
    return the process, with its output going to `log_path`."""
    with open(log_path, "w") as log_file:
        return subprocess.Popen([sys.executable, "build_model.py", "--data", str(train), "--out", str(out)],
                                cwd=root, stdout=log_file, stderr=subprocess.STDOUT)


def finish_build(process, out, log_path):
    """Wait for a build started by `start_build_elsewhere`; return `out`, or raise with its output."""
    if process.wait() != 0:
        raise RuntimeError(f"building the models in {out} failed:\n{Path(log_path).read_text()[-3000:]}")
    return Path(out)


def shadowed_copy(model_dir, folder):
    """A copy of `model_dir` in `folder` where each model has a copy of its live version in shadow."""
    copy = shutil.copytree(model_dir, folder, symlinks=True)
    for name in releases.model_names(copy):
        twin = copy / artifacts.VERSIONS_DIR / f"{name}-copied-{time.time_ns()}"
        shutil.copytree(releases.live_folder(copy, name), twin)
        releases.shadow(copy, name, twin.name, verify=kinds.load, why="the serving benchmark")
    return copy


def log_url(name, kind, tmp, cluster):
    """Where row `name` keeps its prediction log (`kind`: "served" or "in-process"): a database of its own."""
    if name == "log-off":
        return "off"
    if name == "postgres":
        return cluster.database(f"bench_{kind.replace('-', '_')}")
    return f"sqlite:///{tmp}/{name}-{kind}.sqlite3"


def measure(names, roots, logs, tmp, *, smoke, rounds, seconds, posts, extra, recipe, other):
    """Build the models, start the apps, load them in turn, and take the other figures; return them all."""
    data_dir = write_tiny_kaggle(tmp / "data") if smoke else bench_scoring.kaggle_data_dir()
    train = bench_scoring.train_file(data_dir)
    # The checkout before builds its own models, beside this one's build (on the other core).
    building = (start_build_elsewhere(roots["before"], train, tmp / "models-before", tmp / "build-before.log")
                if "before" in names else None)
    # The ratings model too, served by the same app (the row `ratings`): vega-datasets' movies.json from
    # MOVIES_DATA_DIR, or with --smoke the tests' tiny films.
    movies = write_tiny_movies(tmp / "data-movies") if smoke else movies_file()
    model_dir = build_models(train, tmp / "models", args=build_args(recipe), movies=movies)
    if {"added-linear", "added-forest"} & set(names):
        add_pipelines(model_dir, tmp)
    phrases = bench_scoring.test_phrases(data_dir)
    test_file = next(p for p in (data_dir / "test.tsv.gz", data_dir / "test.tsv") if p.is_file())

    startups = extra_startups(model_dir, tmp, repeats=0 if smoke else 2, extra_args=extra)
    model_dirs = {name: model_dir for name in names}
    if building is not None:
        model_dirs["before"] = finish_build(building, tmp / "models-before", tmp / "build-before.log")
    if "other" in names:
        model_dirs["other"] = build_models(train, tmp / "models-other", args=build_args(other))
    if "shadow" in names:
        model_dirs["shadow"] = shadowed_copy(model_dir, tmp / "models-shadowed")
    servers = {}
    try:
        servers["service"], first_startup, memory_after = start_service(
            model_dir, tmp, env={"PREDICTION_LOG": logs["service"]}, extra_args=extra, label="service")
        others = [name for name in names if name != "service"]
        for name in others:
            servers[name] = Server(model_dirs[name], target=APPS[name], env={"PREDICTION_LOG": logs[name]},
                                   log_path=tmp / f"{name}.log", args=extra, root=roots[name])
        for name in others:
            ready_seconds(servers[name], "/?query=ready")
        results = load_rounds(servers, rounds=rounds, seconds=seconds, script=wrk_script(tmp))
        posted = post_rounds({name: servers[name] for name in POSTED if name in servers}, phrases,
                             rounds=rounds, posts=posts)
        # What the clients saw answered: the GET that said ready, wrk's GETs, the POSTs (and their warm-up).
        answered = {name: (name != "service") + sum(r["requests"] for r in results[name])
                    + (1000 * (1 + rounds * posts) if name in posted else 0) for name in names}
        time.sleep(1.0)  # the writers' last batches
        dropped = {name: dropped_rows(servers[name]) for name in names if name in RECORDING}
    finally:
        for server in servers.values():
            server.stop()
    fine = bench_scoring.short_phrases(phrases, count=200 if smoke else 3000)
    scorer = kinds.load(model_dir / "fine-grained")
    predict_s, predict_cpu_s = predict_wall_s(test_file, model_dir, tmp / "submission.csv", repeats=1 if smoke else 3)
    return {"model_dirs": model_dirs, "results": results, "posted": posted, "answered": answered, "dropped": dropped,
            "fast_us": bench_scoring.median_us_per_query(scorer.scorer_.predict_proba, fine),
            "sklearn_us": bench_scoring.median_us_per_query(scorer.predict_proba_sklearn, fine),
            "predict_s": predict_s, "predict_cpu_s": predict_cpu_s, "test_file": test_file, "phrases": len(phrases),
            "startup": statistics.median([first_startup, *startups]), "memory": memory_after}


def print_figures(figures, in_process, recorded, *, before, rounds, seconds, posts, extra, recipe, other):
    """Print the GET table and its comparisons, the POST table, the recording check and the other figures."""
    results = figures["results"]
    print(f"GET /?query=<{len(QUERY.split())} words>, wrk -t2 -c8, {rounds} round(s) of {seconds} s per app, "
          f"alternating; medians over rounds; gunicorn.conf.py{' ' + ' '.join(extra) if extra else ''}")
    print(f"models: {recipe}; service records to SQLite (the default), log-off has PREDICTION_LOG=off"
          + (", postgres records to PostgreSQL" if "postgres" in results else "")
          + (f", before is {before} (commit {commit_of(before)}, its own build_model.py's models)" if before else "")
          + (f", other serves {recipe_text(other['classifier'], other['features'])}" if other else ""))
    print(load_table(results, in_process))
    print()
    print(ratio_line("GET, recording on SQLite against PREDICTION_LOG=off",
                     round_ratios(results, "service", "log-off")))
    if "postgres" in results:
        print(ratio_line("GET, recording on PostgreSQL against PREDICTION_LOG=off",
                         round_ratios(results, "postgres", "log-off")))
    if before:
        print(ratio_line("GET, PREDICTION_LOG=off against before", round_ratios(results, "log-off", "before")))
        print(ratio_line("GET, recording on SQLite against before", round_ratios(results, "service", "before")))
    if "explain" in results:
        print(ratio_line("GET with explain=true against the same GET without",
                         round_ratios(results, "explain", "service")))
    if "v2" in results:
        print(ratio_line("Open Inference Protocol, one text, against GET /", round_ratios(results, "v2", "service")))
    if "ratings" in results:
        print(ratio_line("GET /ratings (a film's rating) against GET / (a text's sentiment), the same app",
                         round_ratios(results, "ratings", "service")))
    for name, what in (("added-linear", "a linear pipeline added with release.py add"),
                       ("added-forest", "a 50-tree random forest added with release.py add")):
        if name in results:
            print(ratio_line(f"GET {OTHER_PATHS[name].split('?')[0]} ({what}) against GET /, the same app",
                             round_ratios(results, name, "service")))
    if "shadow" in results:
        print(ratio_line("GET with a version in shadow against the same GET without",
                         round_ratios(results, "shadow", "service")))
    if "other" in results:
        print(ratio_line(f"GET, the service's models ({recipe}) against other's "
                         f"({recipe_text(other['classifier'], other['features'])})",
                         round_ratios(results, "service", "other")))
    print()
    print(post_table(figures["posted"], rounds=rounds, posts=posts))
    if before:
        print(ratio_line("POST of 1,000, recording on SQLite against before",
                         round_ratios(figures["posted"], "service", "before", key="rate")))
    if "other" in figures["posted"]:
        print(ratio_line("POST of 1,000, the service's models against other's",
                         round_ratios(figures["posted"], "service", "other", key="rate")))
    if "v2" in figures["posted"]:
        print(ratio_line("Open Inference Protocol, 1,000 texts, against POST /",
                         round_ratios(figures["posted"], "v2", "service", key="rate")))
    print()
    print(recorded)
    print()
    print(f"scoring in-process, fine-grained model, median per short query: fast {figures['fast_us']:.1f} us, "
          f"scikit-learn {figures['sklearn_us']:.1f} us")
    print(f"predict.py over {figures['test_file'].name} ({figures['phrases']:,} phrases): {figures['predict_s']:.2f} s "
          f"wall ({figures['predict_cpu_s']:.2f} s CPU), start-up included")
    print(f"start-up to a 200 on /health: {figures['startup']:.2f} s")
    print("memory after start-up, MiB: " + "; ".join(
        f"{name} RSS {rss:.0f} PSS {pss:.0f}" for name, rss, pss in figures["memory"])
        + f"; total PSS {sum(pss for _, _, pss in figures['memory']):.0f}")


if __name__ == "__main__":
    sys.exit(main())
