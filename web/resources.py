"""The HTTP face's resources: the flask_restful `Resource` classes `web.factory.create_app` routes, and
the helpers they share (`score_and_record`, `built`, `when_sent`, `protocol_model`).

Each scoring resource reads its model per request from the dict the follower switches
(`serving.follower`), scores with it (`kinds`), and has the answers stamped and queued for the
prediction log (`serving.recording`); errors are raised as the named errors of `serving.errors`.
"""
from flask import after_this_request, current_app, request
from flask_restful import Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from serving.config import MODEL_ROUTES, model_routes
from serving.errors import ModelNotBuilt, NotServed
from web import open_inference
from web.errors import V2_PREFIX
from web.operations import REQUEST_ID_KEY
from web.parsing import feedback_from_post, read_body


class Predictions(Resource):
    """Score inputs with one model, whatever its kind: GET one input, POST a batch. The kind reads them
    (`serving.kind.ModelKind.inputs_from_get` and `inputs_from_post`)."""

    def __init__(self, *, model_name, models, shadows, settings, metrics, recorder):
        self.name, self.models, self.shadows, self.settings = model_name, models, shadows, settings
        self.metrics, self.recorder = metrics, recorder

    def get(self):
        """One input in, one answer out."""
        served = built(self.name, self.models.get(self.name))  # looked up per request: releases switch it
        inputs, explain = served.inputs_from_get(query_string=request.query_string, mimetype=request.mimetype,
                                                 body=read_body(request), settings=self.settings)
        return score_and_record(served, inputs, explain=explain, shadow=self.shadows.get(self.name),
                                metrics=self.metrics, recorder=self.recorder).answers[0]

    def post(self):
        """Many inputs in, answers out in the same order."""
        served = built(self.name, self.models.get(self.name))
        inputs, explain = served.inputs_from_post(body=read_body(request), settings=self.settings)
        scored = score_and_record(served, inputs, explain=explain, shadow=self.shadows.get(self.name),
                                  metrics=self.metrics, recorder=self.recorder)
        return {"predictions": scored.answers}


class AddedPredictions(Resource):
    """The models added with `release.py add`, each at its own route (`/NAME`, or its manifest's), found
    per request in `routes` ({route: name}), which the factory keeps current as releases add models: a
    model added while the server runs is answered within MODEL_POLL_SECONDS, no restart. A path that is
    no model's answers 404, as any unknown path."""

    def __init__(self, *, routes, **served):
        self.routes, self.served = routes, served

    def model(self, route):
        """The Predictions resource of the model at `route`, or a 404 as for any unknown path (the rule
        matches no fixed route's path: `web.factory.AddedRouteConverter`)."""
        name = self.routes.get("/" + route)
        if name is None:
            raise NotFound()
        return Predictions(model_name=name, **self.served)

    def get(self, route):
        """One input in, one answer out."""
        return self.model(route).get()

    def post(self, route):
        """Many inputs in, answers out in the same order."""
        return self.model(route).post()

    def other(self, route):
        """Another method: 405 on a model's route, 404 elsewhere."""
        self.model(route)
        raise MethodNotAllowed(valid_methods=list(ADDED_METHODS))

    put = patch = delete = other

    def options(self, route):
        """What an added model's route answers (a CORS preflight's question too): GET and POST."""
        self.model(route)
        return current_app.response_class(status=200, headers={"Allow": ", ".join(ADDED_METHODS)})


ADDED_METHODS = ("GET", "HEAD", "OPTIONS", "POST")  # what an added model's route answers


def score_and_record(served, inputs, *, explain, shadow, metrics, recorder):
    """Score `inputs` with the loaded model `served`, and with its `shadow` version too if it has one (the
    answers do not change), count them in the metrics, and give each answer its id and version; their rows
    are queued for the prediction log once the answer is sent. Returns the `Scored`."""
    scored = served.score(inputs, explain=explain)
    metrics.count_scored(served.name, scored, inputs)
    shadowed = None
    if shadow is not None:
        shadowed = (shadow.version, shadow.predictions_of(inputs))
        metrics.count_shadow(served.name, scored.answers, shadowed[1], served.agrees, numbers=served.labels is None)
    when_sent(recorder.stamp(served, scored, inputs, request_id=request.environ.get(REQUEST_ID_KEY),
                             shadow=shadowed))
    return scored


def built(name, served):
    """`served`, the loaded model `name`, or a 404 that says how to build it."""
    if served is None:
        how = HOW_TO_BUILD.get(name, HOW_TO_BUILD[None])
        raise ModelNotBuilt(f"The {name} model is not built on this server. {how}, then restart the server or "
                            "send it SIGHUP.")
    return served


HOW_TO_BUILD = {  # what builds a model the server has not got
    "ratings": "It needs vega-datasets' movies.json: run `python build_model.py --only ratings` (it fetches the "
               "file from the npm registry) or `python build_model.py --only ratings --movies PATH/movies.json`",
    None: "It needs Kaggle's train.tsv (five labels): run `python build_model.py --data PATH/train.tsv`",
}


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
                                "count": 0, ("accuracy" if m.labels else "mae"): None, **summary.get(m.name, {}),
                                "days": self.log.days}}
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
        return open_inference.model_metadata(served.name, served.version, served.describe())


class ProtocolInference(Resource):
    """The Open Inference Protocol's inference: POST .../infer."""

    def __init__(self, *, models, shadows, settings, metrics, recorder):
        self.models, self.shadows, self.settings = models, shadows, settings
        self.metrics, self.recorder = metrics, recorder

    def post(self, model_name, model_version=None):
        """The inputs the model's kind reads from the request's tensors, scored and answered as the outputs
        asked for."""
        served = protocol_model(self.models, model_name, model_version)
        infer = open_inference.parse_infer(
            read_body(request), request.headers.get(open_inference.HEADER_LENGTH),
            read_inputs=lambda inputs, binary: served.inputs_from_v2(inputs=inputs, binary=binary,
                                                                      settings=self.settings),
            outputs=served.V2_OUTPUTS)
        scored = score_and_record(served, infer.inputs, explain=False, shadow=self.shadows.get(served.name),
                                  metrics=self.metrics, recorder=self.recorder)
        body, headers = open_inference.infer_response(infer, model_name=served.name, model_version=served.version,
                                                      columns=served.v2_columns(scored), scored=scored)
        return current_app.response_class(body, 200, headers)


def protocol_model(models, name, version):
    """The loaded model a protocol path names (and its version, if it names one), or a 404 saying what
    is served."""
    if name not in MODEL_ROUTES and name not in models:
        raise NotServed(f"No model is named {name[:64]!r}; this server has {', '.join(model_routes(models))} "
                        f"({V2_PREFIX}/models/NAME describes each).")
    served = built(name, models.get(name))
    if version is not None and version != served.version:
        raise NotServed(f"Version {version[:64]!r} of the {name} model is not served; it serves {served.version}. "
                        "Leave the version out of the path for the one served.")
    return served
