"""The HTTP face of the sentiment models: a Flask-RESTful app built by `create_app()`.

    python app.py                 # development server on 127.0.0.1:5000
    gunicorn app:app              # production; server settings in gunicorn.conf.py

Endpoints (reference in the README and at /openapi.json):
    GET  /?query=...              binary model      POST / {"queries": [...]}
    GET  /fine-grained?query=...  five-label model  POST /fine-grained {"queries": [...]}
    POST /feedback {"id": "...", "label": "..."}   the true label of an earlier answer
    GET  /health, GET /models
    /v2/...                       the Open Inference Protocol (KServe, MLServer, Triton clients)
    GET  /metrics (Prometheus), /docs (API docs for people), /demo (try it in a browser)

This module holds the factory, the resources, the token check and `error_response`, the one place
statuses are decided. Beside it, one module per job: `config` (settings), `parsing` (the named errors
and the request parsers), `operations` (the per-request middleware), `metrics` (Prometheus), `logs`
(the access line and log formats), `lifecycle` (what runs once per process, under gunicorn and
`python app.py`), `recording` (answer ids, versions, feedback) over `prediction_log` (the database),
`open_inference` (the Open Inference Protocol's documents and requests), `pages` (/docs and /demo),
`openapi` (the contract), and `model` (no HTTP).
"""
import argparse
import gc
import hmac
import logging
import sys

import prometheus_client
from flask import Flask, after_this_request, current_app, jsonify, request
from flask_restful import Api, Resource
from werkzeug.exceptions import HTTPException

import follower
import ids
import lifecycle
import logs
import model
import open_inference
import openapi
import operations
import pages
import parsing
import prediction_log
import recording
from config import MODEL_ROUTES, PROTECTED_ENDPOINTS, ROUTES, V2_ROUTES, ConfigError, Settings
from metrics import Metrics, use_values_in
from operations import REQUEST_ID_KEY
from parsing import (
    HOW_TO_SEND,
    ModelNotBuilt,
    NotServed,
    Unauthorized,
    feedback_from_post,
    read_body,
    text_from_get,
    texts_from_post,
)

log = logging.getLogger("sentiment")


# --- Errors: every one answers JSON {"message": ...} ---------------------------------------------

# Messages for errors Werkzeug raises itself, by status.
MESSAGES = {
    400: "The request is malformed. " + HOW_TO_SEND[0].upper() + HOW_TO_SEND[1:] + ".",
    404: "No such endpoint. Score text with " + " or ".join(f"GET {route}?query=..." for route in MODEL_ROUTES.values())
         + "; the API is described at /openapi.json.",
    405: "{method} is not allowed here; this endpoint accepts {allow}.",
    413: "The request body is over {limit:,} bytes. Send fewer or shorter texts per request.",
}


V2_PREFIX = "/v2"  # the Open Inference Protocol's paths, whose errors answer {"error": ...}


def is_protocol_path(path):
    """True for /v2 and the paths under it."""
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def error_response(error):
    """The JSON answer for any exception: a message, the right status, and no internals."""
    if isinstance(error, parsing.ApiError):
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
    # The Open Inference Protocol's clients read an error's message from "error".
    response = jsonify({"error" if is_protocol_path(request.path) else "message": message})
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


# --- Resources -----------------------------------------------------------------------------------

class Sentiment(Resource):
    """Score text with one model: GET one text, POST a batch."""

    def __init__(self, *, model_name, models, shadows, settings, metrics, recorder):
        self.name, self.models, self.shadows, self.settings = model_name, models, shadows, settings
        self.metrics, self.recorder = metrics, recorder

    def get(self):
        """One text in, one answer out."""
        served = built(self.name, self.models.get(self.name))  # looked up per request: releases switch it
        text, explain = text_from_get(query_string=request.query_string, mimetype=request.mimetype,
                                      body=read_body(request), max_length=self.settings.MAX_QUERY_LENGTH)
        return score_and_record(served, [text], explain=explain, shadow=self.shadows.get(self.name),
                                metrics=self.metrics, recorder=self.recorder).answers[0]

    def post(self):
        """Many texts in, answers out in the same order."""
        served = built(self.name, self.models.get(self.name))
        texts, explain = texts_from_post(body=read_body(request), max_length=self.settings.MAX_QUERY_LENGTH,
                                         max_batch=self.settings.MAX_BATCH_SIZE)
        scored = score_and_record(served, texts, explain=explain, shadow=self.shadows.get(self.name),
                                  metrics=self.metrics, recorder=self.recorder)
        return {"predictions": scored.answers}


def score_and_record(served, texts, *, explain, shadow, metrics, recorder):
    """Score `texts` with the loaded model `served`, and with its `shadow` version too if it has one (the
    answers do not change), count them in the metrics, and give each answer its id and version; their rows
    are queued for the prediction log once the answer is sent. Returns the `Scored`."""
    scored = served.score(texts, explain=explain)
    metrics.count_scored(served.name, scored, texts)
    shadowed = None
    if shadow is not None:
        shadowed = (shadow.version, shadow.labels_of(texts))
        metrics.count_shadow(served.name, scored.answers, shadowed[1])
    when_sent(recorder.stamp(served, scored, texts, request_id=request.environ.get(REQUEST_ID_KEY),
                             shadow=shadowed))
    return scored


def built(name, served):
    """`served`, the loaded model `name`, or a 404 that says how to build it."""
    if served is None:
        raise ModelNotBuilt(
            f"The {name} model is not built on this server. It needs Kaggle's train.tsv "
            "(five labels): run `python build_model.py --data PATH/train.tsv`, then restart the server "
            "or send it SIGHUP.")
    return served


def when_sent(work):
    """Run `work` (a function of no arguments) once this request's answer has gone out: when the server
    closes the response, after writing its body. The prediction log's rows are queued so: a client
    waiting for a large answer does not wait for its rows to be queued too."""
    @after_this_request
    def on_close(response):
        response.call_on_close(work)
        return response


class Feedback(Resource):
    """The true labels of earlier answers, named by their ids: one, or a batch."""

    def __init__(self, *, settings, recorder):
        self.settings, self.recorder = settings, recorder

    def post(self):
        """Check every item, then record them all: 202, since they reach the database from a queue."""
        items = feedback_from_post(body=read_body(request), max_batch=self.settings.MAX_BATCH_SIZE)
        return {"accepted": self.recorder.feedback(items)}, 202


class Models(Resource):
    """What each served model is: version, labels, metrics, hyper-parameters, creation time, data hash, and
    the feedback its answers received."""

    def __init__(self, *, models, shadows, log):
        self.models, self.shadows, self.log = models, shadows, log

    def get(self):
        """Every served model's description; no file-system paths."""
        summary = self.log.feedback_summary()
        return {"models": [{**m.info(), "shadow_version": s.version if (s := self.shadows.get(m.name)) else None,
                            "feedback": None if summary is None else {
                                "count": 0, "accuracy": None, **summary.get(m.name, {}), "days": self.log.days}}
                           for m in list(self.models.values())]}


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


class ProtocolMetadata(Resource):
    """The Open Inference Protocol's GET endpoints (see `open_inference`): server and model metadata,
    liveness and readiness; `endpoint` says which this one is."""

    def __init__(self, *, endpoint, models):
        self.endpoint, self.models = endpoint, models

    def get(self, model_name=None, model_version=None):
        """The endpoint's document."""
        if self.endpoint == "v2_server":
            return open_inference.server_metadata()
        if self.endpoint == "v2_live":
            return {"live": True}
        if self.endpoint == "v2_ready":  # the app exists only once every model is loaded and verified
            return {"ready": True}
        served = protocol_model(self.models, model_name, model_version)
        if self.endpoint == "v2_model_ready":
            return {"name": served.name, "ready": True}
        return open_inference.model_metadata(served.name, served.version, served.labels)


class ProtocolInference(Resource):
    """The Open Inference Protocol's inference: POST .../infer."""

    def __init__(self, *, models, shadows, settings, metrics, recorder):
        self.models, self.shadows, self.settings = models, shadows, settings
        self.metrics, self.recorder = metrics, recorder

    def post(self, model_name, model_version=None):
        """The texts of the `text` input scored, answered as the outputs asked for."""
        served = protocol_model(self.models, model_name, model_version)
        infer = open_inference.parse_infer(read_body(request), request.headers.get(open_inference.HEADER_LENGTH),
                                           max_length=self.settings.MAX_QUERY_LENGTH,
                                           max_batch=self.settings.MAX_BATCH_SIZE)
        scored = score_and_record(served, infer.texts, explain=False, shadow=self.shadows.get(served.name),
                                  metrics=self.metrics, recorder=self.recorder)
        body, headers = open_inference.infer_response(infer, model_name=served.name, model_version=served.version,
                                                      labels=served.labels, scored=scored)
        return current_app.response_class(body, 200, headers)


def protocol_model(models, name, version):
    """The loaded model a protocol path names (and its version, if it names one), or a 404 saying what
    is served."""
    if name not in MODEL_ROUTES:
        raise NotServed(f"No model is named {name[:64]!r}; this server has {', '.join(MODEL_ROUTES)} "
                        f"({V2_PREFIX}/models/NAME describes each).")
    served = built(name, models.get(name))
    if version is not None and version != served.version:
        raise NotServed(f"Version {version[:64]!r} of the {name} model is not served; it serves {served.version}. "
                        "Leave the version out of the path for the one served.")
    return served


# --- The application factory ---------------------------------------------------------------------

def create_app(config=None, *, models=None):
    """Build the app: settings, every model loaded and verified, the resources, pages and operations.

    `config` is a `Settings`, or a dict of setting names (the rest keep their defaults); given one, the
    environment is not read. Without it, the settings come from the environment variables. `models`
    (name -> loaded `model.SentimentModel`) replaces loading them from MODEL_DIR.
    """
    settings = config if isinstance(config, Settings) else (
        Settings.from_env() if config is None else Settings.from_mapping(config))
    app = Flask(__name__, static_folder=None)  # no file serving: nothing on disk is reachable by URL
    app.config.update(vars(settings), ERROR_404_HELP=False)
    following = models is None  # models handed in are served as they are; those of MODEL_DIR follow its links
    models = model.load_models(settings.MODEL_DIR) if models is None else models
    shadows = {}  # name -> the version scored in shadow beside the live one, filled by the follower
    use_values_in(settings.PROMETHEUS_MULTIPROC_DIR)  # process-wide: this app's settings decide, not the shell
    metrics = Metrics(multiprocess_dir=settings.PROMETHEUS_MULTIPROC_DIR)
    metrics.describe_models(models)
    # The prediction log: checked (and its schema made) here, in the master; its writer runs in each worker.
    log_ = prediction_log.configured_log(settings, on_drop=metrics.count_dropped)
    recorder = recording.Recorder(signer=ids.Signer(log_.prepare()), log=log_, models=models, metrics=metrics)

    def switched(role, name, old, new):
        """After the follower switched a version in: the metrics and ids of a new live one."""
        if role == "live":
            recorder.learn(new)
            metrics.describe_model(name, new, replaces=old)
    releases = follower.Follower(model_dir=settings.MODEL_DIR, names=MODEL_ROUTES if following else (),
                                 models=models, shadows=shadows, interval=settings.MODEL_POLL_SECONDS,
                                 on_switch=switched, metrics=metrics)
    releases.check()  # here, in the master: the shadows' arrays are shared by every worker, as the models'

    api = JsonApi(app, catch_all_404s=True)
    for name, route in MODEL_ROUTES.items():
        api.add_resource(Sentiment, route, endpoint=name,
                         resource_class_kwargs={"model_name": name, "models": models, "shadows": shadows,
                                                "settings": settings, "metrics": metrics, "recorder": recorder})
    for endpoint, routes in V2_ROUTES.items():
        if endpoint == "v2_infer":
            api.add_resource(ProtocolInference, *routes, endpoint=endpoint, resource_class_kwargs={
                "models": models, "shadows": shadows, "settings": settings, "metrics": metrics,
                "recorder": recorder})
        else:
            api.add_resource(ProtocolMetadata, *routes, endpoint=endpoint,
                             resource_class_kwargs={"endpoint": endpoint, "models": models})
    api.add_resource(Feedback, ROUTES["feedback"], endpoint="feedback",
                     resource_class_kwargs={"settings": settings, "recorder": recorder})
    api.add_resource(Health, ROUTES["health"], endpoint="health", resource_class_kwargs={"models": models})
    api.add_resource(Models, ROUTES["models"], endpoint="models",
                     resource_class_kwargs={"models": models, "shadows": shadows, "log": log_})
    api.add_resource(OpenApi, ROUTES["openapi"], endpoint="openapi",
                     resource_class_kwargs={"document": openapi.openapi_document(settings)})
    app.add_url_rule(ROUTES["metrics"], "metrics", lambda: (metrics.exposition(), 200,
                                                            {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}))
    pages.add_pages(app)
    app.register_error_handler(Exception, error_response)
    # What needs a thread or a connection of its own in every process, or a last write at exit
    # (lifecycle.Service): started after gunicorn forks a worker (or by `python app.py`), stopped when it
    # exits. Add such parts here.
    app.extensions[lifecycle.SERVICES] = [log_, metrics, releases]

    if settings.API_TOKEN is not None:
        @app.before_request
        def require_token():
            """Scoring and /models need `Authorization: Bearer <token>`; CORS preflights never carry it."""
            if request.method != "OPTIONS":
                check_token(request.endpoint, request.headers.get("Authorization"), settings.API_TOKEN)

    app.wsgi_app = operations.Operations(
        app.wsgi_app, metrics=metrics, access_log=logs.AccessLog(json_lines=settings.LOG_FORMAT == "json"),
        cors_origins=settings.CORS_ORIGINS, trusted_proxies=settings.FORWARDED_ALLOW_IPS)
    return app


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


# --- What gunicorn and the development server run ------------------------------------------------

def __getattr__(name):
    """`app.app`, built on first use, is what `gunicorn app:app` imports; tests build their own."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_in_master():
    """Build `app.app` in gunicorn's master, at start and on SIGHUP; workers fork with it.

    The models are then loaded once and their arrays shared by every worker. Raises `ModelError` or
    `ConfigError` and leaves the app already built in place when the new models cannot be trusted.
    """
    settings = Settings.from_env()
    logs.configure_logging(settings.LOG_FORMAT)
    fresh = create_app(settings)
    globals()["app"] = fresh
    # Keep the loaded objects out of the garbage collector's sweeps, which would write to (and so copy
    # into every worker) the pages the workers share with the master. The old app, frozen too, would be
    # kept alive for ever by its reference cycles: thaw, collect it, freeze the new one.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return fresh


def main(argv=None):
    """`python app.py`: the development server on 127.0.0.1:5000, debug off unless --debug."""
    parser = argparse.ArgumentParser(description="Serve the sentiment models (development server).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--debug", action="store_true", help="Flask's debugger: never on a shared network")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure_logging(settings.LOG_FORMAT)
        application = create_app(settings)
    except (model.ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # The app logs one line per request without the query string; Werkzeug's own line would add the
    # full URL, and with it the text being scored.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    lifecycle.start_services(application)  # one process, no fork: its services start here
    try:
        application.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
    finally:
        lifecycle.stop_services(application, lifecycle.STOP_TIMEOUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
