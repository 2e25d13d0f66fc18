"""The service's own ceiling for bench_serving.py: this service's whole stack, with scoring replaced by a constant.

    gunicorn benchmarks.stack_constant_app:app

The same create_app() as the service (request parsing, request ids, access log, metrics, CORS,
security headers), given models whose `score` returns a fixed answer. It records as the service
does, with the default log (a row per answer in the SQLite prediction log that PREDICTION_LOG names):
the app is built in each worker, and gunicorn.conf.py's post_worker_init starts the writer of the app
the worker loaded. The gap between it and the service is what scoring costs; the gap between it and
constant_app is what the service's own middleware and recording cost.
"""
import kinds
from app import create_app
from kinds.text import TextClassifier
from serving.config import Settings
from serving.kind import Scored
from store import artifacts

ANSWER = {"prediction": "Positive", "confidence": 0.5, "probabilities": {"Negative": 0.5, "Positive": 0.5}}


class ConstantModel(TextClassifier):
    """A loaded model that answers every text with ANSWER."""

    def score(self, texts, *, explain=False):
        """The constant answer, a new dict per text as the real model gives (each gets its own id), never
        explained (the benchmark's GET does not ask), with a constant count of tokens, all known."""
        return Scored([dict(ANSWER) for _ in texts], [6] * len(texts), [6] * len(texts), [[0.5, 0.5] for _ in texts])


settings = Settings.from_env()


def load(folder):
    """A text model as one answering a constant; any other kind (ratings, an added model) as it is."""
    manifest = artifacts.read_manifest(artifacts.resolve_folder(folder))
    return ConstantModel.load(folder) if manifest.get("kind", kinds.DEFAULT_KIND) == kinds.DEFAULT_KIND \
        else kinds.load(folder)


models = {m.name: m for m in map(load, artifacts.model_folders(settings.MODEL_DIR))}
app = create_app(settings, models=models)
