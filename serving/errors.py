"""The named API errors: each one a request can earn, with its HTTP status and a message written for the caller.

No routes or apps here: the request parsers (`web.parsing`), the Open Inference Protocol's requests
(`web.open_inference`), the feedback checks (`serving.recording`) and the resources raise them, and
`web.errors.error_response` turns every one into JSON with its status.
"""
from werkzeug.exceptions import HTTPException


class ApiError(HTTPException):
    """An error whose message was written for the caller; `code` is its HTTP status."""

    def __init__(self, message):
        super().__init__(description=message)


class BadQuery(ApiError):
    """The request carries no usable text, or its body is not what the endpoint takes."""
    code = 400


class TooLarge(ApiError):
    """A text or a batch is over its configured limit."""
    code = 413


class ModelNotBuilt(ApiError):
    """The endpoint's model was not built in this deployment."""
    code = 404


class NotServed(ApiError):
    """No served model has the name, or the version, that the request names."""
    code = 404


class UnknownAnswer(ApiError):
    """Feedback names an answer id this service never issued, or one past the prediction log's retention."""
    code = 404


class NoFeedback(ApiError):
    """Feedback was sent to a server that keeps no prediction log (PREDICTION_LOG=off)."""
    code = 404


class Unauthorized(ApiError):
    """API_TOKEN is set and the request does not carry it as a bearer token."""
    code = 401

    def get_headers(self, environ=None, scope=None):
        """RFC 6750: say which scheme to use."""
        return [("WWW-Authenticate", 'Bearer realm="sentiment"')]
