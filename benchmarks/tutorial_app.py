"""The baseline for bench_serving.py: what the tutorial's app does per request, under gunicorn.

    MODEL_DIR=... gunicorn benchmarks.tutorial_app:app

One GET /?query=... runs scikit-learn's `vectorizer.transform` + `clf.predict` + `clf.predict_proba`
on the binary model, as the tutorial did (with its argument parsing fixed: a missing query is a 400).
The pickles are loaded through `model.SentimentModel.load`, so they are verified like the service's.
"""
import os

from flask import Flask, request
from flask_restful import Api, Resource

import kinds

loaded = kinds.load(os.path.join(os.environ["MODEL_DIR"], "binary"))


class PredictSentiment(Resource):
    """Score one text with scikit-learn's own per-call path."""

    def get(self):
        """The tutorial's answer: a label and a confidence."""
        query = request.args.get("query")
        if not query:
            return {"message": "send ?query=..."}, 400
        vector = loaded.vectorizer.transform([query])
        prediction = loaded.classifier.predict(vector)[0]
        confidence = loaded.classifier.predict_proba(vector).max()
        return {"prediction": loaded.labels[prediction], "confidence": round(float(confidence), 3)}


app = Flask(__name__)
Api(app).add_resource(PredictSentiment, "/")
