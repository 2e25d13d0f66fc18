"""The HTTP face of the sentiment models: a Flask-RESTful app built by `create_app()`.

    python app.py                 # development server on 127.0.0.1:5000
    gunicorn app:app              # production; settings in gunicorn.conf.py

Endpoints (full reference in the README and at /openapi.json):
    GET  /?query=...              binary model      POST / {"queries": [...]}
    GET  /fine-grained?query=...  five-label model  POST /fine-grained {"queries": [...]}
    GET  /health, GET /models

Request parsing lives in plain functions (`text_from_get`, `texts_from_post`) that take what Flask
hands over and return the texts to score or raise one of the named errors below; every error
becomes a JSON `{"message": ...}` in `error_response`, the one place statuses are decided.
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path
from urllib.parse import parse_qs

from flask import Flask, jsonify, request
from flask_restful import Api, Resource
from werkzeug.exceptions import HTTPException

import model

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
        "LOG_FORMAT": environ.get("LOG_FORMAT", "text"),
    }


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
    except ValueError as exc:
        raise BadQuery(f"The body is not valid JSON ({exc}).") from None


def check_text(value, *, max_length, where):
    """Return `value` if it is a non-blank string within `max_length` characters."""
    if not isinstance(value, str):
        raise BadQuery(f"{where} must be a string, not {json_type(value)}.")
    if not value.strip():
        raise BadQuery(f"{where} is empty or only whitespace; {HOW_TO_SEND}.")
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
    document = parse_json(body)
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


# --- Resources -----------------------------------------------------------------------------------

def get_body():
    """The request body; b"" without reading the input stream when the request declares none.

    Most GETs have no body, and setting up Werkzeug's stream for nothing was a measurable share of
    a request's cost (benchmarks/bench_serving.py).
    """
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return b""
    return request.get_data(cache=True)


class Sentiment(Resource):
    """Score text with one model: GET one text, POST a batch."""

    def __init__(self, *, model_name, model, settings):
        self.name, self.model, self.settings = model_name, model, settings

    def scoring_model(self):
        """The model, or a 404 that says how to build it."""
        if self.model is None:
            raise ModelNotBuilt(
                f"The {self.name} model is not built on this server. It needs Kaggle's train.tsv "
                "(five labels): run `python build_model.py --data PATH/train.tsv` and restart.")
        return self.model

    def get(self):
        """One text in, one answer out."""
        scorer = self.scoring_model()
        text = text_from_get(query_string=request.query_string, mimetype=request.mimetype,
                             body=get_body(), max_length=self.settings["MAX_QUERY_LENGTH"])
        return scorer.predict([text])[0]

    def post(self):
        """Many texts in, answers out in the same order."""
        scorer = self.scoring_model()
        texts = texts_from_post(body=request.get_data(cache=True), max_length=self.settings["MAX_QUERY_LENGTH"],
                                max_batch=self.settings["MAX_BATCH_SIZE"])
        return {"predictions": scorer.predict(texts)}


class Models(Resource):
    """What each served model is: labels, metrics, hyper-parameters, creation time, data hash."""

    def __init__(self, *, models):
        self.models = models

    def get(self):
        """Every served model's description; no file-system paths."""
        return {"models": [m.info() for m in self.models.values()]}


class Health(Resource):
    """200 once the models are loaded (the app does not exist before that)."""

    def __init__(self, *, models):
        self.models = models

    def get(self):
        """Liveness and readiness in one."""
        return {"status": "ok", "models": sorted(self.models)}


# --- The application factory ---------------------------------------------------------------------

def create_app(config=None):
    """Build the app: read the settings, load and verify every model, wire the resources."""
    settings = load_config()
    settings.update(config or {})
    app = Flask(__name__)
    app.config.update(settings, ERROR_404_HELP=False, JSON_SORT_KEYS=False)
    models = model.load_models(settings["MODEL_DIR"])

    api = JsonApi(app, catch_all_404s=True)
    for name, route in MODEL_ROUTES.items():
        api.add_resource(Sentiment, route, endpoint=name,
                         resource_class_kwargs={"model_name": name, "model": models.get(name), "settings": settings})
    api.add_resource(Health, "/health", resource_class_kwargs={"models": models})
    api.add_resource(Models, "/models", resource_class_kwargs={"models": models})
    app.register_error_handler(Exception, error_response)
    app.after_request(security_headers)
    return app


def security_headers(response):
    """Headers that suit a JSON API: no MIME sniffing, no caching of answers that may change."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


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
    application.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
