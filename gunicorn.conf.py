"""gunicorn settings for `gunicorn app:app`: server settings only, each with the reason for its value.

The app's own settings (MODEL_DIR, limits, API_TOKEN, ...) are environment variables read by
app.load_config(); see the README.
"""
import json
import os
import sys

import gunicorn.util

import app as sentiment_app
import model

# Loopback by default, like `python app.py`; a container or a reverse proxy sets BIND=0.0.0.0:5000.
bind = os.environ.get("BIND", "127.0.0.1:5000")

# One worker per core: scoring is CPU-bound and takes tens of microseconds, so more processes than
# cores only add context switches. Override with WEB_CONCURRENCY on bigger machines.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))

# Every request is answered in milliseconds; 30 s only catches a worker that is truly stuck.
timeout = 30

# On SIGTERM (deploys, `docker stop`), finish in-flight requests for up to 10 s before exiting.
graceful_timeout = 10

# Clients that reuse connections (requests.Session, browsers, load balancers) skip a TCP handshake.
keepalive = 5

# Access log on stdout, so the container runtime or systemd collects it.
accesslog = "-"
errorlog = "-"


def on_starting(server):
    """Refuse to start, once and clearly, when a model cannot be trusted (no worker boot loop)."""
    try:
        settings = sentiment_app.load_config()
        model.verify_models(settings["MODEL_DIR"])
    except (model.ModelError, sentiment_app.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


# gunicorn answers a few malformed requests itself, before the app sees them (a URL over
# limit_request_line -> 414, headers too large -> 431, not HTTP -> 400), with an HTML page. Clients of a
# JSON API get JSON like every other error; the function is replaced here, in the master, so every
# worker forked from it inherits the change.
GUNICORN_ERRORS = {
    400: "The request is not valid HTTP/1.1. A URL must be ASCII: percent-encode other characters as UTF-8.",
    414: "The URL is too long for this server. Send long texts in the body instead: a form field query=... "
         'or a JSON body {"query": "..."}, or POST {"queries": [...]}.',
    431: "The request headers are too large or too many.",
}


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's own error answer, as JSON `{"message": ...}` without internals."""
    message = GUNICORN_ERRORS.get(status_int, f"{reason}.")
    body = json.dumps({"message": message}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_json_error
