"""Request parsing: plain functions that find a request's texts.

The parsers take what Flask hands over (query string, content type, body bytes) and return the
texts to score, or raise one of the named errors of `serving.errors` with a message that tells the
caller what to do next. They know nothing of routes or apps, so they are tested (and property-tested)
without HTTP; `web.errors.error_response` turns every error into JSON with its status.
"""
import json
from urllib.parse import parse_qs

from werkzeug.exceptions import RequestEntityTooLarge

from serving.errors import BadQuery, TooLarge

# A text must hold one character that is not white space as str.strip() sees it. The same rule, written
# out for the OpenAPI document: JSON Schema's \s is ECMAScript's, which differs from Python's (\x1c-\x1f,
# \x85, \ufeff), so the characters are listed (tests/web/test_parsing.py checks every code point).
TEXT_PATTERN = "[^\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"

HOW_TO_SEND = 'send the text as ?query=..., as a form field query=..., or as a JSON body {"query": "..."}'


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
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number",
             str: "a string"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


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


FLAGS = {"true": True, "1": True, "false": False, "0": False}


def flag_from_text(value):
    """`explain` from a URL or a form: true, false, 1 or 0."""
    if value not in FLAGS:
        raise BadQuery(f"explain={value!r} is not a flag: send explain=true or explain=false (or 1 or 0).")
    return FLAGS[value]


def flag_from_json(value):
    """`explain` from a JSON body: a boolean."""
    if not isinstance(value, bool):
        raise BadQuery(f'explain must be true or false in JSON, not {json_type(value)}: send "explain": true.')
    return value


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


FEEDBACK_SHAPE = '{"id": "...", "label": "..."} or {"feedback": [{"id": "...", "label": "..."}, ...]}'
FEEDBACK_FORMS = 'send one item {"id": "...", "label": "..."} or a batch {"feedback": [...]}, not both'


def feedback_from_post(*, body, max_batch):
    """The items of a POST /feedback, in order: [(where, id, label), ...], `where` naming each in messages
    (`feedback[3]`; None for a body of one item).

    The body is one item {"id": ..., "label": ...} or a batch {"feedback": [item, ...]}, with no other
    property (as the OpenAPI document says). Only the shape is checked here; whether the id was issued and
    the label is the model's is the feedback resource's job.
    """
    if not body.strip():
        raise BadQuery(f"POST /feedback takes a JSON body {FEEDBACK_SHAPE}; the body is empty.")
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadQuery(f"The JSON body must be an object like {FEEDBACK_SHAPE}, not {json_type(document)}.")
    if "feedback" in document:
        # Before the batch's own checks: a body mixing the forms is refused as such, not for its batch's size.
        if extra := [name for name in document if name != "feedback"]:
            raise BadQuery(f"The body has unexpected properties {property_names(extra)}: {FEEDBACK_FORMS}.")
        items = document["feedback"]
        if not isinstance(items, list):
            raise BadQuery(f'feedback must be an array of {{"id": ..., "label": ...}} objects, not {json_type(items)}.')
        if not items:
            raise BadQuery('feedback is empty; send at least one {"id": ..., "label": ...}.')
        if len(items) > max_batch:
            raise TooLarge(f"feedback holds {len(items):,} items; the limit is {max_batch:,} per request. "
                           "Split the batch.")
        return [feedback_item(item, f"feedback[{i}]") for i, item in enumerate(items)]
    return [feedback_item(document, None)]


def feedback_item(item, where):
    """(where, id, label) of one feedback object, or `BadQuery` saying what is missing or wrong."""
    named = where or "the body"
    if not isinstance(item, dict):
        raise BadQuery(f'{where} must be an object {{"id": "...", "label": "..."}}, not {json_type(item)}.')
    if extra := [name for name in item if name not in ("id", "label")]:
        raise BadQuery(f"The body has unexpected properties {property_names(extra)}: {FEEDBACK_FORMS}."
                       if where is None else f"{where} has unexpected properties {property_names(extra)}: "
                       'send each item as {"id": "...", "label": "..."} and nothing more.')
    missing = [name for name in ("id", "label") if name not in item]
    if missing:
        raise BadQuery(f"{named} has no {' and no '.join(missing)}: send the `id` of an answer and the true "
                       f'`label`, e.g. {{"id": "...", "label": "Positive"}}.')
    for name in ("id", "label"):
        if not isinstance(item[name], str):
            raise BadQuery(f"{name} must be a string, not {json_type(item[name])}." if where is None else
                           f"{where}.{name} must be a string, not {json_type(item[name])}.")
    return where, item["id"], item["label"]


def property_names(names, shown=5):
    """Property names for a message, quoted as JSON: the first `shown` of them and how many more."""
    quoted = ", ".join(json.dumps(name) for name in names[:shown])
    return quoted + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


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
