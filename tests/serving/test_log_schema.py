"""The prediction log's tables and the SQL of its writes (serving/log_schema.py); the schema's
migrations run against both engines in tests/serving/test_prediction_log.py."""
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from serving import log_schema


@given(st.dictionaries(st.text(max_size=20), st.floats(min_value=0, max_value=1), max_size=6))
def test_probabilities_are_logged_as_the_same_json_as_json_dumps(probabilities):
    compact = json.dumps(probabilities, separators=(",", ":"))
    assert log_schema.probabilities_json(probabilities) == compact
    floats64 = {label: np.float64(p) for label, p in probabilities.items()}  # the sklearn path's type
    assert log_schema.probabilities_json(floats64) == compact
