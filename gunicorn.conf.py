"""gunicorn settings for `gunicorn app:app`: server settings only, each with the reason for its value.

The app's own settings (MODEL_DIR, limits, API_TOKEN, ...) are environment variables read by
app.load_config(); see the README.
"""
import gc
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


def prepare_metrics_dir():
    """Point prometheus-client's multiprocess mode at an empty directory, once per gunicorn master.

    Metrics must add up over all workers: in multiprocess mode each process keeps its values in
    files in one directory, which must be set before prometheus_client is imported (by app, below)
    and before a preloaded app records anything, hence here rather than in a hook. An operator may
    choose the directory (its old files are removed: they would be summed into this run's counts);
    otherwise a private temporary one is made. gunicorn reads this file again on HUP, when the live
    workers' files must stay: the marker in the environment makes that a no-op.
    """
    if os.environ.get("SENTIMENT_METRICS_DIR_SET_UP"):
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        os.environ["SENTIMENT_METRICS_DIR_SET_UP"] = "cleaned"
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentiment-metrics-")
        os.environ["SENTIMENT_METRICS_DIR_SET_UP"] = "made"


prepare_metrics_dir()

from gunicorn.glogging import Logger as GunicornLogger  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402

import gunicorn.util  # noqa: E402

import app as sentiment_app  # noqa: E402
import model  # noqa: E402


def refuse(message):
    """Stop before serving, with one line and exit status 1 (no traceback, no worker boot loop)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    remove_metrics_dir()  # on_exit does not run when the start is refused
    sys.exit(1)


def remove_metrics_dir():
    """Remove the metrics directory if this file made it."""
    if os.environ.get("SENTIMENT_METRICS_DIR_SET_UP") == "made":
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# Loopback by default, like `python app.py`; a container or a reverse proxy sets BIND=0.0.0.0:5000.
bind = os.environ.get("BIND", "127.0.0.1:5000")

# Figures behind these settings: `python benchmarks/bench_serving.py --rounds N --seconds S
# [--gunicorn-arg=...]` on this 2-core machine. Single figures swing by 10-20% between runs, so
# compare the ratios, which come from the same rounds.
# GET /?query=<6 words>, wrk -t2 -c8; requests/s of service / tutorial baseline / bare constant app,
# and the service's ratio to the constant app. Before the service had its per-request operations
# (request ids, access log, metrics, CORS; load average 4-10 from other jobs):
#   sync, 2 workers            2,345 /   666 / 2,825  (0.84 of constant)   2,980 /   805 / 5,164  (0.65)
#   sync, 3 workers            1,777 /   506 / 3,181  (0.57)
# With them, in one WSGI middleware (2026-11-25, quiet machine, 7 rounds of 4 s each, back to back;
# service p99 in brackets):
#   gthread, 2 x 1 thread      5,039 / 1,904 / 7,149  (0.68)  [3.2 ms]
#   gthread, 2 x 2 threads     5,581 / 1,923 / 7,957  (0.69)  [3.7 ms]
#   gthread, 2 x 4 threads     5,781 / 1,902 / 8,441  (0.69)  [5.0 ms]
#   gevent, 2 workers          7,145 / 2,231 / 10,441 (0.68)  [70 ms]   (a separate run, same day)
# gevent answers the most requests/s, but its p99 is 70 ms, over the 10 ms target. Ending each
# request with gevent.sleep(0) cut it to 13 ms, so mostly a connection whose next request is already
# waiting keeps its worker while others wait. Among thread counts the differences are within the noise.
# One worker per core: scoring is CPU-bound, so more processes than cores only add context switches
# (3 sync workers answered fewer requests than 2). Override with WEB_CONCURRENCY on bigger machines.
try:
    workers = sentiment_app.positive_int(os.environ, "WEB_CONCURRENCY", os.cpu_count() or 1)
except sentiment_app.ConfigError as exc:
    refuse(exc)

# gthread keeps connections alive (sync closes each one), which is what clients that reuse
# connections, load balancers and wrk do. Threads only interleave under the GIL, so their number
# barely moves throughput (above); 2 keeps a second thread free while a slow client takes its time
# to send a request (gunicorn waits up to 5 s for it in the thread), and p99 grows with 4.
worker_class = "gthread"
threads = 2

# Every request is answered in milliseconds; 30 s only catches a worker that is truly stuck.
timeout = 30

# On SIGTERM (deploys, `docker stop`), finish in-flight requests for up to 10 s before exiting.
graceful_timeout = 10

# Clients that reuse connections (requests.Session, browsers, load balancers) skip a TCP handshake.
keepalive = 5

# No gunicornc control socket: every gunicorn of a user shares ~/.gunicorn/gunicorn.ctl by default (the
# tests start several at once), and a container with a read-only file system cannot create it. Signals
# do the same jobs: HUP reloads, TTIN/TTOU add or remove a worker, TERM stops gracefully.
control_socket_disable = True

# No gunicorn access log: the app writes one line per request itself (stdout, text or LOG_FORMAT=json)
# with what gunicorn cannot know: the request id it echoed, the model, its own latency. gunicorn's
# line as well would double the log volume and the per-request writes. (Requests gunicorn rejects
# before the app sees them, e.g. malformed request lines, appear only in gunicorn's error log.)
accesslog = None
# gunicorn's own messages (start-up, worker exits) on stderr, so the container runtime or systemd collects them.
errorlog = "-"


class JsonServerLogger(GunicornLogger):
    """gunicorn's own messages as JSON lines, in the app's format."""

    def setup(self, cfg):
        """gunicorn's usual set-up (also run again on HUP), then the JSON formatter on its error log."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(sentiment_app.JsonLogFormatter())


# With LOG_FORMAT=json gunicorn's lines are JSON too, so a log shipper can parse every line of the output.
if os.environ.get("LOG_FORMAT") == "json":
    logger_class = JsonServerLogger


def on_starting(server):
    """Refuse to start, once and clearly, when a model cannot be trusted; then load the app once.

    The app is built here, in the master, rather than by gunicorn's preload_app (which loads it
    before any hook runs, so a bad model would end in a traceback). Workers fork
    with it: the models are loaded once and their arrays shared, and start-up loads them once.
    Measured (bench_serving.py, Kaggle models, 2 workers): total PSS of master + workers 166-168 MiB,
    against 199-205 MiB when each worker loaded its own; start-up to a healthy /health 1.4-1.5 s.
    """
    try:  # create_app() verifies every artifact's hash before it unpickles anything
        sentiment_app.app = sentiment_app.create_app()
    except (model.ModelError, sentiment_app.ConfigError) as exc:
        refuse(exc)
    # Keep the loaded objects out of the garbage collector's sweeps, which would write to (and so
    # copy into every worker) the pages the workers share with the master.
    gc.freeze()


def child_exit(server, worker):
    """Drop a gone worker's live gauges; its counters stay in the totals."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory if this file made it."""
    remove_metrics_dir()


# gunicorn answers a few malformed requests itself, before the app sees them (a URL over
# limit_request_line -> 414, headers too large -> 431, not HTTP -> 400), with an HTML page. Clients of a
# JSON API get JSON like every other error; the function is replaced here, in the master, so every
# worker forked from it inherits the change.
GUNICORN_ERRORS = {
    400: "The request is not valid HTTP/1.1. A URL must be ASCII: percent-encode other characters as UTF-8.",
    414: "The URL is too long for this server. Send long texts in the body instead: a form field query=... "
         'or a JSON body {"query": "..."}, or POST {"queries": [...]}.',
    431: "The request headers are too large or too many.",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's own error answer, as JSON `{"message": ...}` without internals."""
    message = GUNICORN_ERRORS.get(status_int, f"{reason}.")
    body = json.dumps({"message": message}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_json_error


def on_reload(server):
    """SIGHUP: load the models in MODEL_DIR again before new workers fork; keep the old ones if bad.

    The app was built in the master (on_starting), and new workers fork with whatever it holds, so
    without this they would keep serving the models loaded at start.
    """
    try:
        fresh = sentiment_app.create_app()
    except (model.ModelError, sentiment_app.ConfigError) as exc:
        server.log.error("reload: keeping the models already loaded, the new ones are unusable: %s", exc)
        return
    sentiment_app.app = fresh
    # The old app is frozen too, and its reference cycles would keep its models alive for ever:
    # thaw, collect it, and freeze the new one.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    server.log.info("reload: models loaded again from %s", fresh.config["MODEL_DIR"])
