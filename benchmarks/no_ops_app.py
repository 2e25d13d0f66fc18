"""The service without its per-request operations, for bench_serving.py.

    gunicorn benchmarks.no_ops_app:app

The same create_app() as the service, parsing and scoring every query, but without the Operations
middleware (request ids, security and CORS headers, metrics, the access-log line) and without
counting predictions. Beside the constant app it shows what parsing and scoring alone cost; beside
the service, what the operations cost.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app as service  # noqa: E402

service.Operations = lambda wsgi_app, **unused: wsgi_app
service.Metrics.count_predictions = lambda self, model_name, answers: None

app = service.create_app()
