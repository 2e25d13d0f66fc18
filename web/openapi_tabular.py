"""The OpenAPI document's paths and schemas for models of named inputs (`kinds.tabular`): one typed query
parameter per input, with the allowed values and ranges the served model's manifest gives, and a POST
of instances. `web/openapi.py` puts them in the document; the parser they describe is
`kinds.tabular.TabularRegressor.check_input`.
"""
from kinds.tabular import MAX_NAME, NUMBER_MARGIN, YEAR_MARGIN, number_bounds, plain
from kinds.text_inputs import TEXT_PATTERN
from web.openapi_schemas import json_content, ref


def input_schema(spec):
    """The JSON Schema of one input's value, as the model checks it."""
    if spec["type"] == "category":
        return {"type": "string", "enum": list(spec["values"])}
    if spec["type"] == "name":
        return {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": TEXT_PATTERN}
    if spec.get("year"):
        return {"type": "integer", "minimum": int(spec["min"]) - YEAR_MARGIN, "maximum": int(spec["max"]) + YEAR_MARGIN}
    low, high = number_bounds(spec)
    return {"type": "number", "minimum": low, "maximum": high}


def input_description(spec):
    """What an input is, in words."""
    if spec["type"] == "category":
        return "One of the values listed; any other answers 400 with the list."
    if spec["type"] == "name":
        return "A name; one the model never saw is accepted, and the answer's `unseen` lists it."
    unit = f" in {spec['unit']}" if spec.get("unit") else ""
    if "bounds" in spec:
        low, high = spec["bounds"]
        return (f"A number{unit}, from {plain(low)} to {plain(high)}. The data the model was added with held "
                f"{plain(spec['min'])} to {plain(spec['max'])}; a value outside that is accepted, and `unseen` "
                "lists it.")
    seen = f"The model was trained on {spec['min']:,.0f} to {spec['max']:,.0f}"
    return (f"A positive number{unit}. {seen}; a value outside that, up to {NUMBER_MARGIN} times beyond it either "
            "way, is accepted, and `unseen` lists it.")


def tabular_path(name, description, settings):
    """GET (one input, its values as query parameters) and POST (instances) for a model of named inputs;
    `description` is the served model's `describe()`, or None when it is not built here (every request
    then answers 404, and no parameter is listed)."""
    specs = description["inputs"] if description else []
    parameters = [{"name": spec["name"], "in": "query", "required": spec["required"],
                   "schema": input_schema(spec), "description": input_description(spec)} for spec in specs]
    explains = bool(description and description.get("explains")) and "explain" not in {s["name"] for s in specs}
    if explains:
        parameters.append({"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean"},
                           "description": "true: add `explanation`, the intercept and each input's exact "
                                          "contribution to the answer (a linear model's sum)."})
    # In JSON an optional input may also be null: not given, as when it is left out.
    instance = {"type": "object", "additionalProperties": False,
                "required": [spec["name"] for spec in specs if spec["required"]],
                "properties": {spec["name"]: input_schema(spec) if spec["required"] else
                               {"anyOf": [input_schema(spec), {"type": "null"}]} for spec in specs}}
    operation = name.replace("-", "_")
    answer = "LabelPrediction" if description and description.get("labels") else "ValuePrediction"
    return {
        "get": {
            "operationId": f"predict_{operation}",
            "summary": f"Predict with the {name} model from one input's values" + ("" if description else
                                                                                 " (not built on this server)"),
            "description": ("Each input is a query parameter. A missing required input, an unknown parameter, "
                            "a value of the wrong type or outside what the model takes answers 400 naming it."),
            "parameters": parameters,
            "responses": {"200": {"description": "The number predicted, with its typical error; or the label "
                                                 "predicted, with its probability.",
                                  "content": json_content(ref(answer))},
                          **{status: {"$ref": f"#/components/responses/{response}"}
                             for status, response in (("400", "BadRequest"), ("404", "ModelNotBuilt"),
                                                      ("414", "UrlTooLong"))}},
        },
        "post": {
            "operationId": f"predict_{operation}_batch",
            "summary": f"Predict with the {name} model for a batch of inputs",
            "description": (f"Up to {settings.MAX_BATCH_SIZE:,} instances per request; the answers come in their "
                            "order. A bad instance answers 400 naming it, e.g. `instances[3].budget`."),
            "requestBody": {"required": True, "content": json_content({
                "type": "object", "required": ["instances"], "additionalProperties": False,
                "properties": {"instances": {"type": "array", "items": instance, "minItems": 1,
                                             "maxItems": settings.MAX_BATCH_SIZE},
                               **({"explain": {"type": "boolean"}} if explains else {})}})},
            "responses": {"200": {"description": "One answer per instance, in order.",
                                  "content": json_content(ref(answer + "s"))},
                          **{status: {"$ref": f"#/components/responses/{response}"}
                             for status, response in (("400", "BadRequest"), ("404", "ModelNotBuilt"),
                                                      ("413", "TooLarge"))}},
        },
    }


def tabular_schemas():
    """The answers of a model of named inputs, and the feedback that names them."""
    return {
        "ValuePrediction": {
            "type": "object", "required": ["prediction", "typical_error", "unseen", "id", "model_version"],
            "properties": {
                "prediction": {"type": "number", "description": "The number predicted (two decimals)."},
                "typical_error": {"type": ["number", "null"],
                                  "description": "The median absolute error on the build's held-out rows."},
                "unseen": {"type": "array", "items": {"type": "string"},
                           "description": "The inputs whose value the model never saw in training."},
                "id": {**ref("AnswerId"), "description": "This answer's id: send it to POST /feedback with the "
                                                         "true value."},
                "model_version": {"type": "string", "maxLength": 64},
                "explanation": ref("Contributions"),
            },
        },
        "Contributions": {
            "type": "object", "required": ["intercept", "contributions"],
            "description": "With explain=true, of a linear model: the intercept and each input's contribution; they "
                           "add up to the number (or, for a classifier, to the label's logit, or its log-odds "
                           "against the other label).",
            "properties": {"label": {"type": "string"}, "of": {"enum": ["logit", "log-odds"]},
                           "intercept": {"type": "number"},
                           "contributions": {"type": "object", "additionalProperties": {"type": "number"}}},
        },
        "ValuePredictions": {"type": "object", "required": ["predictions"],
                             "properties": {"predictions": {"type": "array", "items": ref("ValuePrediction")}}},
        "LabelPrediction": {
            "type": "object",
            "required": ["prediction", "confidence", "probabilities", "unseen", "id", "model_version"],
            "properties": {
                "prediction": {"type": "string", "description": "The label predicted."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                               "description": "Its probability (three decimals)."},
                "probabilities": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                                             "maximum": 1},
                                  "description": "Every label's probability (three decimals)."},
                "unseen": {"type": "array", "items": {"type": "string"},
                           "description": "The inputs whose value the model never saw."},
                "id": {**ref("AnswerId"), "description": "This answer's id: send it to POST /feedback with the "
                                                         "true label."},
                "model_version": {"type": "string", "maxLength": 64},
                "explanation": ref("Contributions"),
            },
        },
        "LabelPredictions": {"type": "object", "required": ["predictions"],
                             "properties": {"predictions": {"type": "array", "items": ref("LabelPrediction")}}},
        "FeedbackValue": {
            "type": "object", "required": ["id", "value"], "additionalProperties": False,
            "properties": {"id": {**ref("AnswerId"), "description": "The `id` of an answer of a regressor."},
                           "value": {"type": "number", "description": "The true value, on the model's scale "
                                                                      "(an IMDb rating: 1 to 10)."}},
        },
    }
