"""plots.py: the build's pictures are real PNG files of the size drawn, and the drift report's steps fit the window."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from training import plots


def test_the_confusion_matrix_and_roc_curve_are_saved_as_png_pictures(tmp_path):
    plots.confusion(np.array([[8, 2], [1, 9]]), ["Negative", "Positive"], tmp_path / "confusion.png")
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200)
    plots.roc(truth, np.clip(truth * 0.6 + rng.random(200) * 0.5, 0, 1), 0.9, tmp_path / "roc.png")
    for name in ("confusion.png", "roc.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100


@pytest.mark.parametrize("span, step", [(pd.Timedelta(minutes=30), "1min"), (pd.Timedelta(hours=6), "10min"),
                                        (pd.Timedelta(days=1), "1h"), (pd.Timedelta(days=10), "6h"),
                                        (pd.Timedelta(days=90), "1D")])
def test_the_drift_reports_time_step_cuts_its_window_into_at_most_48_steps(span, step):
    times = pd.Series(pd.to_datetime(["2026-12-01T00:00:00Z"]).repeat(2)) + pd.Series([pd.Timedelta(0), span])
    assert plots.time_step(times) == step
    steps = span / pd.Timedelta(step)
    assert steps <= 48 or step == "1D"
