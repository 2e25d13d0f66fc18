"""What `/metrics` shows (metrics.py): requests, latencies, predictions and the served models, each app
counting only its own, and where prometheus-client keeps the values. Summed across real gunicorn
workers in e2e/test_operations_live.py."""
from datetime import datetime

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from metrics import Metrics, use_values_in


def samples(metrics_text):
    """{(sample name, frozenset of label items): value} of a Prometheus text exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics_text) for s in family.samples}


def value(table, name, **labels):
    """One sample's value, 0 if absent."""
    return table.get((name, frozenset(labels.items())), 0)


def test_metrics_count_requests_predictions_and_describe_the_models(client):
    client.get("/?query=brilliant+superb")
    client.post("/", json={"queries": ["awful worst", "dreadful", "brilliant"]})
    client.get("/?query=%20")
    client.get("/fine-grained?query=masterpiece")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    table = samples(response.get_data(as_text=True))
    total = "sentiment_http_requests_total"
    assert value(table, total, endpoint="binary", method="GET", status="200") == 1
    assert value(table, total, endpoint="binary", method="POST", status="200") == 1
    assert value(table, total, endpoint="binary", method="GET", status="400") == 1
    assert value(table, total, endpoint="fine-grained", method="GET", status="200") == 1
    assert value(table, "sentiment_http_request_duration_seconds_count", endpoint="binary") == 3
    assert value(table, "sentiment_http_request_duration_seconds_bucket", endpoint="binary", le="+Inf") == 3
    predictions = "sentiment_predictions_total"
    assert value(table, predictions, model="binary", label="Positive") == 2
    assert value(table, predictions, model="binary", label="Negative") == 2
    assert value(table, predictions, model="fine-grained", label="Positive") == 1
    models = {m["name"]: m for m in client.get("/models").get_json()["models"]}
    info = {dict(labels)["model"]: (dict(labels)["created_at"], v)
            for (name, labels), v in table.items() if name == "sentiment_model_info"}
    assert set(info) == {"binary", "fine-grained"}
    for name, (created_at, seconds) in info.items():
        assert created_at == models[name]["created_at"]
        # Unix seconds, for `time() - sentiment_model_info` alerts
        assert seconds == pytest.approx(datetime.fromisoformat(created_at).timestamp())


def test_each_app_counts_only_its_own_requests(model_dir):
    first, second = (create_app({"MODEL_DIR": str(model_dir)}).test_client() for _ in range(2))
    first.get("/?query=good")
    first.get("/?query=good")
    second.get("/?query=good")
    for client, count in ((first, 2), (second, 1)):
        table = samples(client.get("/metrics").get_data(as_text=True))
        assert value(table, "sentiment_http_requests_total", endpoint="binary", method="GET", status="200") == count


def test_made_up_methods_and_paths_do_not_create_new_metric_series(client):
    client.open("/", method="BREW")
    client.get("/a-random-path-1")
    client.get("/a-random-path-2")
    table = samples(client.get("/metrics").get_data(as_text=True))
    labels = [dict(lab) for name, lab in table if name == "sentiment_http_requests_total"]
    assert {"endpoint": "none", "method": "other", "status": "405"} in labels
    assert {"endpoint": "none", "method": "GET", "status": "404"} in labels
    assert value(table, "sentiment_http_requests_total", endpoint="none", method="GET", status="404") == 2
    assert not any("random" in v or v == "BREW" for lab in labels for v in lab.values())


# --- Where the values live -----------------------------------------------------------------------

def test_values_kept_in_a_folder_are_written_there_and_summed_back_and_in_memory_ones_are_not(tmp_path,
                                                                                               monkeypatch):
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # process-wide: put back after the test
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # recorded, so what use_values_in sets is undone
    use_values_in(str(tmp_path))
    shared = Metrics(multiprocess_dir=str(tmp_path))
    shared.observe("binary", "GET", 200, 0.001)
    written = sorted(p.name.split("_")[0] for p in tmp_path.iterdir())
    assert written == ["counter", "histogram"]  # the request counter and the latency histogram
    table = samples(shared.exposition().decode())
    assert value(table, "sentiment_http_requests_total", endpoint="binary", method="GET", status="200") == 1
    use_values_in(None)
    own = Metrics()
    own.observe("binary", "GET", 200, 0.001)
    assert sorted(p.name.split("_")[0] for p in tmp_path.iterdir()) == written
    table = samples(own.exposition().decode())
    assert value(table, "sentiment_http_requests_total", endpoint="binary", method="GET", status="200") == 1
