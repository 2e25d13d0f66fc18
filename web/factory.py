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

This module holds the factory and `build_in_master`, which the root module `app.py` re-exports.
Beside it in `web/`: `resources` (the flask_restful resources), `errors` (`error_response`, the one
place statuses are decided, and the token check), `parsing` (the request parsers), `operations` (the
per-request middleware), `open_inference` (the Open Inference Protocol's documents and requests),
`pages` (/docs and /demo) and `openapi` (the contract). Below it, in `serving/`: `config` (settings),
`errors` (the named errors), `metrics` (Prometheus), `logs` (the access line and log formats),
`lifecycle` (what runs once per process, under gunicorn and `python app.py`), `follower` (releases),
`recording` (answer ids, versions, feedback) over `prediction_log` (the database); and `kinds/` (the
models, no HTTP) over `store/` (the artifact contract).
"""
import gc
import logging
import re

import prometheus_client
from flask import Flask, request
from werkzeug.routing import BaseConverter

import kinds
from serving import follower, ids, lifecycle, logs, prediction_log, recording
from serving.config import (
    MODEL_ROUTES,
    PROTECTED_ENDPOINTS,
    RESERVED_PATHS,
    ROUTES,
    V2_ROUTES,
    ConfigError,
    Settings,
    check_added,
    model_routes,
)
from serving.metrics import Metrics, use_values_in
from web import openapi, operations, pages
from web.errors import JsonApi, check_token, error_response
from web.resources import (
    AddedPredictions,
    Feedback,
    Health,
    Models,
    OpenApi,
    Predictions,
    ProtocolInference,
    ProtocolMetadata,
)


def create_app(config=None, *, models=None):
    """Build the app: settings, every model loaded and verified, the resources, pages and operations.

    `config` is a `Settings`, or a dict of setting names (the rest keep their defaults); given one, the
    environment is not read. Without it, the settings come from the environment variables. `models`
    (name -> a loaded model of any kind, `serving.kind.ModelKind`) replaces loading them from MODEL_DIR.
    """
    settings = config if isinstance(config, Settings) else (
        Settings.from_env() if config is None else Settings.from_mapping(config))
    app = Flask(__name__, static_folder=None)  # no file serving: nothing on disk is reachable by URL
    app.url_map.converters["added"] = AddedRouteConverter
    app.config.update(vars(settings), ERROR_404_HELP=False)
    following = models is None  # models handed in are served as they are; those of MODEL_DIR follow its links
    models = kinds.load_models(settings.MODEL_DIR) if models is None else models
    routes = served_routes(models)
    shadows = {}  # name -> the version scored in shadow beside the live one, filled by the follower
    use_values_in(settings.PROMETHEUS_MULTIPROC_DIR)  # process-wide: this app's settings decide, not the shell
    metrics = Metrics(multiprocess_dir=settings.PROMETHEUS_MULTIPROC_DIR)
    metrics.describe_models(models)
    # The prediction log: checked (and its schema made) here, in the master; its writer runs in each worker.
    log_ = prediction_log.configured_log(settings, on_drop=metrics.count_dropped)
    recorder = recording.Recorder(signer=ids.Signer(log_.prepare()), log=log_, models=models, metrics=metrics)

    added = {route: name for name, route in routes.items() if name not in MODEL_ROUTES}  # route -> added model

    def switched(role, name, old, new):
        """After the follower switched a version in: the metrics and ids of a new live one, and the route of
        a model added while the server runs."""
        if role == "live":
            recorder.learn(new)
            metrics.describe_model(name, new, replaces=old)
            if name not in MODEL_ROUTES:
                take_route(added, name, new.route)
    releases = follower.Follower(model_dir=settings.MODEL_DIR, names=list(routes) if following else (),
                                 discover=following, models=models, shadows=shadows,
                                 interval=settings.MODEL_POLL_SECONDS, load=kinds.load,
                                 on_switch=switched, metrics=metrics)
    releases.check()  # here, in the master: the shadows' arrays are shared by every worker, as the models'

    api = JsonApi(app, catch_all_404s=True)
    scoring = {"models": models, "shadows": shadows, "settings": settings, "metrics": metrics, "recorder": recorder}
    for name, route in MODEL_ROUTES.items():
        api.add_resource(Predictions, route, endpoint=name, resource_class_kwargs={"model_name": name, **scoring})
    # Every other path: an added model's route, or a 404 (the rule comes after every fixed one).
    api.add_resource(AddedPredictions, ADDED_RULE, endpoint=ADDED_ENDPOINT,
                     resource_class_kwargs={"routes": added, **scoring})
    for endpoint, paths in V2_ROUTES.items():
        if endpoint == "v2_infer":
            api.add_resource(ProtocolInference, *paths, endpoint=endpoint, resource_class_kwargs={
                "models": models, "shadows": shadows, "settings": settings, "metrics": metrics,
                "recorder": recorder})
        else:
            api.add_resource(ProtocolMetadata, *paths, endpoint=endpoint,
                             resource_class_kwargs={"endpoint": endpoint, "models": models})
    api.add_resource(Feedback, ROUTES["feedback"], endpoint="feedback",
                     resource_class_kwargs={"settings": settings, "recorder": recorder})
    api.add_resource(Health, ROUTES["health"], endpoint="health", resource_class_kwargs={"models": models})
    api.add_resource(Models, ROUTES["models"], endpoint="models",
                     resource_class_kwargs={"models": models, "shadows": shadows, "log": log_})
    api.add_resource(OpenApi, ROUTES["openapi"], endpoint="openapi",
                     resource_class_kwargs={"document": openapi.openapi_document(
                         settings, {name: served.describe() for name, served in models.items()}, routes)})
    app.add_url_rule(ROUTES["metrics"], "metrics", lambda: (metrics.exposition(), 200,
                                                            {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}))
    pages.add_pages(app)
    app.register_error_handler(Exception, error_response)
    # What needs a thread or a connection of its own in every process, or a last write at exit
    # (lifecycle.Service): started after gunicorn forks a worker (or by `python app.py`), stopped when it
    # exits. Add such parts here.
    app.extensions[lifecycle.SERVICES] = [log_, metrics, releases]
    app.extensions[pages.ADDED_MODELS] = added

    if settings.API_TOKEN is not None:
        @app.before_request
        def require_token():
            """Scoring and /models need `Authorization: Bearer <token>`; CORS preflights never carry it. An
            added model's route needs it too; a path that is no model's answers 404 as it would without."""
            if request.method != "OPTIONS" and (request.endpoint != ADDED_ENDPOINT or request.path in added):
                check_token(request.endpoint, request.headers.get("Authorization"), settings.API_TOKEN,
                            PROTECTED_ENDPOINTS | {ADDED_ENDPOINT})

    app.wsgi_app = operations.Operations(
        app.wsgi_app, metrics=metrics, access_log=logs.AccessLog(json_lines=settings.LOG_FORMAT == "json"),
        cors_origins=settings.CORS_ORIGINS, trusted_proxies=settings.FORWARDED_ALLOW_IPS, added_routes=added,
        models=models)
    return app


ADDED_RULE, ADDED_ENDPOINT = "/<added:route>", "added"  # where added models are answered (`AddedPredictions`)


class AddedRouteConverter(BaseConverter):
    """A path no fixed rule answers: not under the service's own paths (RESERVED_PATHS) nor a built model's
    route, so the added models' rule never shows in another path's methods (its `Allow`, its 405s)."""

    part_isolating = False  # it matches slashes, as werkzeug's `path` does
    fixed = "|".join(map(re.escape, sorted(RESERVED_PATHS | {r.strip("/") for r in MODEL_ROUTES.values() if r != "/"})))
    regex = rf"(?!(?:{fixed})(?:/|$))[^/].*?"


def take_route(added, name, route):
    """Answer the added model `name` at `route` from now on ({route: name} `added`), unless another model
    has it; then the new one is not answered, and the log says why."""
    taken = {**MODEL_ROUTES, **{other: path for path, other in added.items() if other != name}}
    try:
        check_added(name, route, taken)
    except ConfigError as exc:
        logging.getLogger("sentiment").error("release: the %s model is not answered: %s", name, exc)
        return
    for path in [path for path, other in added.items() if other == name and path != route]:
        del added[path]  # a new version moved it
    added[route] = name


def served_routes(models):
    """{name: route} of every model route, the added models' checked as `release.py add` checked them (a
    manifest edited by hand could name a route the service answers itself); `ModelError` if one cannot be."""
    routes = model_routes(models)
    for name in routes.keys() - MODEL_ROUTES.keys():
        try:
            check_added(name, routes[name], routes)
        except ConfigError as exc:
            raise kinds.ModelError(f"the {name} model cannot be served: {exc}") from None
    return routes


def build_in_master():
    """Build the app in gunicorn's master, at start and on SIGHUP; workers fork with it. It is kept here as
    `app` (this module's global), which the root module's `app.app` answers.

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
