"""Reading the prediction log back (serving/log_reads.py); what the writer puts there is
tests/serving/test_prediction_log.py's."""
import pytest

from serving import log_reads
from serving.log_schema import PredictionLogError


def test_reading_a_sqlite_log_that_is_not_there_says_so_and_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/typo/predictions.sqlite3"
    with pytest.raises(PredictionLogError, match="no such file"):
        log_reads.read_predictions(url)
    assert not (tmp_path / "typo").exists()
