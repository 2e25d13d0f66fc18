"""Operations: what happens once per request, whatever the endpoint.

`Operations` is the WSGI middleware around the Flask app: request ids, security and CORS headers,
and, through the objects it is given, the request metrics (`metrics.Metrics`) and the access line
(`logs.AccessLog`). gunicorn's own error answers (`serving.lifecycle`) carry the same `NO_SNIFF` and `NO_STORE`
(both defined in `serving.config`).
"""
import re
import time

from serving.config import MODEL_ROUTES, NO_SNIFF, NO_STORE
from serving.ids import unique_bytes

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY = "sentiment.request_id"  # where the app finds the request's id in the WSGI environ
# A caller's id is echoed only if it is short and plain, so it cannot forge log lines or bloat them.
GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
IP_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{2,45}")  # IPv4 or IPv6, as proxies write them


class Operations:
    """WSGI middleware around the Flask app: what happens once per request, whatever the endpoint.

    It gives each answer its request id, its security and CORS headers, counts it in the metrics and
    writes its access-log line. It works on the raw WSGI environ and header list: done with Flask
    hooks, Werkzeug's header objects and flask-cors, the same work made a GET take ~160 us in-process
    instead of ~100 us (scoring the text takes ~10 us); under gunicorn the service then answered 2.2x
    the tutorial baseline's requests/s, against ~2.8x now (benchmarks/bench_serving.py).
    """

    def __init__(self, wsgi_app, *, metrics, access_log, cors_origins, trusted_proxies=(),
                 model_names=frozenset(MODEL_ROUTES), added_routes=None, models=None):
        self.wsgi_app, self.metrics, self.access_log = wsgi_app, metrics, access_log
        self.model_names = frozenset(model_names)  # the endpoints that score, each named for its model
        self.added_routes = {} if added_routes is None else added_routes  # route -> an added model, kept current
        self.models = {} if models is None else models  # name -> the served model, kept current
        self.any_origin = "*" in cors_origins
        self.cors_origins = frozenset(cors_origins)
        self.any_proxy = "*" in trusted_proxies
        self.trusted_proxies = frozenset(trusted_proxies)

    def __call__(self, environ, start_response):
        """Answer through the app, adding headers, metrics and the log line when it starts its response."""
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        # Else 32 hex digits: unique, not secret, and no system call (`ids.unique_bytes`).
        request_id = given if GOOD_REQUEST_ID.fullmatch(given) else unique_bytes(16).hex()
        environ[REQUEST_ID_KEY] = request_id  # for the prediction log's rows

        def start(status, headers, exc_info=None):
            headers.extend(self.extra_headers(environ, headers, request_id))
            self.record(environ, int(status[:3]), request_id, time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)

    def extra_headers(self, environ, headers, request_id):
        """The request id, headers that suit a JSON API unless the app set its own, and CORS headers."""
        present = {name.lower(): value for name, value in headers}
        extra = [(REQUEST_ID_HEADER, request_id), NO_SNIFF]
        if "cache-control" not in present:
            extra.append(NO_STORE)
        if present.get("content-type", "").startswith("application/json") and "content-security-policy" not in present:
            # A JSON answer opened in a browser must not run or load anything, nor be framed.
            extra.append(("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))
        if not self.any_origin:  # the answer depends on the caller's origin: caches must keep them apart
            vary = present.get("vary")
            if vary:
                headers.remove(next(h for h in headers if h[0].lower() == "vary"))
            extra.append(("Vary", f"{vary}, Origin" if vary else "Origin"))
        origin = environ.get("HTTP_ORIGIN")
        if origin and (self.any_origin or origin in self.cors_origins):
            extra += cors_headers(environ, "*" if self.any_origin else origin)
        return extra

    def record(self, environ, status, request_id, seconds):
        """Count the request and write its one access-log line."""
        method = environ["REQUEST_METHOD"]
        # Flask's request object knows the endpoint that answered (none for 404s and 405s); Werkzeug
        # puts it in the environ, and Flask clears it only after the response has started.
        flask_request = environ.get("werkzeug.request")
        rule = getattr(flask_request, "url_rule", None)
        endpoint = rule.endpoint if rule else "none"
        # The model a request scored: its route's, an added model's (its name is the endpoint's), or the one
        # an Open Inference Protocol path names.
        if endpoint == "added":
            endpoint = model_name = self.added_routes.get(environ.get("PATH_INFO"), "none")
        elif endpoint in self.model_names:
            model_name = endpoint
        else:
            model_name = (getattr(flask_request, "view_args", None) or {}).get("model_name")
        self.metrics.observe(endpoint, method, status, seconds)
        # The path without its query string: the texts people score may be private, and long.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        self.access_log.write(request_id=request_id, method=method, path=path, status=status, seconds=seconds,
                              model_name=model_name if model_name in self.model_names or model_name in self.models
                              else None,
                              remote_addr=self.client_address(environ))

    def client_address(self, environ):
        """The peer's address, or, when the peer is a trusted proxy, the last address in X-Forwarded-For:
        the one that proxy saw. A value that is not an IP address is never written."""
        peer = environ.get("REMOTE_ADDR")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and (self.any_proxy or peer in self.trusted_proxies):
            last = forwarded.rsplit(",", 1)[-1].strip()
            if IP_ADDRESS.fullmatch(last):
                return last
        return peer


# What a browser script on another origin may send and read. Preflights are answered for every path:
# the app answers OPTIONS itself, and this adds the permission.
# Inference-Header-Content-Length: the Open Inference Protocol's binary tensors, sent and read.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID, Inference-Header-Content-Length"
CORS_EXPOSE_HEADERS = f"{REQUEST_ID_HEADER}, Inference-Header-Content-Length"


def cors_headers(environ, allowed_origin):
    """CORS headers letting `allowed_origin` read the answer (and, for a preflight, send its request)."""
    headers = [("Access-Control-Allow-Origin", allowed_origin), ("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)]
    if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
        headers += [("Access-Control-Allow-Methods", "GET, POST"), ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                    ("Access-Control-Max-Age", "600")]
    return headers
