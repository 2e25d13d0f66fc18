"""The HTTP face of the sentiment models: a Flask-RESTful app built by `create_app()`.

    python app.py                 # development server on 127.0.0.1:5000
    gunicorn app:app              # production; settings in gunicorn.conf.py

Endpoints (full reference in the README and at /openapi.json):
    GET  /?query=...              binary model      POST / {"queries": [...]}
    GET  /fine-grained?query=...  five-label model  POST /fine-grained {"queries": [...]}
    GET  /health, GET /models
    GET  /metrics (Prometheus), /docs (API docs for people), /demo (try it in a browser)

Request parsing lives in plain functions (`text_from_get`, `texts_from_post`) that take what Flask
hands over and return the texts to score or raise one of the named errors below; every error
becomes a JSON `{"message": ...}` in `error_response`, the one place statuses are decided.
"""
import argparse
import hmac
import json
import logging
import os
import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

import prometheus_client
import swagger_ui
from flask import Flask, jsonify, request, send_from_directory
from flask_restful import Api, Resource
from prometheus_client import multiprocess
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge

import model
import openapi

HERE = Path(__file__).resolve().parent
MODEL_ROUTES = {"binary": "/", "fine-grained": "/fine-grained"}
log = logging.getLogger("sentiment")


# --- Configuration: read once, at start-up -------------------------------------------------------

class ConfigError(Exception):
    """An environment variable has a value the service cannot use."""


def load_config(environ=os.environ):
    """Every setting the service reads, from environment variables with defaults."""
    return {
        "MODEL_DIR": environ.get("MODEL_DIR") or str(HERE / "lib" / "models"),
        "MAX_QUERY_LENGTH": positive_int(environ, "MAX_QUERY_LENGTH", 10_000),
        "MAX_BATCH_SIZE": positive_int(environ, "MAX_BATCH_SIZE", 1_000),
        "MAX_CONTENT_LENGTH": positive_int(environ, "MAX_CONTENT_LENGTH", 1 << 20),
        "API_TOKEN": environ.get("API_TOKEN") or None,
        "CORS_ORIGINS": [o.strip() for o in environ.get("CORS_ORIGINS", "*").split(",") if o.strip()],
        "LOG_FORMAT": choice(environ, "LOG_FORMAT", ("text", "json")),
        # Set by gunicorn.conf.py (or by the operator): metrics are then summed over all workers.
        "PROMETHEUS_MULTIPROC_DIR": environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
    }


def choice(environ, name, choices):
    """A setting that must be one of `choices`; the first is the default."""
    value = environ.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: must be one of {', '.join(choices)} (default {choices[0]}).")
    return value


def positive_int(environ, name, default):
    """An integer setting that must be at least 1."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}={raw!r}: must be a whole number of at least 1 (default {default}).")
    return value


# --- Named errors --------------------------------------------------------------------------------

class ApiError(HTTPException):
    """An error whose message was written for the caller; `code` is its HTTP status."""

    def __init__(self, message):
        super().__init__(description=message)


class BadQuery(ApiError):
    """The request carries no usable text, or its body is not what the endpoint takes."""
    code = 400


class TooLarge(ApiError):
    """A text or a batch is over its configured limit."""
    code = 413


class ModelNotBuilt(ApiError):
    """The endpoint's model was not built in this deployment."""
    code = 404


class Unauthorized(ApiError):
    """API_TOKEN is set and the request does not carry it as a bearer token."""
    code = 401

    def get_headers(self, environ=None, scope=None):
        """RFC 6750: say which scheme to use."""
        return [("WWW-Authenticate", 'Bearer realm="sentiment"')]


HOW_TO_SEND = ('send the text as ?query=..., as a form field query=..., or as a JSON body {"query": "..."}')
# Messages for errors Werkzeug raises itself, by status.
MESSAGES = {
    400: "The request is malformed. " + HOW_TO_SEND[0].upper() + HOW_TO_SEND[1:] + ".",
    404: "No such endpoint. Score text with GET /?query=... or GET /fine-grained?query=...; "
         "the API is described at /openapi.json.",
    405: "{method} is not allowed here; this endpoint accepts {allow}.",
    413: "The request body is over {limit:,} bytes. Send fewer or shorter texts per request.",
}


def error_response(error):
    """The JSON answer for any exception: a message, the right status, and no internals."""
    if isinstance(error, ApiError):
        status, message = error.code, error.description
    elif isinstance(error, HTTPException) and error.code and error.code < 500:
        status = error.code
        allow = dict(error.get_headers()).get("Allow", "")
        message = MESSAGES.get(status, error.description or error.name).format(
            method=request.method, allow=allow or "other methods",
            limit=request.max_content_length or 0)
    else:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
        status, message = 500, "Internal error; it has been logged. Try again, and report it if it persists."
    response = jsonify(message=message)
    response.status_code = status
    if isinstance(error, HTTPException) and status != 500:
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    return response


class JsonApi(Api):
    """Flask-RESTful with its error handling routed through `error_response`."""

    def handle_error(self, e):
        """Answer every error of a resource as JSON."""
        return error_response(e)


# --- Request parsing: plain functions, testable without HTTP -------------------------------------

def is_json(mimetype):
    """True for application/json and the +json types."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def parse_form(raw, where):
    """Decode an application/x-www-form-urlencoded string (bytes), strictly as UTF-8."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadQuery(f"The {where} is not valid UTF-8. Percent-encode the text as UTF-8.") from None


def parse_json(body):
    """Decode a JSON body; malformed, non-UTF-8 or absurdly nested JSON is a `BadQuery`."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadQuery("The JSON body is not valid UTF-8.") from None
    except RecursionError:
        raise BadQuery("The JSON body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise BadQuery(f"The body is not valid JSON ({exc}).") from None
    except ValueError:  # an integer of thousands of digits; Python's own message names a Python setting
        raise BadQuery("The JSON body holds a number too long to read.") from None


def check_text(value, *, max_length, where):
    """Return `value` if it is a non-blank string within `max_length` characters."""
    if not isinstance(value, str):
        raise BadQuery(f"{where} must be a string, not {json_type(value)}.")
    if not value.strip():
        hint = HOW_TO_SEND if where == "query" else "every text in the batch needs words to score"
        raise BadQuery(f"{where} is empty or only whitespace; {hint}.")
    if len(value) > max_length:
        raise TooLarge(f"{where} is {len(value):,} characters long; the limit is {max_length:,}. "
                       "Send a shorter text.")
    return value


def json_type(value):
    """The JSON name of a decoded value's type, for messages."""
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def text_from_get(*, query_string, mimetype, body, max_length):
    """The one text of a GET: from ?query=, a form body (curl -d), or a JSON body {"query": ...}."""
    values = parse_form(query_string, "URL query string").get("query", [])
    if mimetype == "application/x-www-form-urlencoded":
        values += parse_form(body, "form body").get("query", [])
    elif is_json(mimetype) and body.strip():
        document = parse_json(body)
        if not isinstance(document, dict):
            raise BadQuery(f'The JSON body must be an object like {{"query": "..."}}, not {json_type(document)}.')
        if "query" in document:
            values.append(document["query"])
    if not values:
        raise BadQuery(f"Missing query: {HOW_TO_SEND}.")
    if len(values) > 1:
        raise BadQuery(f'query was sent {len(values)} times; send it once. '
                       'To score several texts in one request, POST {"queries": ["...", "..."]}.')
    return check_text(values[0], max_length=max_length, where="query")


def texts_from_post(*, body, max_length, max_batch):
    """The texts of a POST: a JSON body {"queries": ["...", ...]}, in order."""
    if not body.strip():
        raise BadQuery('POST takes a JSON body {"queries": ["...", ...]}; the body is empty.')
    try:
        document = parse_json(body)
    except BadQuery as exc:  # often `curl URL -d query=...` without -X GET, which curl sends as a POST
        raise BadQuery(f'{exc.description} POST takes a JSON body {{"queries": ["...", ...]}}; to score one '
                       "text, send a GET (with curl -d, add -X GET).") from None
    if not isinstance(document, dict) or "queries" not in document:
        raise BadQuery('POST takes a JSON object {"queries": ["...", ...]}. For one text, GET ?query=... works too.')
    queries = document["queries"]
    if not isinstance(queries, list):
        raise BadQuery(f"queries must be an array of strings, not {json_type(queries)}.")
    if not queries:
        raise BadQuery("queries is empty; send at least one text.")
    if len(queries) > max_batch:
        raise TooLarge(f"queries holds {len(queries):,} texts; the limit is {max_batch:,} per request. "
                       "Split the batch.")
    return [check_text(q, max_length=max_length, where=f"queries[{i}]") for i, q in enumerate(queries)]


def read_body(req):
    """The request body, or 413 when it is over MAX_CONTENT_LENGTH.

    Werkzeug refuses a too-long Content-Length, but silently cuts a chunked body (no Content-Length) at
    the limit; one more byte from the server's stream tells a body of exactly the limit from a longer one.
    """
    environ = req.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return b""  # most GETs: skip setting up Werkzeug's input stream (benchmarks/bench_serving.py)
    body = req.get_data(cache=True)
    limit = req.max_content_length
    if limit is not None and req.content_length is None and len(body) >= limit and req.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return body


# --- Resources -----------------------------------------------------------------------------------

class Sentiment(Resource):
    """Score text with one model: GET one text, POST a batch."""

    def __init__(self, *, model_name, model, settings, metrics):
        self.name, self.model, self.settings, self.metrics = model_name, model, settings, metrics

    def scoring_model(self):
        """The model, or a 404 that says how to build it."""
        if self.model is None:
            raise ModelNotBuilt(
                f"The {self.name} model is not built on this server. It needs Kaggle's train.tsv "
                "(five labels): run `python build_model.py --data PATH/train.tsv`, then restart the server "
                "or send it SIGHUP.")
        return self.model

    def get(self):
        """One text in, one answer out."""
        scorer = self.scoring_model()
        text = text_from_get(query_string=request.query_string, mimetype=request.mimetype,
                             body=read_body(request), max_length=self.settings["MAX_QUERY_LENGTH"])
        answers = scorer.predict([text])
        self.metrics.count_predictions(self.name, answers)
        return answers[0]

    def post(self):
        """Many texts in, answers out in the same order."""
        scorer = self.scoring_model()
        texts = texts_from_post(body=read_body(request), max_length=self.settings["MAX_QUERY_LENGTH"],
                                max_batch=self.settings["MAX_BATCH_SIZE"])
        answers = scorer.predict(texts)
        self.metrics.count_predictions(self.name, answers)
        return {"predictions": answers}


class Models(Resource):
    """What each served model is: labels, metrics, hyper-parameters, creation time, data hash."""

    def __init__(self, *, models):
        self.models = models

    def get(self):
        """Every served model's description; no file-system paths."""
        return {"models": [m.info() for m in self.models.values()]}


class OpenApi(Resource):
    """The OpenAPI 3.1 document of this server, built once from its settings."""

    def __init__(self, *, document):
        self.document = document

    def get(self):
        """The document."""
        return self.document


class Health(Resource):
    """200 once the models are loaded (the app does not exist before that)."""

    def __init__(self, *, models):
        self.models = models

    def get(self):
        """Liveness and readiness in one."""
        return {"status": "ok", "models": sorted(self.models)}


# --- Operations: request ids, one access-log line per request, Prometheus metrics ----------------

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed only if it is short and plain, so it cannot forge log lines or bloat them.
GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Scoring takes well under a millisecond, so the buckets start far below prometheus-client's 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ACCESS_LOGGER = "sentiment.access"


class Metrics:
    """The service's Prometheus metrics, in one registry per app or in gunicorn's shared files.

    Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is
    imported: every worker then writes its values to files there and `/metrics` sums them, so the
    counts are right whichever worker answers. Without it (`python app.py`, Flask's test client)
    each app keeps its own in-memory registry.
    """

    def __init__(self, *, multiprocess_dir=None):
        self.multiprocess_dir = multiprocess_dir
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
    return datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00")).timestamp()


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

    def __init__(self, stream, *, json_lines):
        self.stream, self.json_lines = stream, json_lines
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
        else:
            line = (f"{stamp} INFO {ACCESS_LOGGER} {method} {path} {status} {seconds * 1000:.3f}ms "
                    f"model={model_name or '-'} id={request_id}")
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class Operations:
    """WSGI middleware around the Flask app: what happens once per request, whatever the endpoint.

    It gives each answer its request id, its security and CORS headers, counts it in the metrics and
    writes its access-log line. It works on the raw WSGI environ and header list: done with Flask
    hooks, Werkzeug's header objects and flask-cors, the same work made a GET take ~160 us in-process
    instead of ~100 us (scoring the text takes ~10 us); under gunicorn the service then answered 2.2x
    the tutorial baseline's requests/s, against ~2.8x now (benchmarks/bench_serving.py).
    """

    def __init__(self, wsgi_app, *, metrics, access_log, cors_origins):
        self.wsgi_app, self.metrics, self.access_log = wsgi_app, metrics, access_log
        self.any_origin = "*" in cors_origins
        self.cors_origins = frozenset(cors_origins)

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
        extra = [(REQUEST_ID_HEADER, request_id), ("X-Content-Type-Options", "nosniff")]
        if "cache-control" not in present:
            extra.append(("Cache-Control", "no-store"))
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
                              remote_addr=environ.get("REMOTE_ADDR"))


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


# --- Pages for people: API docs and a demo, every asset served from here -------------------------

STATIC_DIR = HERE / "static"
# Swagger UI's files ship inside the swagger-ui-py wheel: /docs works offline, with no CDN.
SWAGGER_UI_DIR = Path(swagger_ui.__file__).resolve().parent / "static"
SWAGGER_UI_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
# The pages' own scripts and style sheet; only these files of static/ are reachable by URL.
PAGE_ASSETS = frozenset({"demo.css", "demo.js", "docs.js"})


# The pages may load and call nothing but this app: the browser enforces what the tests check.
# Inline styles stay allowed for Swagger UI's components, and data: images for its icons.
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'"


def add_pages(app):
    """Wire /docs, its Swagger UI assets, and /demo."""
    app.add_url_rule("/docs", "docs", lambda: page("docs.html"))
    app.add_url_rule("/docs/<name>", "docs_asset", swagger_ui_asset)
    app.add_url_rule("/demo", "demo", lambda: page("demo.html"))
    app.add_url_rule("/static/<name>", "page_asset", page_asset)


def page(name):
    """One of the HTML pages in static/, under a policy that keeps it to this app's own files."""
    response = send_from_directory(STATIC_DIR, name, max_age=0)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def page_asset(name):
    """One of the pages' own scripts or style sheet (listed in PAGE_ASSETS), never any other file."""
    if name not in PAGE_ASSETS:
        raise NotFound()
    return send_from_directory(STATIC_DIR, name, max_age=0)


def swagger_ui_asset(name):
    """One of Swagger UI's files; they change only with the package, so browsers may keep them a day."""
    if name not in SWAGGER_UI_FILES:
        raise NotFound()
    return send_from_directory(SWAGGER_UI_DIR, name, max_age=86400)


# --- The application factory ---------------------------------------------------------------------

def create_app(config=None):
    """Build the app: read the settings, load and verify every model, wire the resources."""
    settings = load_config()
    settings.update(config or {})
    app = Flask(__name__, static_folder=None)  # no file serving: nothing on disk is reachable by URL
    app.config.update(settings, ERROR_404_HELP=False)
    models = model.load_models(settings["MODEL_DIR"])
    configure_logging(settings["LOG_FORMAT"])
    metrics = Metrics(multiprocess_dir=settings["PROMETHEUS_MULTIPROC_DIR"])
    metrics.describe_models(models)

    api = JsonApi(app, catch_all_404s=True)
    for name, route in MODEL_ROUTES.items():
        api.add_resource(Sentiment, route, endpoint=name,
                         resource_class_kwargs={"model_name": name, "model": models.get(name), "settings": settings,
                                                "metrics": metrics})
    api.add_resource(Health, "/health", resource_class_kwargs={"models": models})
    api.add_resource(Models, "/models", resource_class_kwargs={"models": models})
    app.add_url_rule("/metrics", "metrics", lambda: (metrics.exposition(), 200,
                                                     {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}))
    api.add_resource(OpenApi, "/openapi.json", resource_class_kwargs={"document": openapi.openapi_document(settings)})
    add_pages(app)
    app.register_error_handler(Exception, error_response)

    if settings["API_TOKEN"] is not None:
        @app.before_request
        def require_token():
            """Scoring and /models need `Authorization: Bearer <token>`; CORS preflights never carry it."""
            if request.method != "OPTIONS":
                check_token(request.endpoint, request.headers.get("Authorization"), settings["API_TOKEN"])

    access_log = AccessLog(sys.stdout, json_lines=settings["LOG_FORMAT"] == "json")
    app.wsgi_app = Operations(app.wsgi_app, metrics=metrics, access_log=access_log,
                              cors_origins=settings["CORS_ORIGINS"])
    return app


# Endpoints that need the token when API_TOKEN is set; /health, /openapi.json stay open for probes.
PROTECTED_ENDPOINTS = frozenset(MODEL_ROUTES) | {"models"}


def check_token(endpoint, authorization, token):
    """Raise `Unauthorized` unless `token` is unset, `endpoint` is open, or the header carries the token."""
    if token is None or endpoint not in PROTECTED_ENDPOINTS:
        return
    scheme, _, given = (authorization or "").partition(" ")
    # compare_digest takes the same time wherever the strings differ. It refuses non-ASCII str, so compare
    # bytes: WSGI hands headers over as latin-1, which gives back the bytes the client sent.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1", "replace"),
                                                             token.encode("utf-8")):
        raise Unauthorized("This endpoint needs the API token: send the header Authorization: Bearer <token>.")


def __getattr__(name):
    """`app.app`, built on first use, is what `gunicorn app:app` imports; tests build their own."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None):
    """`python app.py`: the development server on 127.0.0.1:5000, debug off unless --debug."""
    parser = argparse.ArgumentParser(description="Serve the sentiment models (development server).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="Flask's debugger: never on a shared network")
    args = parser.parse_args(argv)
    try:
        application = create_app()
    except (model.ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The app logs one line per request without the query string; Werkzeug's own line would add the
    # full URL, and with it the text being scored.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    application.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
