"""The service's own ceiling for bench_serving.py: this service's whole stack, with scoring replaced by a constant.

    gunicorn benchmarks.stack_constant_app:app

The same create_app() as the service (request parsing, request ids, access log, metrics, CORS,
security headers), but every model's `predict` returns a fixed answer. The gap between it and the
service is what scoring costs; the gap between it and constant_app is what the service's own
middleware costs.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import model  # noqa: E402

ANSWER = {"prediction": "Positive", "confidence": 0.5, "probabilities": {"Negative": 0.5, "Positive": 0.5}}
model.SentimentModel.predict = lambda self, texts: [ANSWER for _ in texts]

from app import create_app  # noqa: E402

app = create_app()
