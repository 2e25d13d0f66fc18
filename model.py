"""The tutorial's model.py: what a served model is, and how one is loaded.

The tutorial unpickled a vectorizer and a classifier here. The service reads a model folder through
`kinds.load`, which verifies it and loads it as the kind its manifest names; the text classifier, the
tutorial's kind, is `kinds.text.TextClassifier`. Each kind is a small module in kinds/ behind
`serving.kind.ModelKind`; docs/development.md shows how to add one.
"""
from kinds import load, load_models
from kinds.text import TextClassifier
from store.artifacts import ModelError

SentimentModel = TextClassifier  # the tutorial's name for its model

__all__ = ["ModelError", "SentimentModel", "TextClassifier", "load", "load_models"]
