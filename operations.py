"""Operations: what happens once per request whatever the endpoint, and what gunicorn's hooks need.

`Operations` is the WSGI middleware around the Flask app: request ids, security and CORS headers,
Prometheus metrics and the access line. Beside it: the metrics themselves (`Metrics`), the JSON log
format, logging set up once per process (`configure_logging`), and the pieces gunicorn.conf.py's
hooks call: the shared metrics folder, gunicorn's own error answers as JSON, its logger in JSON.
"""
import ipaddress
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import gunicorn.util
import prometheus_client
from gunicorn.glogging import Logger as GunicornLogger
from prometheus_client import multiprocess, values

from config import MODEL_ROUTES

REQUEST_ID_HEADER = "X-Request-ID"
# On every answer, the app's and gunicorn's own: a browser must not guess a type, nor a cache keep an answer.
NO_SNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")
# A caller's id is echoed only if it is short and plain, so it cannot forge log lines or bloat them.
GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
IP_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{2,45}")  # IPv4 or IPv6, as proxies write them
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Scoring takes well under a millisecond, so the buckets start far below prometheus-client's 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ACCESS_LOGGER = "sentiment.access"
# What a text access line writes for each control character of a path: \n becomes the two characters \ and n.
ESCAPE_CONTROLS = {code: chr(code).encode("unicode_escape").decode() for code in [*range(32), 127]}


class Metrics:
    """The service's Prometheus metrics, in one registry per app or in gunicorn's shared files.

    Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is
    imported: every worker then writes its values to files there and `/metrics` sums them, so the
    counts are right whichever worker answers. Without it (`python app.py`, Flask's test client)
    each app keeps its own in-memory registry.
    """

    def __init__(self, *, multiprocess_dir=None):
        self.multiprocess_dir = multiprocess_dir
        # prometheus-client chooses where values live from the environment when it is imported; the
        # settings decide here instead, so a developer's PROMETHEUS_MULTIPROC_DIR cannot reach a test's app.
        if multiprocess_dir:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir  # where MultiProcessValue writes
            values.ValueClass = values.MultiProcessValue()
        else:
            values.ValueClass = values.MutexValue
        # In multiprocess mode values live in files, so the metrics are registered nowhere.
        self.registry = None if multiprocess_dir else prometheus_client.CollectorRegistry()
        common = {"registry": self.registry, "namespace": "sentiment"}
        self.requests = prometheus_client.Counter(
            "http_requests", "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"], **common)
        self.latency = prometheus_client.Histogram(
            "http_request_duration_seconds", "Time from request to response inside the app, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, **common)
        self.predictions = prometheus_client.Counter(
            "predictions", "Texts scored, by model and predicted label.", ["model", "label"], **common)
        # Every live worker serves the same models, so their values agree: "livemax" shows one series
        # per model, and drops a worker's series when it exits (e.g. replaced after a rebuild + HUP).
        self.model_info = prometheus_client.Gauge(
            "model_info", "A served model; the value is its creation time in Unix seconds.",
            ["model", "created_at"], multiprocess_mode="livemax", **common)
        # Labelled series, once looked up: labels() takes a lock, and this is done for every request.
        self.series = {}  # (endpoint, method, status) -> its request counter and latency histogram
        self.prediction_series = {}  # (model, label) -> its prediction counter

    def describe_models(self, models):
        """Set the model-info gauge for each served model."""
        for name, served in models.items():
            created = served.manifest["created_at"]
            self.model_info.labels(name, created).set(unix_time(created))

    def count_predictions(self, model_name, answers):
        """Count scored texts by label: one increment per label, not per text."""
        tally = {}
        for answer in answers:
            tally[answer["prediction"]] = tally.get(answer["prediction"], 0) + 1
        for label, count in tally.items():
            key = (model_name, label)
            series = self.prediction_series.get(key)
            if series is None:
                series = self.prediction_series[key] = self.predictions.labels(model_name, label)
            series.inc(count)

    def observe(self, endpoint, method, status, seconds):
        """Count one answered request and its latency."""
        method = method if method in KNOWN_METHODS else "other"  # callers cannot mint new series
        key = (endpoint, method, status)
        series = self.series.get(key)
        if series is None:  # first time: look the labelled series up once (labels() takes a lock)
            series = self.series[key] = (self.requests.labels(endpoint, method, str(status)),
                                         self.latency.labels(endpoint))
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self):
        """The text `/metrics` answers: this app's registry, or the sum over every worker's files."""
        registry = self.registry
        if registry is None:
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return prometheus_client.generate_latest(registry)


def unix_time(iso_timestamp):
    """Seconds since the epoch of an ISO 8601 timestamp such as a manifest's created_at."""
    return datetime.fromisoformat(iso_timestamp).timestamp()


JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # then milliseconds and "Z": UTC


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (the app's own messages and gunicorn's)."""

    converter = time.gmtime  # the "Z" below promises UTC

    def format(self, record):
        """The record as a single line of JSON."""
        entry = {"time": self.formatTime(record, JSON_TIME_FORMAT) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format):
    """Send the app's own log lines (errors, reloads) to stdout as text or JSON, replacing earlier set-ups."""
    handler = logging.StreamHandler(sys.stdout)
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else text)
    logger = logging.getLogger("sentiment")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # one line per event, not a second copy from the root logger


class AccessLog:
    """One line per request on stdout, looking like the `sentiment` logger's lines (text or JSON).

    Written directly rather than through `logging`: its records, handler and formatter cost four times
    as much per request (~8 us against ~2 us), and this line is written for every request.
    """

    def __init__(self, *, json_lines, stream=None):
        self.stream, self.json_lines = stream, json_lines  # None: whatever sys.stdout is when a line is written
        self.lock = threading.Lock()  # gthread workers answer from several threads; lines must not mix
        # JSON lines are in UTC ("Z"), text lines in local time with logging's default asctime format,
        # as the `sentiment` logger writes them.
        self.clock, self.time_format = (time.gmtime, JSON_TIME_FORMAT) if json_lines else (
            time.localtime, logging.Formatter.default_time_format)
        self.second = (None, "")  # (Unix second, its formatted time): formatted once per second

    def timestamp(self, now):
        """`now` as the line's time, to the millisecond."""
        second, formatted = self.second
        if second != int(now):
            second = int(now)
            formatted = time.strftime(self.time_format, self.clock(second))
            self.second = (second, formatted)
        millis = int(now * 1000) % 1000
        if self.json_lines:
            return f"{formatted}.{millis:03d}Z"
        return logging.Formatter.default_msec_format % (formatted, millis)

    def write(self, *, request_id, method, path, status, seconds, model_name, remote_addr):
        """Write one request's line."""
        stamp = self.timestamp(time.time())
        if self.json_lines:
            line = json.dumps({
                "time": stamp, "level": "INFO", "logger": ACCESS_LOGGER, "request_id": request_id,
                "method": method, "path": path, "status": status, "latency_ms": round(seconds * 1000, 3),
                "model": model_name, "remote_addr": remote_addr,
            }, ensure_ascii=False)
        else:  # control characters escaped: a %0A in a URL must not start a forged line
            path = path.translate(ESCAPE_CONTROLS)
            line = (f"{stamp} INFO {ACCESS_LOGGER} {method} {path} {status} {seconds * 1000:.3f}ms "
                    f"model={model_name or '-'} id={request_id} client={remote_addr or '-'}")
        stream = self.stream or sys.stdout
        with self.lock:
            stream.write(line + "\n")
            stream.flush()


class Operations:
    """WSGI middleware around the Flask app: what happens once per request, whatever the endpoint.

    It gives each answer its request id, its security and CORS headers, counts it in the metrics and
    writes its access-log line. It works on the raw WSGI environ and header list: done with Flask
    hooks, Werkzeug's header objects and flask-cors, the same work made a GET take ~160 us in-process
    instead of ~100 us (scoring the text takes ~10 us); under gunicorn the service then answered 2.2x
    the tutorial baseline's requests/s, against ~2.8x now (benchmarks/bench_serving.py).
    """

    def __init__(self, wsgi_app, *, metrics, access_log, cors_origins, trusted_proxies=()):
        self.wsgi_app, self.metrics, self.access_log = wsgi_app, metrics, access_log
        self.any_origin = "*" in cors_origins
        self.cors_origins = frozenset(cors_origins)
        self.any_proxy = "*" in trusted_proxies
        self.trusted_proxies = frozenset(trusted_proxies)

    def __call__(self, environ, start_response):
        """Answer through the app, adding headers, metrics and the log line when it starts its response."""
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if GOOD_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()

        def start(status, headers, exc_info=None):
            headers.extend(self.extra_headers(environ, headers, request_id))
            self.record(environ, int(status[:3]), request_id, time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)

    def extra_headers(self, environ, headers, request_id):
        """The request id, headers that suit a JSON API unless the app set its own, and CORS headers."""
        present = {name.lower(): value for name, value in headers}
        extra = [(REQUEST_ID_HEADER, request_id), NO_SNIFF]
        if "cache-control" not in present:
            extra.append(NO_STORE)
        if present.get("content-type", "").startswith("application/json") and "content-security-policy" not in present:
            # A JSON answer opened in a browser must not run or load anything, nor be framed.
            extra.append(("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))
        if not self.any_origin:  # the answer depends on the caller's origin: caches must keep them apart
            vary = present.get("vary")
            if vary:
                headers.remove(next(h for h in headers if h[0].lower() == "vary"))
            extra.append(("Vary", f"{vary}, Origin" if vary else "Origin"))
        origin = environ.get("HTTP_ORIGIN")
        if origin and (self.any_origin or origin in self.cors_origins):
            extra += cors_headers(environ, "*" if self.any_origin else origin)
        return extra

    def record(self, environ, status, request_id, seconds):
        """Count the request and write its one access-log line."""
        method = environ["REQUEST_METHOD"]
        # Flask's request object knows the endpoint that answered (none for 404s and 405s); Werkzeug
        # puts it in the environ, and Flask clears it only after the response has started.
        rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
        endpoint = rule.endpoint if rule else "none"
        self.metrics.observe(endpoint, method, status, seconds)
        # The path without its query string: the texts people score may be private, and long.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        self.access_log.write(request_id=request_id, method=method, path=path, status=status, seconds=seconds,
                              model_name=endpoint if endpoint in MODEL_ROUTES else None,
                              remote_addr=self.client_address(environ))

    def client_address(self, environ):
        """The peer's address, or, when the peer is a trusted proxy, the last address in X-Forwarded-For:
        the one that proxy saw. A value that is not an IP address is never written."""
        peer = environ.get("REMOTE_ADDR")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and (self.any_proxy or peer in self.trusted_proxies):
            last = forwarded.rsplit(",", 1)[-1].strip()
            if IP_ADDRESS.fullmatch(last):
                return last
        return peer


# What a browser script on another origin may send and read. Preflights are answered for every path:
# the app answers OPTIONS itself, and this adds the permission.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID"


def cors_headers(environ, allowed_origin):
    """CORS headers letting `allowed_origin` read the answer (and, for a preflight, send its request)."""
    headers = [("Access-Control-Allow-Origin", allowed_origin), ("Access-Control-Expose-Headers", REQUEST_ID_HEADER)]
    if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
        headers += [("Access-Control-Allow-Methods", "GET, POST"), ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                    ("Access-Control-Max-Age", "600")]
    return headers


# --- What gunicorn's hooks call (gunicorn.conf.py) ------------------------------------------------

def prepare_metrics_dir():
    """Point prometheus-client's multiprocess mode at an empty folder, once per gunicorn master.

    Metrics must add up over all workers: each process keeps its values in files in one folder, which
    must be known before the app records anything. An operator may choose the folder (its old files are
    removed: they would be summed into this run's counts); otherwise a private temporary one is made.
    gunicorn reads its config again on HUP, when the live workers' files must stay: the marker in the
    environment makes that a no-op.
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


def forget_worker(pid):
    """Drop a gone worker's live gauges; its counters stay in the totals."""
    multiprocess.mark_process_dead(pid)


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


class JsonServerLogger(GunicornLogger):
    """gunicorn's own messages (start-up, worker exits) as JSON lines, in the app's format."""

    def setup(self, cfg):
        """gunicorn's usual set-up (run again on HUP), then the JSON formatter on its error log."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonLogFormatter())


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
