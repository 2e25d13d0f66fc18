"""The text classifier's inputs: the text of a GET, the texts of a POST or of an Open Inference Protocol
request, each checked.

The parsers take what Flask hands over (query string, content type, body bytes) and return the texts
to score, or raise one of the named errors of `serving.errors` with a message that tells the caller
what to do next. They know nothing of routes or apps, so they are tested (and property-tested)
without HTTP; `web.errors.error_response` turns every error into JSON with its status.
"""
import json

from serving.errors import BadQuery, TooLarge
from serving.payloads import (
    binary_texts,
    flag_from_json,
    flag_from_text,
    is_json,
    json_type,
    object_at,
    parse_form,
    parse_json,
)

# A text must hold one character that is not white space as str.strip() sees it. The same rule, written
# out for the OpenAPI document: JSON Schema's \s is ECMAScript's, which differs from Python's (\x1c-\x1f,
# \x85, \ufeff), so the characters are listed (tests/web/test_parsing.py checks every code point).
TEXT_PATTERN = "[^\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"

HOW_TO_SEND = 'send the text as ?query=..., as a form field query=..., or as a JSON body {"query": "..."}'


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


def text_from_get(*, query_string, mimetype, body, max_length):
    """The one text of a GET and whether to explain its answer: (text, explain).

    The text comes from ?query=, a form body (curl -d) or a JSON body {"query": ...}; `explain` from the
    same places (true/false/1/0 in the URL or a form, a boolean in JSON), false when absent.
    """
    fields = parse_form(query_string, "URL query string")
    values, explain = fields.get("query", []), [flag_from_text(v) for v in fields.get("explain", [])]
    if mimetype == "application/x-www-form-urlencoded":
        form = parse_form(body, "form body")
        values += form.get("query", [])
        explain += [flag_from_text(v) for v in form.get("explain", [])]
    elif is_json(mimetype) and body.strip():
        document = parse_json(body)
        if not isinstance(document, dict):
            raise BadQuery(f'The JSON body must be an object like {{"query": "..."}}, not {json_type(document)}.')
        if "query" in document:
            values.append(document["query"])
        if "explain" in document:
            explain.append(flag_from_json(document["explain"]))
    if not values:
        raise BadQuery(f"Missing query: {HOW_TO_SEND}.")
    if len(values) > 1:
        raise BadQuery(f'query was sent {len(values)} times; send it once. '
                       'To score several texts in one request, POST {"queries": ["...", "..."]}.')
    if len(explain) > 1:
        raise BadQuery(f"explain was sent {len(explain)} times; send it once.")
    return check_text(values[0], max_length=max_length, where="query"), bool(explain and explain[0])


def texts_from_post(*, body, max_length, max_batch):
    """The texts of a POST, in order, and whether to explain their answers: (texts, explain).

    The body is a JSON object {"queries": ["...", ...]}, optionally with "explain": true.
    """
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
    explain = flag_from_json(document["explain"]) if "explain" in document else False
    return [check_text(q, max_length=max_length, where=f"queries[{i}]") for i, q in enumerate(queries)], explain


# The one input of the Open Inference Protocol's requests to a text model.
INPUT = "text"


def texts_from_v2(inputs, binary, *, max_length, max_batch):
    """The texts of an Open Inference Protocol request's one input, `text` (BYTES, [n] or [n, 1]), from its
    JSON data or the request's binary part; `inputs` is the request's "inputs" as decoded."""
    shape_hint = f'"inputs": [{{"name": "{INPUT}", "datatype": "BYTES", "shape": [n], "data": ["...", ...]}}]'
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadQuery(f"The request must have one input, {INPUT!r}: send {shape_hint}.")
    tensor = inputs[0]
    if tensor.get("name") != INPUT:
        raise BadQuery(f"inputs[0].name must be {INPUT!r}, the models' one input; send {shape_hint}.")
    if tensor.get("datatype") != "BYTES":
        raise BadQuery(f"inputs[0].datatype must be \"BYTES\" (texts), not {json.dumps(tensor.get('datatype'))[:32]}.")
    shape = tensor.get("shape")
    # [n], or [n, 1]: a column of n texts, as MLServer's StringCodec writes it.
    if (not isinstance(shape, list) or len(shape) not in (1, 2) or shape[1:] not in ([], [1])
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)):
        raise BadQuery(f"inputs[0].shape must be [n] (or [n, 1]), n the number of texts, e.g. [1] for one text; "
                       f"not {json.dumps(shape)[:64]}.")
    count = shape[0]
    if count < 1:
        raise BadQuery(f"inputs[0].shape is [{count}]; send at least one text.")
    if count > max_batch:
        raise TooLarge(f"inputs[0] holds {count:,} texts; the limit is {max_batch:,} per request. Split the batch.")
    size = object_at(tensor, "parameters", "inputs[0].parameters").get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise BadQuery("inputs[0] has both data and parameters.binary_data_size; send the texts one way.")
        values = binary_texts(binary, size, count)
    else:
        if binary:
            raise BadQuery(f"The request has {len(binary):,} bytes after its JSON part, but no input says "
                           "parameters.binary_data_size.")
        values = tensor.get("data")
        if isinstance(values, list) and values and all(isinstance(v, list) for v in values):
            values = [v for row in values for v in row]  # the protocol allows data nested as its shape is
        if not isinstance(values, list):
            raise BadQuery(f"inputs[0].data must be an array of strings, not {json_type(values)}.")
        if len(values) != count:
            raise BadQuery(f"inputs[0].shape says {count:,} text(s) but data holds {len(values):,}; "
                           "make them agree.")
    return [check_text(value, max_length=max_length, where=f"inputs[0].data[{i}]") for i, value in enumerate(values)]
