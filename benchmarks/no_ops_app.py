"""The service without its per-request operations, for bench_serving.py.

    gunicorn benchmarks.no_ops_app:app

The same create_app() as the service, parsing and scoring every query, with the Operations
middleware (request ids, security and CORS headers, request metrics, the access-log line) taken off
again: the Flask app it wraps answers directly. It records as the service does, with the default log
(a row per answer in the SQLite prediction log that PREDICTION_LOG names, without a request id): the
app is built in each worker, and gunicorn.conf.py's post_worker_init starts the writer of the app the
worker loaded. Beside the constant app it shows what parsing, scoring and recording cost; beside the
service, what the operations cost.
"""
from app import create_app
from web import operations

app = create_app()
assert isinstance(app.wsgi_app, operations.Operations)
app.wsgi_app = app.wsgi_app.wsgi_app
