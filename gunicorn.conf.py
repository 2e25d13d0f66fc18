"""gunicorn settings for `gunicorn app:app`: server settings, each with the reason for its value, and hooks
of a line or two that call into the app's modules.

The app's own settings (MODEL_DIR, limits, API_TOKEN, ...) are environment variables read once by
config.Settings; see the README. Measurements behind the values: benchmarks/README.md.
"""
import os
import sys

import app as service
from serving import lifecycle, logs
from serving.config import ConfigError, Settings, positive_int
from store.artifacts import ModelError


def refuse(message):
    """Stop before serving, with one line and exit status 1 (no traceback, no worker boot loop)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    lifecycle.master_exiting()  # on_exit does not run when the start is refused
    sys.exit(1)


try:
    settings = Settings.from_env()
    # One worker per core: scoring is CPU-bound, so more processes than cores only add context switches
    # (3 sync workers answered fewer requests than 2). Override with WEB_CONCURRENCY on bigger machines.
    workers = positive_int("WEB_CONCURRENCY", os.environ.get("WEB_CONCURRENCY"), os.cpu_count() or 1)
except ConfigError as exc:
    refuse(exc)

# Loopback by default, like `python app.py`; a container or a reverse proxy sets BIND=0.0.0.0:5000.
bind = os.environ.get("BIND", "127.0.0.1:5000")

# gthread keeps connections alive (sync closes each one), which is what clients that reuse
# connections, load balancers and wrk do. Threads only interleave under the GIL, so their number
# barely moves throughput (benchmarks/README.md); 2 keeps a second thread free while a slow client
# takes its time to send a request, and p99 grows with 4.
worker_class = "gthread"
threads = 2

# Every request is answered in milliseconds; 30 s only catches a worker that is truly stuck.
timeout = 30

# On SIGTERM (deploys, `docker stop`), finish in-flight requests for up to 10 s before exiting.
graceful_timeout = 10

# Clients that reuse connections (requests.Session, browsers, load balancers) skip a TCP handshake.
keepalive = 5

# No control socket: every gunicorn of a user shares ~/.gunicorn/gunicorn.ctl by default (the tests start
# several at once), and a container with a read-only file system cannot create it. Signals do the same
# jobs: HUP reloads, TTIN/TTOU add or remove a worker, TERM stops gracefully.
control_socket_disable = True

# No gunicorn access log: the app writes one line per request itself (stdout, text or LOG_FORMAT=json)
# with what gunicorn cannot know: the request id it echoed, the model, its own latency. gunicorn's line
# as well would double the log volume. (Requests gunicorn rejects before the app sees them, e.g.
# malformed request lines, appear only in gunicorn's error log.)
accesslog = None
# gunicorn's own messages (start-up, worker exits) on stderr, so the container runtime or systemd collects them.
errorlog = "-"
# With LOG_FORMAT=json gunicorn's lines are JSON too, so a log shipper can parse every line of the output.
logger_class = logs.JsonServerLogger if settings.LOG_FORMAT == "json" else "gunicorn.glogging.Logger"


def on_starting(server):
    """Build the app (and load and verify the models) once in the master, so workers fork with it.

    First the shared metrics folder (metrics must add up over all workers) and gunicorn's errors as JSON.
    Not gunicorn's preload_app: it loads before any hook runs, so a bad model would end in a traceback.
    """
    lifecycle.master_starting()
    try:
        service.build_in_master()
    except (ModelError, ConfigError) as exc:
        refuse(exc)


def when_ready(server):
    """Warn when gunicorn faces a network and nothing says a proxy is in front (docs/running.md)."""
    if warning := lifecycle.exposure_warning(server.cfg.bind, os.environ):
        server.log.warning(warning)


def on_reload(server):
    """SIGHUP: load the models in MODEL_DIR again before new workers fork; keep the old ones if bad."""
    try:
        fresh = service.build_in_master()
    except (ModelError, ConfigError) as exc:
        server.log.error("reload: keeping the models already loaded, the new ones are unusable: %s", exc)
        return
    server.log.info("reload: models loaded again from %s", fresh.config["MODEL_DIR"])


def post_worker_init(worker):
    """In each new worker, once it has loaded its app and before it answers: start the app's per-process
    services (threads, connections). The app the worker loaded, not the master's: for `app:app` they are
    the same, and an app built in the worker (the benchmarks') starts its own."""
    lifecycle.worker_started(worker.wsgi)


def worker_exit(server, worker):
    """In each worker as it ends (a stop, a reload): flush and stop its services, in bounded time."""
    lifecycle.worker_exiting(getattr(worker, "wsgi", None), worker.pid)


def child_exit(server, worker):
    """In the master: drop a gone worker's live gauges; its counters stay in the totals."""
    lifecycle.worker_gone(worker.pid)


def on_exit(server):
    """Remove the metrics folder if it was made for this run."""
    lifecycle.master_exiting()
