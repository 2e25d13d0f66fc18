"""The framework's ceiling for bench_serving.py: the same Flask-RESTful stack answering a constant.

    gunicorn benchmarks.constant_app:app

GET / returns an answer shaped like the service's, without reading the query or scoring anything,
so its requests/s is what Flask-RESTful under these gunicorn settings can do at most.
"""
from flask import Flask
from flask_restful import Api, Resource

ANSWER = {"prediction": "Positive", "confidence": 0.5, "probabilities": {"Negative": 0.5, "Positive": 0.5}}


class Constant(Resource):
    """Always the same answer."""

    def get(self):
        """The constant answer."""
        return ANSWER


app = Flask(__name__)
Api(app).add_resource(Constant, "/")
