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

from kinds.text_inputs import TEXT_PATTERN
from kinds.text_scoring import MAX_UNKNOWN
from serving.config import MODEL_ROUTES, PROTECTED_ENDPOINTS, ROUTES, V2_ROUTES
from web import open_inference, pages


def openapi_document(settings, labels):
    """The OpenAPI 3.1 document of the service, with the limits of `settings` and the `labels` of each served
    model ({name: [label, ...]}, from their manifests; a model not built here has none)."""
    protected = settings.API_TOKEN is not None
    paths = {route: scoring_path(name, labels.get(name), settings) for name, route in MODEL_ROUTES.items()}
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
    paths.update(protocol_paths(settings))
    if protected:
        for endpoint in PROTECTED_ENDPOINTS:
            unauthorized = "ProtocolUnauthorized" if endpoint in V2_ROUTES else "Unauthorized"
            for route in V2_ROUTES.get(endpoint, [ROUTES.get(endpoint)]):
                for operation in paths[openapi_path(route)].values():
                    operation["security"] = [{"bearerToken": []}]
                    operation["responses"]["401"] = {"$ref": f"#/components/responses/{unauthorized}"}
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Movie-review sentiment API",
            "version": "1",
            "summary": "Scores the sentiment of English movie-review text (TF-IDF + multinomial naive Bayes).",
            "description": (
                "Every error answers JSON `{\"message\": \"...\"}` saying what to do next. "
                "Unknown paths answer 404 and other methods 405 with an `Allow` header, both as JSON. "
                f"Request bodies over {settings.MAX_CONTENT_LENGTH:,} bytes answer 413."),
        },
        "paths": paths,
        "components": components(settings, labels),
    }
    if protected:
        document["components"]["securitySchemes"] = {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "The value of the server's API_TOKEN setting."}}
    return document


def openapi_path(rule):
    """A Flask URL rule (`/docs/<name>`) as an OpenAPI path (`/docs/{name}`)."""
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


def ref(name):
    """A reference to a schema in components."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema):
    """A content map with one JSON media type."""
    return {"application/json": {"schema": schema}}


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
            "that answered (400 lists them). An id this server never issued, or one older than its prediction "
            f"log keeps rows, answers 404; so does every id when the server keeps no log. Up to "
            f"{settings.MAX_BATCH_SIZE:,} items per batch. A body is one item or a batch, never both, and holds "
            "no other property (400 names it). A second label for the same id replaces the first. "
            "The labels are recorded in the prediction log and counted in `sentiment_feedback_total`."),
        "requestBody": {"required": True, "content": json_content({"oneOf": [ref("Feedback"),
                                                                             ref("FeedbackBatch")]})},
        "responses": {
            "202": {"description": "Accepted: queued for the prediction log, and counted.",
                    "content": json_content(ref("FeedbackAccepted"))},
            **error_refs(400, 413),
            "404": {"description": "An id this server never issued or no longer keeps, or no prediction log here.",
                    "content": json_content(ref("Error"))},
        },
    }}


def protocol_paths(settings):
    """The Open Inference Protocol's paths (see `open_inference`): errors answer {"error": "..."}."""
    name = {"name": "model_name", "in": "path", "required": True, "schema": {"enum": list(MODEL_ROUTES)},
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


def flag_object(name):
    """A JSON object {name: true}."""
    return {"type": "object", "required": [name], "properties": {name: {"const": True}}}


def protocol_schemas(settings):
    """The Open Inference Protocol's schemas."""
    tensor = {"type": "object", "required": ["name", "datatype", "shape"],
              "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                             "shape": {"type": "array", "items": {"type": "integer"}}}}
    flat = {"type": "array", "items": ref("Text"), "minItems": 1, "maxItems": settings.MAX_BATCH_SIZE}
    return {
        "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                           "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                          "extensions": {"type": "array", "items": {"type": "string"}}}},
        "ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                          "properties": {"name": {"type": "string"},
                                         "versions": {"type": "array", "items": {"type": "string"}},
                                         "platform": {"type": "string"},
                                         "inputs": {"type": "array", "items": tensor},
                                         "outputs": {"type": "array", "items": tensor},
                                         "parameters": {"type": "object", "properties": {"labels": {
                                             "type": "array", "items": {"type": "string"},
                                             "description": "The labels, in the order of `probabilities`."}}}}},
        "InferRequest": {
            "type": "object", "required": ["inputs"],
            "properties": {
                "id": {"type": "string", "description": "Echoed in the answer."},
                "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                    "type": "object", "required": ["name", "datatype", "shape", "data"],
                    "properties": {
                        "name": {"const": open_inference.INPUT},
                        "datatype": {"const": "BYTES"},
                        "shape": {"type": "array", "minItems": 1, "maxItems": 2,
                                  "prefixItems": [{"type": "integer", "minimum": 1,
                                                   "maximum": settings.MAX_BATCH_SIZE}, {"const": 1}],
                                  "description": "[n] or [n, 1]: n, the number of texts in `data`."},
                        "data": {"oneOf": [flat, {"type": "array", "minItems": 1, "items": flat}],
                                 "description": "The texts, flat or nested as the shape is."},
                        "parameters": {"type": "object"}}}},
                "outputs": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"enum": list(open_inference.OUTPUTS)},
                                   "parameters": {"type": "object",
                                                  "properties": {"binary_data": {"type": "boolean"}}}}}},
            },
        },
        "InferResponse": {
            "type": "object", "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"}, "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {**tensor, "properties": {
                    **tensor["properties"], "data": {"type": "array"},
                    "parameters": {"type": "object",
                                   "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}}}}},
            },
        },
        "ProtocolError": {
            "type": "object", "required": ["error"], "additionalProperties": False,
            "properties": {"error": {"type": "string", "description": "What went wrong and what to do."}},
        },
    }


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


def components(settings, labels):
    """The shared schemas and error responses, with the limits of `settings` and the served models' `labels`."""
    max_length, max_batch = settings.MAX_QUERY_LENGTH, settings.MAX_BATCH_SIZE
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    error = {"description": "", "content": json_content(ref("Error"))}
    protocol_error = {"description": "", "content": json_content(ref("ProtocolError"))}
    return {
        "schemas": {
            "Text": {
                "type": "string", "minLength": 1, "maxLength": max_length, "pattern": TEXT_PATTERN,
                "description": f"At least one character that is not white space; at most {max_length:,} "
                               "characters (longer answers 413). Any other Unicode text is accepted.",
            },
            "Batch": {
                "type": "object", "required": ["queries"],
                "properties": {"queries": {"type": "array", "items": ref("Text"), "minItems": 1,
                                           "maxItems": max_batch,
                                           "description": f"1 to {max_batch:,} texts (more answers 413)."},
                               "explain": {"type": "boolean", "default": False,
                                           "description": "true adds `explanation` to every answer."}},
            },
            "Explanation": {
                "type": "object", "required": ["against", "log_odds", "prior", "terms", "unknown", "unknown_count",
                                               "unknown_contribution"],
                "description": "Exact for both families (naive Bayes, logistic regression): `prior` plus every "
                               "term's `contribution` plus `unknown_contribution` equals `log_odds`.",
                "properties": {
                    "against": {"type": "string", "description": "The runner-up label."},
                    "log_odds": {"type": "number",
                                 "description": "ln(P(prediction) / P(against)) of the served probabilities."},
                    "prior": {"type": "number",
                              "description": "The labels' prior log-odds (naive Bayes) or the intercepts' difference "
                                             "(logistic regression), over the temperature."},
                    "terms": {"type": "array", "description": "The text's known terms, strongest first.",
                              "items": {"type": "object", "required": ["term", "count", "weight", "contribution"],
                                        "properties": {
                                            "term": {"type": "string"},
                                            "count": {"type": "integer", "minimum": 1},
                                            "weight": {"type": "number",
                                                       "description": "Its value in the text's tf-idf row of "
                                                                      "words; 0 for a word only its characters "
                                                                      "speak for."},
                                            "contribution": {"type": "number",
                                                             "description": "Its share of `log_odds`: above 0 "
                                                                            "toward the prediction. A word's "
                                                                            "character n-grams are summed into "
                                                                            "it."}}}},
                    "unknown": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_UNKNOWN,
                                "description": f"The text's words the model does not know, each once, in the "
                                               f"order they come; at most {MAX_UNKNOWN}."},
                    "unknown_contribution": {
                        "type": "number",
                        "description": "The share of `log_odds` carried by the characters of words the model "
                                       "does not know as words (0 without character features): `prior`, the "
                                       "terms' contributions and this add up to `log_odds`."},
                    "unknown_count": {"type": "integer", "minimum": 0,
                                      "description": "How many different words of the text the model does not "
                                                     "know (all of them, not only those listed)."},
                },
            },
            "Prediction": {
                "type": "object", "required": ["prediction", "confidence", "probabilities", "id", "model_version"],
                "properties": {
                    "prediction": {"type": "string", "description": "The most probable label."},
                    "confidence": {**probability, "description": "The probability of `prediction`."},
                    "probabilities": {"type": "object", "additionalProperties": probability,
                                      "description": "Every label's probability, in the model's label order."},
                    "explanation": {**ref("Explanation"), "description": "Only when `explain` is true."},
                    "id": {**ref("AnswerId"), "description": "This answer's id: send it to POST /feedback with the "
                                                            "true label. Unique and opaque."},
                    "model_version": {"type": "string", "maxLength": 64,
                                      "description": "The published version of the model that answered, as "
                                                     "GET /models shows it."},
                },
            },
            "AnswerId": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
            # Neither form takes other properties, as the server does not (parsing.feedback_from_post): else a
            # body holding both would be valid for the first form and read by the server as the second.
            "Feedback": {
                "type": "object", "required": ["id", "label"], "additionalProperties": False,
                "properties": {"id": {**ref("AnswerId"), "description": "The `id` of an answer."},
                               "label": {"enum": list(dict.fromkeys(label for each in labels.values()
                                                                    for label in each)),
                                         "description": "The label the text should have had: one of the labels "
                                                        "of the model that answered (the binary model's two, or "
                                                        "the fine-grained model's five)."}},
            },
            "FeedbackBatch": {
                "type": "object", "required": ["feedback"], "additionalProperties": False,
                "properties": {"feedback": {"type": "array", "items": ref("Feedback"), "minItems": 1,
                                            "maxItems": max_batch,
                                            "description": f"1 to {max_batch:,} items (more answers 413)."}},
            },
            "FeedbackAccepted": {
                "type": "object", "required": ["accepted"],
                "properties": {"accepted": {"type": "array", "items": {
                    "type": "object", "required": ["id", "model", "predicted", "label"],
                    "properties": {"id": ref("AnswerId"), "model": {"type": "string"},
                                   "model_version": {"type": ["string", "null"]},
                                   "predicted": {"type": "string", "description": "What the model answered."},
                                   "label": {"type": "string", "description": "The label received."}}}}},
            },
            "Predictions": {"type": "object", "required": ["predictions"],
                            "properties": {"predictions": {"type": "array", "items": ref("Prediction")}}},
            "Health": {
                "type": "object", "required": ["status", "models"],
                "properties": {"status": {"const": "ok"}, "models": {"type": "array", "items": {"type": "string"}}},
            },
            "Models": {"type": "object", "required": ["models"],
                       "properties": {"models": {"type": "array", "items": ref("ModelInfo")}}},
            "ModelInfo": {
                "type": "object",
                "required": ["name", "version", "labels", "created_at", "hyperparameters", "training_data",
                             "metrics", "top_terms", "shadow_version", "feedback"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string", "description": "Its kind of model, e.g. `text-classifier`."},
                    "family": {"type": "string", "enum": ["naive-bayes", "logistic-regression"],
                               "description": "A text classifier's family."},
                    "version": {"type": "string", "description": "The `model_version` its answers carry."},
                    "shadow_version": {"type": ["string", "null"],
                                       "description": "The version scored in shadow beside it (its labels go "
                                                      "to the prediction log, not to answers), or null."},
                    "feedback": {
                        "type": ["object", "null"], "required": ["count", "accuracy", "days"],
                        "description": "Labels sent back for its answers within the prediction log's retention, "
                                       "and its accuracy on them; null when this server keeps no log or cannot "
                                       "read it now.",
                        "properties": {"count": {"type": "integer", "minimum": 0},
                                       "accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                                       "days": {"type": "integer", "minimum": 1}}},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "created_at": {"type": "string", "format": "date-time"},
                    "hyperparameters": {"type": "object"},
                    "training_data": {"type": "object", "description": "File name, sha256 and row counts."},
                    "metrics": {"type": "object", "description": "Held-out accuracy, macro F1, log loss, ..."},
                    "top_terms": {"type": "object", "additionalProperties": {"type": "array",
                                                                             "items": {"type": "string"}},
                                  "description": "For each label, the terms it favours most over the others."},
                },
            },
            **protocol_schemas(settings),
            "Error": {
                "type": "object", "required": ["message"], "additionalProperties": False,
                "properties": {"message": {"type": "string", "description": "What went wrong and what to do."}},
            },
        },
        "responses": {
            "BadRequest": {**error, "description": "No usable text: missing, blank, sent twice, not a string, "
                                                  "malformed JSON or form data, invalid UTF-8."},
            "ModelNotBuilt": {**error, "description": "This model is not built on this server."},
            "TooLarge": {**error, "description": f"A text over {max_length:,} characters, a batch over "
                                                f"{max_batch:,} texts, or a body over "
                                                f"{settings.MAX_CONTENT_LENGTH:,} bytes."},
            "UrlTooLong": {**error, "description": "The URL is over the HTTP server's limit (gunicorn's "
                                                  "limit_request_line, 4,094 bytes by default): send long texts "
                                                  "in the body."},
            "Unauthorized": {
                **error, "description": "No `Authorization: Bearer <token>` header, or the wrong token.",
                "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
            },
            "ProtocolBadRequest": {**protocol_error, "description": "Not an inference request these models take: "
                                                                   "the message says what to change."},
            "ProtocolNotServed": {**protocol_error, "description": "No such model, or not this version, or "
                                                                  "not built on this server."},
            "ProtocolTooLarge": {**protocol_error, "description": f"A text over {max_length:,} characters, over "
                                                                 f"{max_batch:,} texts, or a body over "
                                                                 f"{settings.MAX_CONTENT_LENGTH:,} bytes."},
            "ProtocolUnauthorized": {
                **protocol_error, "description": "No `Authorization: Bearer <token>` header, or the wrong token.",
                "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
            },
        },
    }
