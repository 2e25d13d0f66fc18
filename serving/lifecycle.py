"""The process lifecycle under gunicorn: what each of gunicorn.conf.py's hooks calls, in one place.

    master_starting()         on_starting, in the master: the shared metrics folder, gunicorn's errors
                              as JSON; the master then builds the app (`app.build_in_master`) and forks
    worker_started(app)       post_worker_init, in each new worker once its app is loaded: start the
                              app's per-process services
    worker_exiting(app, pid)  worker_exit, in each worker that ends: flush and stop them, in bounded time
    worker_gone(pid)          child_exit, in the master: drop the gone worker's live gauges
    master_exiting()          on_exit: remove the metrics folder if it was made for this run

Nothing that runs a thread, holds a lock such a thread may take, or keeps a connection may be made
before the fork: a fork copies only the thread that calls it, and a connection would be shared by
every worker. (The locks the app holds already are safe: the master runs one thread, so none is held
when it forks.) Such parts are per-process services (`Service`), kept in the app's list
`app.extensions[SERVICES]` and started in each worker; `python app.py` starts and stops them itself
with `start_services` and `stop_services`. Beside them: gunicorn's own error answers as JSON and the
warning when it faces a network with no proxy declared.
"""
import ipaddress
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import gunicorn.util
from prometheus_client import multiprocess

from serving.config import NO_SNIFF, NO_STORE

log = logging.getLogger("sentiment")

# The key of the app's per-process services in `app.extensions`: create_app puts an empty list there,
# and whatever needs a thread or a connection of its own in every process appends itself to it.
SERVICES = "sentiment.services"
# The most a worker's exit waits for its services, in all. gunicorn kills a worker still alive
# graceful_timeout (10 s) after its SIGTERM, in-flight requests first; 5 s lets a service flush what it
# holds, while one that hangs cannot hold up a worker's exit (or the end of `python app.py`) for long.
STOP_TIMEOUT = 5.0


class Service(Protocol):
    """A per-process part of the app (the prediction log's writer, a connection): what
    `app.extensions[SERVICES]` holds."""

    def start(self):
        """Start threads and open connections, in the process that will use them (after gunicorn's fork)."""

    def stop(self, timeout):
        """Flush and stop within `timeout` seconds; called from another thread, and also if never started."""


# --- The app's per-process services --------------------------------------------------------------

def services(app):
    """The app's per-process services; none for a WSGI app that is not this service's (a benchmark's)."""
    return getattr(app, "extensions", {}).get(SERVICES, [])


def start_services(app):
    """Start the app's services in the order they were added, in this process."""
    for service in services(app):
        service.start()


def stop_services(app, timeout):
    """Stop the app's services, last added first, waiting at most `timeout` seconds in all.

    Each stop runs in a daemon thread joined with what is left of the time: a stop that hangs is logged
    and left behind, and the process can still exit.
    """
    deadline = time.monotonic() + timeout
    for service in reversed(services(app)):
        left = max(0.0, deadline - time.monotonic())
        stopping = threading.Thread(target=stop_one, args=(service, left), name=f"stop {service!r}", daemon=True)
        stopping.start()
        stopping.join(left)
        if stopping.is_alive():
            log.warning("%r did not stop within %.1f s; exiting without waiting for it", service, timeout)


def stop_one(service, timeout):
    """Stop one service, logging rather than raising what goes wrong: the others must still stop."""
    try:
        service.stop(timeout)
    except Exception:
        log.exception("stopping %r failed", service)


# --- What gunicorn.conf.py's hooks call ----------------------------------------------------------

def master_starting():
    """on_starting, before the master builds the app: the shared metrics folder, gunicorn's errors as JSON."""
    prepare_metrics_dir()
    answer_gunicorn_errors_as_json()


def worker_started(app):
    """post_worker_init, in a new worker (after the fork): start its app's services, before any request."""
    start_services(app)


def worker_exiting(app, pid):
    """worker_exit, in the worker `pid` as it ends: flush and stop its services, STOP_TIMEOUT seconds at most."""
    # gunicorn's master calls worker_exit too, for a worker it finds already gone: nothing of it runs here.
    if pid == os.getpid():
        stop_services(app, STOP_TIMEOUT)


def worker_gone(pid):
    """child_exit, in the master: drop a gone worker's live gauges; its counters stay in the totals."""
    multiprocess.mark_process_dead(pid)


def master_exiting():
    """on_exit, and a start refused: remove the metrics folder if it was made for this run."""
    remove_metrics_dir()


# --- The metrics folder --------------------------------------------------------------------------

def prepare_metrics_dir():
    """Point prometheus-client's multiprocess mode at an empty folder, once per gunicorn master.

    Metrics must add up over all workers: each process keeps its values in files in one folder, which
    must be known before the app records anything. An operator may choose the folder (its old files are
    removed: they would be summed into this run's counts); otherwise a private temporary one is made.
    Called again in the same environment it does nothing (the marker there says the folder is set up),
    so a folder in use is never emptied.
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


def remove_metrics_dir():
    """Remove the metrics folder if `prepare_metrics_dir` made it."""
    if os.environ.get("SENTIMENT_METRICS_DIR_SET_UP") == "made":
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# --- gunicorn's own answers, and what it faces ---------------------------------------------------

# gunicorn answers a few malformed requests itself, before the app sees them (a URL over
# limit_request_line -> 414, headers too large -> 431, not HTTP -> 400). Clients of a JSON API get
# JSON like every other error.
GUNICORN_ERRORS = {
    400: "The request is not valid HTTP/1.1. A URL must be ASCII: percent-encode other characters as UTF-8.",
    414: "The URL is too long for this server. Send long texts in the body instead: a form field query=... "
         'or a JSON body {"query": "..."}, or POST {"queries": [...]}.',
    431: "The request headers are too large or too many.",
}


def write_gunicorn_error(sock, status_int, reason, mesg):
    """gunicorn's own error answer (its `util.write_error`), as JSON `{"message": ...}` without internals."""
    body = json.dumps({"message": GUNICORN_ERRORS.get(status_int, f"{reason}.")}).encode()
    headers = [("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               NO_SNIFF, NO_STORE]
    head = f"HTTP/1.1 {status_int} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


def answer_gunicorn_errors_as_json():
    """Replace gunicorn's HTML error writer; called in the master, so every forked worker inherits it."""
    gunicorn.util.write_error = write_gunicorn_error


def exposure_warning(binds, environ):
    """The warning to log when gunicorn binds beyond loopback and nothing says a proxy is in front, else None.

    `binds` are gunicorn's bind addresses; setting FORWARDED_ALLOW_IPS (the proxy's address, which
    gunicorn and the access line then trust) is how an operator says a proxy is there.
    """
    if "FORWARDED_ALLOW_IPS" in environ:
        return None
    exposed = [bind for bind in binds if not is_local(bind)]
    if not exposed:
        return None
    return (f"gunicorn listens on {', '.join(exposed)} with no proxy declared in front: slow clients can hold every "
            "worker. Put nginx in front (deploy/nginx.conf.template) and set FORWARDED_ALLOW_IPS to its address; "
            "see docs/running.md.")


def is_local(bind):
    """True for a unix socket or a loopback address such as 127.0.0.1:5000, [::1]:5000 or localhost:5000."""
    if bind.startswith(("unix:", "fd://")):
        return True
    host = bind.rsplit(":", 1)[0].strip("[]") if ":" in bind else bind
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
