"""The API's contract: an OpenAPI 3.1 document built from the running app's settings.

`openapi_document(settings)` returns the document `GET /openapi.json` serves. The routes come from
`config.ROUTES` and `pages.PAGE_ROUTES`, the endpoints behind the token from
`config.PROTECTED_ENDPOINTS`, and the limits (`MAX_QUERY_LENGTH`, `MAX_BATCH_SIZE`,
`MAX_CONTENT_LENGTH`) and the token requirement (`API_TOKEN`) from the same settings the request
parsers use, so the contract and the behaviour cannot drift apart. Tests validate it with
openapi-spec-validator, compare its paths with the app's URL map, and fuzz a live server against it
with schemathesis.
"""
import re

from serving.config import MODEL_ROUTES, NUMBER_MODELS, PROTECTED_ENDPOINTS, ROUTES, V2_ROUTES
from web import open_inference, pages
from web.openapi_schemas import components, flag_object, json_content, ref
from web.openapi_tabular import tabular_path, tabular_schemas


def openapi_document(settings, described, routes=MODEL_ROUTES):
    """The OpenAPI 3.1 document of the service, with the limits of `settings` and what each served model
    says of itself ({name: its `describe()`}: a text model's labels, a regressor's inputs; a model not built
    here has none), at its route ({name: route}, `config.model_routes`)."""
    protected = settings.API_TOKEN is not None
    labels = {name: d["labels"] for name, d in described.items() if d.get("labels")}
    paths = {route: (tabular_path(name, described.get(name), settings) if is_tabular(name, described)
                     else scoring_path(name, labels.get(name), settings)) for name, route in routes.items()}
    paths.update({
        ROUTES["feedback"]: feedback_path(settings),
        ROUTES["health"]: simple_get("Liveness and readiness", "200 once every model is loaded and verified.",
                                     ref("Health")),
        ROUTES["models"]: simple_get("Describe the served models",
                                     "Labels, held-out metrics, hyper-parameters, creation time and a hash of the "
                                     "training data of every served model. No file-system paths.", ref("Models")),
        ROUTES["openapi"]: simple_get("This document", "The OpenAPI 3.1 description of the API.", {"type": "object"}),
        ROUTES["metrics"]: other_get("Prometheus metrics", "Counters and latency histograms in the Prometheus text "
                                     "exposition format.", "text/plain"),
        openapi_path(pages.PAGE_ROUTES["docs"]): other_get("API documentation", "A page rendering this document.",
                                                           "text/html"),
        openapi_path(pages.PAGE_ROUTES["docs_asset"]): asset_path(
            "A file of the documentation page (Swagger UI's, from its package)", pages.SWAGGER_UI_FILES),
        openapi_path(pages.PAGE_ROUTES["page_asset"]): asset_path("A script or style sheet of the pages",
                                                                  pages.PAGE_ASSETS),
        openapi_path(pages.PAGE_ROUTES["demo"]): other_get(
            "Demo page", "A page to type a review and see every model's answer.", "text/html"),
    })
    paths.update(protocol_paths(settings, routes))
    if protected:
        for endpoint in PROTECTED_ENDPOINTS | set(routes):
            unauthorized = "ProtocolUnauthorized" if endpoint in V2_ROUTES else "Unauthorized"
            for route in V2_ROUTES.get(endpoint, [routes.get(endpoint) or ROUTES.get(endpoint)]):
                for operation in paths[openapi_path(route)].values():
                    operation["security"] = [{"bearerToken": []}]
                    operation["responses"]["401"] = {"$ref": f"#/components/responses/{unauthorized}"}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Movie-review sentiment API",
            "version": "1",
            "summary": ("Scores the sentiment of English movie-review text (TF-IDF of words and characters, "
                        "and logistic regression or naive Bayes)."),
            "description": (
                "Every error answers JSON `{\"message\": \"...\"}` saying what to do next. "
                "Unknown paths answer 404 and other methods 405 with an `Allow` header, both as JSON. "
                f"Request bodies over {settings.MAX_CONTENT_LENGTH:,} bytes answer 413."),
        },
        "paths": paths,
        "components": components(settings, labels),
    }
    document["components"]["schemas"].update(tabular_schemas())
    if protected:
        document["components"]["securitySchemes"] = {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "The value of the server's API_TOKEN setting."}}
    return document


def openapi_path(rule):
    """A Flask URL rule (`/docs/<name>`) as an OpenAPI path (`/docs/{name}`)."""
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


def error_refs(*statuses):
    """References to the shared error responses, by status."""
    names = {400: "BadRequest", 404: "ModelNotBuilt", 413: "TooLarge", 414: "UrlTooLong"}
    return {str(status): {"$ref": f"#/components/responses/{names[status]}"} for status in statuses}


def scoring_path(name, labels, settings):
    """GET (one text in the URL) and POST (a batch) for one model; `labels` None when it is not built here."""
    label_list = ", ".join(labels) if labels else "not built on this server"
    query = {
        "name": "query", "in": "query", "required": True, "schema": ref("Text"),
        "description": "The text to score, percent-encoded as UTF-8. URLs are limited to a few kilobytes by "
                       "the HTTP server (414 above it): score longer texts with POST.",
    }
    return {
        "get": {
            "operationId": f"score_{name.replace('-', '_')}",
            "summary": f"Score one text with the {name} model ({label_list})",
            "description": (
                "The text goes in `?query=...`. For clients that cannot build URLs (the original tutorial's "
                "`curl -X GET URL -d query=...`, HTTPie's `http GET URL query=...`), the server also takes it "
                "instead as a form body `query=...` or a JSON body `{\"query\": \"...\"}`; those forms are "
                "not part of this contract, since a GET body has no defined meaning in HTTP and many clients "
                "and gateways drop it. Sending the text more than once, or not at all, answers 400."),
            "parameters": [query, {
                "name": "explain", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
                "description": "true (or 1) adds `explanation` to the answer: why the model answered as it did.",
            }],
            "responses": {
                "200": {"description": "The predicted label, its probability and every label's probability.",
                        "content": json_content(ref("Prediction")),
                        "links": {"SendFeedback": {
                            "operationId": "send_feedback",
                            "description": "The answer's `id` names it in POST /feedback.",
                            "requestBody": {"id": "$response.body#/id",
                                            **({"label": labels[0]} if labels else {})}}}},
                **error_refs(400, 404, 413, 414),
            },
        },
        "post": {
            "operationId": f"score_{name.replace('-', '_')}_batch",
            "summary": f"Score a batch of texts with the {name} model",
            "description": (f"Up to {settings.MAX_BATCH_SIZE:,} texts per request; the answers come in the "
                            "order of the texts. A bad element answers 400 naming its index, e.g. `queries[3]`."),
            "requestBody": {"required": True, "content": json_content(ref("Batch"))},
            "responses": {
                "200": {"description": "One prediction per text, in order.",
                        "content": json_content(ref("Predictions"))},
                **error_refs(400, 404, 413),
            },
        },
    }


def feedback_path(settings):
    """POST /feedback: the true label of answers given before, one or a batch."""
    return {"post": {
        "operationId": "send_feedback",
        "summary": "Send the true label of earlier answers",
        "description": (
            "Name an answer by its `id` and give the label it should have had, one of the labels of the model "
            "that answered (400 lists them), or for a number (`/ratings`) the true `value`. An id this server "
            "never issued, or one older than its prediction "
            f"log keeps rows, answers 404; so does every id when the server keeps no log. Up to "
            f"{settings.MAX_BATCH_SIZE:,} items per batch. A body is one item or a batch, never both, and holds "
            "no other property (400 names it). A second label for the same id replaces the first. "
            "The labels are recorded in the prediction log and counted in `sentiment_feedback_total`."),
        "requestBody": {"required": True, "content": json_content({"oneOf": [ref("Feedback"), ref("FeedbackValue"),
                                                                             ref("FeedbackBatch")]})},
        "responses": {
            "202": {"description": "Accepted: queued for the prediction log, and counted.",
                    "content": json_content(ref("FeedbackAccepted"))},
            **error_refs(400, 413),
            "404": {"description": "An id this server never issued or no longer keeps, or no prediction log here.",
                    "content": json_content(ref("Error"))},
        },
    }}


def is_tabular(name, described):
    """Whether a model route takes named inputs: a built regressor's, or a served model's that says so."""
    return name in NUMBER_MODELS or (described.get(name) or {}).get("kind", "text-classifier") != "text-classifier"


def protocol_paths(settings, routes=MODEL_ROUTES):
    """The Open Inference Protocol's paths (see `open_inference`): errors answer {"error": "..."}."""
    name = {"name": "model_name", "in": "path", "required": True, "schema": {"enum": list(routes)},
            "description": "The model's name."}
    version = {"name": "model_version", "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9._-]+$",
                          "examples": ["20261201T184854Z-1a2b3c4d"]},
               "description": "A `model_version` as answers carry it; a version not served answers 404."}
    not_served = {"404": {"$ref": "#/components/responses/ProtocolNotServed"}}
    paths = {
        "/v2": simple_get("Open Inference Protocol: server metadata", "The server's name, protocol version and "
                          "extensions.", ref("ServerMetadata")),
        "/v2/health/live": simple_get("Open Inference Protocol: liveness", "The server is up.",
                                      flag_object("live")),
        "/v2/health/ready": simple_get("Open Inference Protocol: readiness", "Every model is loaded and verified.",
                                       flag_object("ready")),
    }
    for endpoint, summary, answer in (
            ("v2_model", "Open Inference Protocol: model metadata", ref("ModelMetadata")),
            ("v2_model_ready", "Open Inference Protocol: model readiness",
             {**flag_object("ready"), "required": ["name", "ready"],
              "properties": {"name": {"type": "string"}, "ready": {"const": True}}})):
        for route, parameters in zip(V2_ROUTES[endpoint], ([name], [name, version])):
            paths[openapi_path(route)] = {"get": {
                "operationId": endpoint + ("_version" if len(parameters) == 2 else ""), "summary": summary,
                "parameters": parameters, "responses": {"200": {"description": "The model is served.",
                                                                "content": json_content(answer)}, **not_served}}}
    for route, parameters in zip(V2_ROUTES["v2_infer"], ([name], [name, version])):
        paths[openapi_path(route)] = {"post": {
            "operationId": "v2_infer" + ("_version" if len(parameters) == 2 else ""),
            "summary": "Open Inference Protocol: score texts",
            "description": (
                f"The input `text` (BYTES, shape [n] or [n, 1], 1 to {settings.MAX_BATCH_SIZE:,} texts) scored; "
                "the outputs `label`, `confidence`, `probabilities` (the model metadata's label order) and `id` "
                "(each answer's id, for POST /feedback), or those named in `outputs`. Triton's binary tensor "
                f"data extension is spoken too: with an `{open_inference.HEADER_LENGTH}` header, inputs whose "
                "`parameters.binary_data_size` is set follow the JSON part, and outputs asked for with "
                "`parameters.binary_data` (or the request's `parameters.binary_data_output`) come back as "
                f"binary data after the answer's JSON, the answer's own `{open_inference.HEADER_LENGTH}` saying "
                "where that ends."),
            "parameters": parameters,
            "requestBody": {"required": True, "content": json_content(ref("InferRequest"))},
            "responses": {
                "200": {"description": "The outputs, in the order asked for.",
                        "content": {**json_content(ref("InferResponse")),
                                    open_inference.BINARY_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                "400": {"$ref": "#/components/responses/ProtocolBadRequest"},
                **not_served,
                "413": {"$ref": "#/components/responses/ProtocolTooLarge"},
            },
        }}
    return paths


def simple_get(summary, description, schema):
    """A GET that answers JSON and takes no input."""
    return {"get": {"summary": summary, "responses": {
        "200": {"description": description, "content": json_content(schema)},
    }}}


def other_get(summary, description, media_type):
    """A GET that answers a non-JSON document."""
    return {"get": {"summary": summary, "responses": {
        "200": {"description": description, "content": {media_type: {"schema": {"type": "string"}}}},
    }}}


def asset_path(summary, names):
    """GET one of the few files the pages load, by name; any other name is a 404."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": list(names)},
            "description": "The file's name."}
    return {"get": {"summary": summary, "parameters": [name], "responses": {
        "200": {"description": "The file, served by the app itself (no CDN).", "content": {"*/*": {}}},
        "404": {"description": "No such file.", "content": json_content(ref("Error"))},
    }}}
