"""The Prometheus rules in deploy/prometheus (alerts.yml): valid, unit-tested with promtool on synthetic
series (alerts.test.yml), explained in docs/running.md, and naming only metrics the service exports.
Against a real Prometheus scraping a live server: tests/e2e/test_prometheus_live.py."""
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from support import samples

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus"


def promtool():
    """The path of promtool (Debian's `prometheus` package; .ci/run installs it)."""
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus"
    return found


def rules():
    """Every rule of alerts.yml, as dicts."""
    return [rule for group in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def test_promtool_finds_the_rules_valid():
    done = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_the_rules_unit_tests_pass():
    done = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_every_alert_has_a_summary_a_severity_a_unit_test_and_a_line_in_the_docs():
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 6
    docs = (ROOT / "docs" / "running.md").read_text()
    tests = (RULES / "alerts.test.yml").read_text()
    for rule in alerts:
        name = rule["alert"]
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in {"warning", "critical"}, name
        assert re.search(rf"\| `{name}` \|", docs), f"{name} has no row in docs/running.md"
        assert f"alertname: {name}\n" in tests, f"{name} has no unit test in alerts.test.yml"


def test_the_rules_name_only_metrics_the_service_exports(client):
    client.get("/?query=good")
    client.post("/feedback", json={"id": client.get("/?query=good").get_json()["id"], "label": "Positive"})
    rating = client.get("/ratings?genre=Drama&budget=1000000&director=Nobody+Yet").get_json()
    client.post("/feedback", json={"id": rating["id"], "value": 6.0})
    exported = {name for name, _ in samples(client.get("/metrics").get_data(as_text=True))} | {"up"}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    named = set()
    for rule in rules():
        named |= set(re.findall(r"\b(sentiment_[a-z_]+|up)\b", rule["expr"]))
    assert named - exported == set(), f"the rules name metrics the service does not export: {named - exported}"
    used = set()
    for rule in rules():
        used |= set(re.findall(r"\bsentiment:[a-z_0-9:]+", rule["expr"]))
    assert used <= recorded


def test_the_alerts_use_the_margins_and_counts_the_drift_report_applies():
    from serving import drift

    expressions = {rule["alert"]: " ".join(rule["expr"].split()) for rule in rules() if "alert" in rule}
    expected = {
        "SentimentInputDrift": [f"sentiment_reference_known_token_share) - {drift.KNOWN_SHARE_DROP:.2f})",
                                f">= {drift.MIN_TEXTS}"],
        "SentimentLabelMixShift": [f"> {drift.LABEL_SHARE_SHIFT:.2f}", f">= {drift.MIN_TEXTS}"],
        "SentimentExpectedAccuracyLow": [f"sentiment_reference_confidence_mean) - {drift.CONFIDENCE_DROP:.2f})",
                                         f">= {drift.MIN_TEXTS}"],
        "SentimentFeedbackAccuracyLow": [f"sentiment_reference_accuracy) - {drift.ACCURACY_DROP:.2f})",
                                         f">= {drift.MIN_FEEDBACK}"],
        "SentimentInputUnseen": [f") > {drift.UNSEEN_SHARE_RISE:.2f}", f">= {drift.MIN_TEXTS}"],
        "SentimentInputMissing": [f")) > {drift.MISSING_SHARE_SHIFT:.2f}", f">= {drift.MIN_TEXTS}"],
        "SentimentPredictionShift": [f"({drift.PREDICTION_SHIFT_OF_MAE} * max by (model) (sentiment_reference_mae))",
                                     f">= {drift.MIN_TEXTS}"],
        "SentimentFeedbackErrorHigh": [f"({drift.FEEDBACK_MAE_RATIO} * max by (model) (sentiment_reference_mae))",
                                       f">= {drift.MIN_FEEDBACK}"],
    }
    for alert, parts in expected.items():
        for part in parts:
            assert part in expressions[alert], (alert, part, expressions[alert])


def test_the_dashboard_names_only_exported_metrics_and_recorded_rules(client):
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "sentiment.json").read_text())
    client.get("/?query=good")  # so that the request metrics have a series
    rating = client.get("/ratings?genre=Drama&budget=1000000&director=Nobody+Yet").get_json()  # and the ratings'
    client.post("/feedback", json={"id": rating["id"], "value": 6.0})
    exported = {name.removesuffix("_bucket") for name, _ in samples(client.get("/metrics").get_data(as_text=True))}
    exported |= {name + "_bucket" for name in exported}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for panel in dashboard["panels"]:
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert set(re.findall(r"\bsentiment_[a-z_]+\b", target["expr"])) <= exported, target["expr"]
            assert set(re.findall(r"\bsentiment:[a-z_0-9:]+", target["expr"])) <= recorded, target["expr"]
