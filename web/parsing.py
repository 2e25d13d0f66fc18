"""Request parsing of the HTTP face's own bodies: feedback, and reading a body within its limit.

A model's inputs are its kind's to parse (`kinds/text_inputs.py` for the text classifier); these
functions take what Flask hands over and return what the resource needs, or raise one of the named
errors of `serving.errors` with a message that tells the caller what to do next. They know nothing of
routes or apps, so they are tested without HTTP; `web.errors.error_response` turns every error into
JSON with its status.
"""
import json

from werkzeug.exceptions import RequestEntityTooLarge

from serving.errors import BadQuery, TooLarge
from serving.payloads import json_type, parse_json

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
    """(where, id, target) of one feedback object, or `BadQuery` saying what is missing or wrong. The
    target is the true `label` (a string, for a classifier) or the true `value` (a number, for a
    regressor); which one the answering model takes is the feedback resource's check."""
    named = where or "the body"
    if not isinstance(item, dict):
        raise BadQuery(f'{where} must be an object {{"id": "...", "label": "..."}}, not {json_type(item)}.')
    if extra := [name for name in item if name not in ("id", "label", "value")]:
        raise BadQuery(f"The body has unexpected properties {property_names(extra)}: {FEEDBACK_FORMS}."
                       if where is None else f"{where} has unexpected properties {property_names(extra)}: "
                       'send each item as {"id": "...", "label": "..."} (or "value": a number) and nothing more.')
    at = "" if where is None else f"{where}."
    if "label" in item and "value" in item:
        raise BadQuery(f'{named} has both a label and a value: send the true "label" of a classifier\'s answer, '
                       'or the true "value" of a number, not both.')
    missing = [name for name in ("id", "label") if name not in item and not (name == "label" and "value" in item)]
    if missing:
        raise BadQuery(f"{named} has no {' and no '.join(missing)}: send the `id` of an answer and the true "
                       f'`label`, e.g. {{"id": "...", "label": "Positive"}} (or `value`, a number, for /ratings).')
    if not isinstance(item["id"], str):
        raise BadQuery(f"{at}id must be a string, not {json_type(item['id'])}.")
    if "label" in item:
        if not isinstance(item["label"], str):
            raise BadQuery(f"{at}label must be a string, not {json_type(item['label'])}.")
        return where, item["id"], item["label"]
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadQuery(f"{at}value must be a number, not {json_type(value)}.")
    return where, item["id"], value


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
