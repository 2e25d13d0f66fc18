"""How the HTTP face answers errors: every one as JSON {"message": ...} ({"error": ...} on the Open Inference
Protocol's paths), with the right status and no internals. `error_response` is the one place statuses are
decided; `JsonApi` routes Flask-RESTful's errors through it, and `check_token` refuses requests without the
API token. The named errors themselves are in `serving.errors`.
"""
import hmac
import logging

from flask import jsonify, request
from flask_restful import Api
from werkzeug.exceptions import HTTPException

from kinds.text_inputs import HOW_TO_SEND
from serving.config import MODEL_ROUTES, NUMBER_MODELS, PROTECTED_ENDPOINTS
from serving.errors import ApiError, Unauthorized

log = logging.getLogger("sentiment")


# --- Errors: every one answers JSON {"message": ...} ---------------------------------------------

# Messages for errors Werkzeug raises itself, by status.
MESSAGES = {
    400: "The request is malformed. " + HOW_TO_SEND[0].upper() + HOW_TO_SEND[1:] + ".",
    404: "No such endpoint. Score text with " + " or ".join(f"GET {route}?query=..." for name, route in
                                                            MODEL_ROUTES.items() if name not in NUMBER_MODELS)
         + ", a film's rating with GET /ratings?genre=...&budget=...; the API is described at /openapi.json.",
    405: "{method} is not allowed here; this endpoint accepts {allow}.",
    413: "The request body is over {limit:,} bytes. Send fewer or shorter texts per request.",
}


V2_PREFIX = "/v2"  # the Open Inference Protocol's paths, whose errors answer {"error": ...}


def is_protocol_path(path):
    """True for /v2 and the paths under it."""
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def error_response(error):
    """The JSON answer for any exception: a message, the right status, and no internals."""
    if isinstance(error, ApiError):
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


def check_token(endpoint, authorization, token, protected=PROTECTED_ENDPOINTS):
    """Raise `Unauthorized` unless `token` is unset, `endpoint` is open (not in `protected`: the built
    models' endpoints and the others of PROTECTED_ENDPOINTS, and each added model's), or the header carries
    the token."""
    if token is None or endpoint not in protected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    # compare_digest takes the same time wherever the strings differ. It refuses non-ASCII str, so compare
    # bytes: WSGI hands headers over as latin-1, which gives back the bytes the client sent.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1", "replace"),
                                                             token.encode("utf-8")):
        raise Unauthorized("This endpoint needs the API token: send the header Authorization: Bearer <token>.")
