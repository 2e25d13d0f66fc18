"""The tutorial's model.py: load a built model folder and score texts. The model kinds live in kinds/
(`kinds/text.py`: `SentimentModel`, `FastScorer`, ...); this module re-exports their public names."""
from kinds.text import (
    FAST_PATH_MAX_BATCH,
    MAX_UNKNOWN,
    TOP_TERMS,
    FastScorer,
    ModelError,
    Scored,
    SentimentModel,
    check_supported,
    fitted_problems,
    load_models,
    softmax,
    softmax_one,
    top_terms,
    uses_fast_path,
)

__all__ = ["FAST_PATH_MAX_BATCH", "MAX_UNKNOWN", "TOP_TERMS", "FastScorer", "ModelError", "Scored", "SentimentModel",
           "check_supported", "fitted_problems", "load_models", "softmax", "softmax_one", "top_terms", "uses_fast_path"]
