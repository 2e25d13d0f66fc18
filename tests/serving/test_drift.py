"""The drift signals and their comparisons (drift.py), on figures worked out by hand."""
import pytest

from serving import drift


def test_signals_of_a_few_scored_texts():
    found = drift.signals(labels=["Negative", "Positive"], predicted=[0, 1, 1, 1], confidence=[0.6, 0.9, 0.95, 1.0],
                          lengths=[10, 20, 30, 40], tokens=[2, 4, 0, 4], known=[1, 4, 0, 3])
    assert found["texts"] == 4
    assert found["known_token_share"] == 8 / 10
    assert found["no_known_term_share"] == 1 / 4
    assert found["label_shares"] == {"Negative": 0.25, "Positive": 0.75}
    assert found["confidence_mean"] == pytest.approx(0.8625)
    assert found["confidence_buckets"]["0.55"] == 0 and found["confidence_buckets"]["0.6"] == 0.25
    assert found["confidence_buckets"]["0.95"] == 0.75 and found["confidence_buckets"]["1.0"] == 1.0
    assert found["text_length_quantiles"]["0.5"] == 25.0
    assert drift.signals(labels=["a"], predicted=[], confidence=[], lengths=[], tokens=[], known=[]) == {"texts": 0}


def test_the_label_mix_difference_is_the_largest_share_difference():
    then = {"Negative": 0.5, "Positive": 0.5}
    assert drift.label_share_difference({"Negative": 0.7, "Positive": 0.3}, then) == pytest.approx(0.2)
