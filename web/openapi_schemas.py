"""The OpenAPI document's shared schemas and error responses (`components`), the Open Inference Protocol's
among them, with the limits of the settings and the served models' labels; `web/openapi.py` builds the
paths that refer to them.
"""
from kinds import text_inputs
from kinds.text_inputs import TEXT_PATTERN
from kinds.text_scoring import MAX_UNKNOWN
from web import open_inference


def ref(name):
    """A reference to a schema in components."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema):
    """A content map with one JSON media type."""
    return {"application/json": {"schema": schema}}


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
                        "name": {"const": text_inputs.INPUT},
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
                "properties": {"feedback": {"type": "array",
                                            "items": {"oneOf": [ref("Feedback"), ref("FeedbackValue")]},
                                            "minItems": 1,
                                            "maxItems": max_batch,
                                            "description": f"1 to {max_batch:,} items (more answers 413)."}},
            },
            "FeedbackAccepted": {
                "type": "object", "required": ["accepted"],
                "properties": {"accepted": {"type": "array", "items": {
                    "type": "object", "required": ["id", "model", "predicted"],
                    "properties": {"id": ref("AnswerId"), "model": {"type": "string"},
                                   "model_version": {"type": ["string", "null"]},
                                   "predicted": {"type": ["string", "number"], "description": "What the model "
                                                                                          "answered."},
                                   "label": {"type": "string", "description": "The label received."},
                                   "value": {"type": "number", "description": "The true value received."},
                                   "error": {"type": "number", "description": "A number's absolute error."}}}}},
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
                             "metrics", "shadow_version", "feedback"],
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
                        "type": ["object", "null"], "required": ["count", "days"],
                        "description": "Labels (or a regressor's true values) sent back for its answers within the "
                                       "prediction log's retention, and its accuracy (or mean absolute error) on "
                                       "them; null when this server keeps no log or cannot read it now.",
                        "properties": {"count": {"type": "integer", "minimum": 0},
                                       "accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                                       "mae": {"type": ["number", "null"], "minimum": 0},
                                       "days": {"type": "integer", "minimum": 1}}},
                    "labels": {"type": ["array", "null"], "items": {"type": "string"},
                               "description": "A classifier's labels; null for a regressor."},
                    "inputs": {"type": "array", "items": {"type": "object"},
                               "description": "A model of named inputs': each input's name, type, whether it is "
                                              "required, and its values or range."},
                    "target": {"type": "object", "description": "A regressor's number: its name and range."},
                    "created_at": {"type": "string", "format": "date-time"},
                    "hyperparameters": {"type": "object"},
                    "training_data": {"type": "object", "description": "File name, sha256 and row counts."},
                    "metrics": {"type": "object", "description": "Held-out accuracy, macro F1, log loss, ..."},
                    "top_terms": {"type": "object", "additionalProperties": {"type": "array",
                                                                             "items": {"type": "string"}},
                                  "description": "A text classifier's: for each label, the terms it favours most "
                                                 "over the others."},
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
