"""What `/metrics` shows (metrics.py): requests, latencies, predictions and the served models, each app
counting only its own, and where prometheus-client keeps the values. Summed across real gunicorn
workers in e2e/test_operations_live.py."""
import time
from datetime import datetime

import pytest
from prometheus_client import values

import kinds
from app import create_app
from kinds.text_scoring import feature_parts
from serving.metrics import Metrics, use_values_in
from support import samples, value, wait_for


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
    assert set(info) == {"binary", "fine-grained", "ratings"}
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


def test_metrics_count_the_drift_signals_of_every_text(client, model_dir):

    binary = kinds.load(model_dir / "binary")
    words = feature_parts(binary.vectorizer)[0]  # the drift counts are the words' (kinds/text_scoring.py)
    analyze, vocabulary = words.build_analyzer(), words.vocabulary_
    texts = ["a brilliant superb film", "zzqx blorft", *[f"good film number {i}" for i in range(150)]]
    client.get("/", query_string={"query": texts[0]})
    client.post("/", json={"queries": texts[1:2]})
    client.post("/", json={"queries": texts[2:]})  # over the fast path's limit: the batch path counts too
    table = samples(client.get("/metrics").get_data(as_text=True))
    assert value(table, "sentiment_texts_scored_total", model="binary") == len(texts)
    assert value(table, "sentiment_tokens_total", model="binary") == sum(len(analyze(t)) for t in texts)
    assert value(table, "sentiment_known_tokens_total", model="binary") == sum(
        sum(token in vocabulary for token in analyze(t)) for t in texts)
    assert value(table, "sentiment_texts_without_known_terms_total", model="binary") == 1
    confidences = [a["confidence"] for a in binary.predict(texts)]
    assert value(table, "sentiment_confidence_count", model="binary") == len(texts)
    assert value(table, "sentiment_confidence_sum", model="binary") == pytest.approx(sum(confidences))
    for bound in ("0.5", "0.75", "0.9", "1.0"):
        assert value(table, "sentiment_confidence_bucket", model="binary", le=bound) == sum(
            c <= float(bound) for c in confidences)
    assert value(table, "sentiment_text_length_chars_bucket", model="binary", le="16.0") == sum(
        len(t) <= 16 for t in texts)
    assert value(table, "sentiment_text_length_chars_sum", model="binary") == sum(map(len, texts))
    assert value(table, "sentiment_texts_scored_total", model="fine-grained") == 0


def test_the_reference_of_each_models_build_is_exported_as_gauges(client, model_dir):
    import util

    table = samples(client.get("/metrics").get_data(as_text=True))
    for name in ("binary", "fine-grained"):
        reference = util.read_json(model_dir / name / "metrics.json")["reference"]
        assert value(table, "sentiment_reference_known_token_share", model=name) == reference["known_token_share"]
        assert value(table, "sentiment_reference_accuracy", model=name) == reference["accuracy"]
        assert value(table, "sentiment_reference_confidence_mean", model=name) == reference["confidence_mean"]
        assert value(table, "sentiment_reference_no_known_term_share", model=name) == reference["no_known_term_share"]
        for label, share in reference["label_shares"].items():
            assert value(table, "sentiment_reference_label_share", model=name, label=label) == share
        assert value(table, "sentiment_reference_confidence_share", model=name, le="1.0") == 1.0
        assert value(table, "sentiment_reference_text_length_chars", model=name, quantile="0.5") == \
            reference["text_length_quantiles"]["0.5"]


@pytest.mark.parametrize("per_request", [1, 7])  # GETs (SignalSums.add_one) and batches
@pytest.mark.parametrize("observed", [[], [0.2], [0.5, 0.5, 0.55, 0.999, 1.0], [0.3, 0.31, 0.95, 0.7] * 50])
def test_summed_signals_write_what_observing_them_one_by_one_would(observed, per_request):
    import prometheus_client

    from kinds.text import Scored
    from serving import drift
    from serving.metrics import SignalSums

    registry = prometheus_client.CollectorRegistry()
    texts = ["x" * int(c * 100) for c in observed]  # lengths 0 to 100, across the length buckets

    def series(prefix):
        counters = [prometheus_client.Counter(f"{prefix}_{n}", "c", registry=registry) for n in range(4)]
        return (*counters, prometheus_client.Histogram(f"{prefix}_confidence", "h", buckets=drift.CONFIDENCE_BUCKETS,
                                                       registry=registry),
                prometheus_client.Histogram(f"{prefix}_length", "h", buckets=drift.LENGTH_BUCKETS, registry=registry))

    one_by_one, summed = series("one"), series("many")
    for confidence, text in zip(observed, texts):
        one_by_one[4].observe(confidence)
        one_by_one[5].observe(len(text))
    sums = SignalSums()
    known = [2 * (i % 3 > 0) for i in range(len(observed))]  # every third text without a known term
    for start in range(0, len(observed), per_request):  # several requests
        part = observed[start:start + per_request]
        sums.add(Scored([{"confidence": c} for c in part], [3] * len(part), known[start:start + per_request],
                        [[c] for c in part]), texts[start:start + per_request])
    sums.write_to(*summed)
    table = samples(prometheus_client.generate_latest(registry).decode())
    for (name, labels), v in table.items():
        if name.startswith(("one_confidence", "one_length")):
            assert table[(name.replace("one_", "many_", 1), labels)] == pytest.approx(v), name
    assert value(table, "many_0_total") == len(observed) and value(table, "many_1_total") == 3 * len(observed)
    assert value(table, "many_2_total") == sum(known) and value(table, "many_3_total") == known.count(0)


def test_drift_signals_are_written_at_most_every_half_second_and_at_stop(model_dir):
    import prometheus_client

    from serving import metrics

    counted = Metrics()
    binary = kinds.load(model_dir / "binary")

    def written():
        return value(samples(prometheus_client.generate_latest(counted.registry).decode()),
                     "sentiment_texts_scored_total", model="binary")

    counted.count_scored("binary", binary.score(["good"]), ["good"])
    assert written() == 1  # the first is written at once
    counted.count_scored("binary", binary.score(["bad", "fine"]), ["bad", "fine"])
    assert written() == 1  # summed, not yet written
    counted.signals_due = 0.0  # as SIGNALS_EVERY seconds later
    counted.count_scored("binary", binary.score(["ok"]), ["ok"])
    assert written() == 4
    counted.count_scored("binary", binary.score(["late"]), ["late"])
    counted.stop(timeout=1)  # a worker's exit: what is summed is written
    assert written() == 5 and metrics.SIGNALS_EVERY == 0.5


def test_drift_and_shadow_sums_left_by_the_last_request_are_written_within_two_seconds_with_no_call(model_dir):
    import prometheus_client

    from serving import metrics

    counted = Metrics()
    binary = kinds.load(model_dir / "binary")

    def written():
        table = samples(prometheus_client.generate_latest(counted.registry).decode())
        return (value(table, "sentiment_texts_scored_total", model="binary"),
                value(table, "sentiment_shadow_total", model="binary", agree="true"))

    counted.start()  # as in a worker, after the fork
    try:
        counted.count_scored("binary", binary.score(["good"]), ["good"])  # written at once
        scored = binary.score(["bad", "fine"])
        counted.count_scored("binary", scored, ["bad", "fine"])
        counted.count_shadow("binary", scored.answers, [a["prediction"] for a in scored.answers])
        assert written() == (1, 0)  # summed, not yet written
        started = time.monotonic()
        assert wait_for(lambda: written() == (3, 2), timeout=5), written()
        assert time.monotonic() - started <= 2 * metrics.WRITE_IDLE_EVERY
    finally:
        counted.stop(timeout=5)
    assert not counted.writer.is_alive()
