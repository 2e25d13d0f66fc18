"""notebooks/monitoring.ipynb in a real Jupyter kernel, on prediction logs that a live gunicorn filled over HTTP.

The test keeps its own record of every answer and every label it sent back, so the counts, the accuracy
and the confusion matrices the notebook shows are known exactly; then it reads them off the notebook's
tables as a user would.
"""
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

import nbformat
import pytest
import requests
from nbclient import NotebookClient
from prometheus_client.parser import text_string_to_metric_families

from serving import prediction_log
from serving.config import MODEL_ROUTES
from support import FILLER, ROOT, TEXT_ROUTES, WORDS, Server
from util import BINARY_LABELS, FINE_GRAINED_LABELS

LABELS = {"binary": BINARY_LABELS, "fine-grained": FINE_GRAINED_LABELS}  # what each manifest must hold

NOTEBOOK = ROOT / "notebooks" / "monitoring.ipynb"
# Surely Positive with the highest confidence there is, and sent back as Negative: the top wrong answer.
PLANTED = "brilliant masterpiece wonderful superb dazzling"
SURE = 0.99  # answers at least this confident are rare among the wrong ones the test plants


def review_texts(rng, count):
    """`count` different texts from the tiny data set's words: one to three rated words and two fillers."""
    vocabulary = [word for words in WORDS.values() for word in words]
    texts = []
    while len(texts) < count:
        text = " ".join(rng.sample(vocabulary, rng.randint(1, 3)) + rng.sample(FILLER, 2))
        if text not in texts:
            texts.append(text)
    return texts


def score(http, url, texts):
    """Answers for `texts` from both models, by GET one at a time and by POST in batches: [(model, text, answer)]."""
    scored = []
    for chunk, start in enumerate(range(0, len(texts), 10)):
        model, batch = list(MODEL_ROUTES)[chunk % 2], texts[start:start + 10]
        route = url + MODEL_ROUTES[model]
        if chunk // 2 % 2:
            response = http.post(route, json={"queries": batch}, timeout=10)
            assert response.status_code == 200, response.text
            answers = response.json()["predictions"]
        else:
            answers = []
            for text in batch:
                response = http.get(route, params={"query": text}, timeout=10)
                assert response.status_code == 200, response.text
                answers.append(response.json())
        scored += [(model, text, answer) for text, answer in zip(batch, answers)]
    return scored


def plan_labels(scored):
    """The label to send back for two answers in three: the answer's own, or a wrong one for half the unsure
    answers and at most five sure ones. Returns {id: (model, predicted, label)}."""
    labels, sure_wrong = {}, 0
    for i, (model, _, answer) in enumerate(scored):
        if i % 3 == 2:
            continue
        predicted, sure = answer["prediction"], answer["confidence"] >= SURE
        wrong = i % 2 == 0 and (not sure or sure_wrong < 5)
        sure_wrong += wrong and sure
        label = [other for other in LABELS[model] if other != predicted][i % (len(LABELS[model]) - 1)] \
            if wrong else predicted
        labels[answer["id"]] = (model, predicted, label)
    return labels


def send_labels(http, url, labels):
    """POST /feedback: the planned labels in batches, and before them a wrong label for one answer whose
    planned label is right (the log keeps the latest); returns that answer's model."""
    items = [{"id": answer_id, "label": label} for answer_id, (_, _, label) in labels.items()]
    corrected = next(item for item, (model, predicted, label) in zip(items, labels.values()) if label == predicted)
    model = labels[corrected["id"]][0]
    first = {"id": corrected["id"], "label": next(x for x in LABELS[model] if x != corrected["label"])}
    batches = [[first], *(items[i:i + 30] for i in range(0, len(items), 30))]
    for batch in batches:
        response = http.post(url + "/feedback", json={"feedback": batch}, timeout=10)
        assert response.status_code == 202, response.text
    return model


@dataclass
class Traffic:
    """What the test sent and got: the answers, the labels the log should keep, and the service's counter."""

    scored: list  # [(model, text, answer)], the planted answer last
    labels: dict  # {answer id: (model, predicted, label)}, the latest label per answer
    planted: dict  # the answer to PLANTED, labelled Negative
    relabelled: str  # the model of the answer that was labelled twice
    feedback_total: list  # sentiment_feedback_total's samples from GET /metrics, before the stop

    def accuracy(self):
        """{model: (labels, right)}."""
        counts = Counter(model for model, _, _ in self.labels.values())
        right = Counter(model for model, predicted, label in self.labels.values() if predicted == label)
        return {model: (counts[model], right[model]) for model in counts}


def fill(server, *, count, seed):
    """Send `count` texts, labels for some, and the planted confidently wrong answer to `server`, then stop it
    (which flushes every worker's writer)."""
    try:
        with requests.Session() as http:
            scored = score(http, server.url, review_texts(random.Random(seed), count))
            labels = plan_labels(scored)
            relabelled = send_labels(http, server.url, labels)
            planted = http.get(server.url + "/", params={"query": PLANTED}, timeout=10).json()
            assert planted["prediction"] == "Positive", planted
            response = http.post(server.url + "/feedback", json={"id": planted["id"], "label": "Negative"},
                                 timeout=10)
            assert response.status_code == 202, response.text
            metrics = http.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    scored.append(("binary", PLANTED, planted))
    labels[planted["id"]] = ("binary", "Positive", "Negative")
    [family] = [f for f in text_string_to_metric_families(metrics) if f.name == "sentiment_feedback"]
    return Traffic(scored, labels, planted, relabelled, [s for s in family.samples if s.name.endswith("_total")])


def execute(log_url, folder, *, api_url=None):
    """Run the notebook against `log_url` in a kernel working in `folder`: {cell id: outputs}."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PREDICTION_LOG", log_url)
        monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel runs in `folder`, away from the checkout
        monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        if api_url:
            monkeypatch.setenv("SENTIMENT_API_URL", api_url)
        else:
            monkeypatch.delenv("SENTIMENT_API_URL", raising=False)
        # Any failing cell raises here; the notebook in the checkout is only read, never written.
        NotebookClient(notebook, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    return {cell.id: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}


class Tables(HTMLParser):
    """The cells of each <table> in an HTML output, as text: [{"head": [[...], ...], "body": [[...], ...]}]."""

    def __init__(self, html):
        super().__init__()
        self.tables, self.section, self.row, self.cell = [], "body", None, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"head": [], "body": []})
        elif tag in ("thead", "tbody"):
            self.section = tag[1:]
        elif tag == "tr":
            self.row = []
            self.tables[-1][self.section].append(self.row)
        elif tag in ("th", "td"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.row.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(outputs):
    """Every table a cell showed (DataFrames displayed or returned), in order."""
    return [table for output in outputs if "text/html" in output.get("data", {})
            for table in Tables(output["data"]["text/html"]).tables]


def printed(outputs):
    """What a cell printed."""
    return "".join(output.get("text", "") for output in outputs if output["output_type"] == "stream")


def figures(outputs):
    """The PNG figures a cell drew."""
    return [output for output in outputs if "image/png" in output.get("data", {})]


def by_column(table):
    """A table with a column index and a named row index as {row label: {column: cell}}."""
    columns = table["head"][0][1:]
    return {row[0]: dict(zip(columns, row[1:])) for row in table["body"]}


@pytest.fixture(scope="module")
def with_texts(model_dir, tmp_path_factory):
    """A log with texts, filled over HTTP: (Traffic, the notebook's outputs)."""
    folder = tmp_path_factory.mktemp("monitoring-texts")
    log_url = f"sqlite:///{folder}/predictions.sqlite3"
    env = {"PREDICTION_LOG": log_url, "PREDICTION_LOG_TEXTS": "true", "WEB_CONCURRENCY": "2"}
    server = Server(model_dir, env=env).wait_healthy()
    # A second server on the same log (started once the first has made its tables), for the notebook's
    # GET /models: it reads the labels the first one took.
    reader = Server(model_dir, env={"PREDICTION_LOG": log_url})
    try:
        traffic = fill(server, count=300, seed=1)
        assert len(prediction_log.read_predictions(log_url)) == len(traffic.scored), "the server lost log rows"
        outputs = execute(log_url, folder, api_url=reader.wait_healthy().url)
    finally:
        reader.stop()
    return traffic, outputs


@pytest.fixture(scope="module")
def without_texts(model_dir, tmp_path_factory):
    """The notebook's outputs on a log without texts (PREDICTION_LOG_TEXTS unset), filled over HTTP."""
    folder = tmp_path_factory.mktemp("monitoring-no-texts")
    log_url = f"sqlite:///{folder}/predictions.sqlite3"
    fill(Server(model_dir, env={"PREDICTION_LOG": log_url}).wait_healthy(), count=40, seed=2)
    return execute(log_url, folder)


def test_the_predictions_per_hour_add_up_to_every_answer_given(with_texts):
    traffic, outputs = with_texts
    [per_hour] = tables(outputs["per-hour"])
    assert per_hour["head"][1][0] == "time"
    shown = Counter()
    for hour in by_column(per_hour).values():
        shown.update({model: int(count) for model, count in hour.items()})
    assert shown == Counter(model for model, _, _ in traffic.scored)
    assert sum(shown.values()) == len(traffic.scored) == 301
    assert figures(outputs["per-hour"]), "no chart of the predictions per hour"


def test_the_label_mix_counts_what_each_model_answered(with_texts):
    traffic, outputs = with_texts
    [mix] = tables(outputs["label-mix"])
    shown = {(model, label): int(count) for model, row in by_column(mix).items() for label, count in row.items()}
    expected = Counter((model, answer["prediction"]) for model, _, answer in traffic.scored)
    assert {key: count for key, count in shown.items() if count} == expected
    assert figures(outputs["label-mix"]), "no chart of the label mix"


def test_the_accuracy_shown_is_the_share_of_labels_that_agree_with_the_answer(with_texts):
    traffic, outputs = with_texts
    overall, over_time = tables(outputs["accuracy"])
    expected = traffic.accuracy()
    assert all(0 < right < count for count, right in expected.values()), "each model needs right and wrong answers"
    shown = by_column(overall)
    assert set(shown) == set(expected) == set(TEXT_ROUTES)
    for model, (count, right) in expected.items():
        assert (int(shown[model]["labels"]), int(shown[model]["right"])) == (count, right)
        assert float(shown[model]["accuracy"]) == pytest.approx(right / count, abs=1e-6)
    # Per hour: the counts add up, and the hours' accuracies weighted by their counts give the same figure.
    columns = over_time["head"][0]
    rows = [dict(zip(columns, row)) for row in over_time["body"]]
    for model, (count, right) in expected.items():
        hours = [(int(row["labels"]), float(row["accuracy"])) for row in rows if row["model"] == model]
        assert sum(n for n, _ in hours) == count
        assert sum(n * accuracy for n, accuracy in hours) == pytest.approx(right, abs=1e-4)
    assert figures(outputs["accuracy"]), "no chart of the accuracy over time"


def test_the_confusion_matrices_count_each_predicted_and_actual_pair(with_texts):
    traffic, outputs = with_texts
    shown = {}
    for table in tables(outputs["confusion"]):
        model = table["head"][1][0].removesuffix(": predicted")
        assert table["head"][0] == ["actual", *LABELS[model]]
        assert [row[0] for row in table["body"]] == LABELS[model]
        shown[model] = {(row[0], actual): int(n) for row in table["body"] for actual, n in zip(LABELS[model], row[1:])}
    expected = Counter(traffic.labels.values())
    assert set(shown) == set(TEXT_ROUTES)
    for model, matrix in shown.items():
        assert matrix == {(predicted, actual): expected[model, predicted, actual]
                          for predicted in LABELS[model] for actual in LABELS[model]}
    assert figures(outputs["confusion-plot"]), "no chart of the confusion matrices"


def test_the_confidently_wrong_answers_lead_with_the_planted_text(with_texts):
    traffic, outputs = with_texts
    labels = traffic.labels
    wrong = sorted(((answer["confidence"], text) for _, text, answer in traffic.scored
                    if answer["id"] in labels and labels[answer["id"]][2] != answer["prediction"]), reverse=True)
    assert sum(c >= traffic.planted["confidence"] for c, _ in wrong) <= 20, "the planted text might not show"
    assert len(wrong) > 20 and wrong[-1][0] < wrong[19][0], "the least confident wrong answer must fall off the top 20"
    [table] = tables(outputs["wrong"])
    columns = table["head"][0]
    assert columns[1:] == ["time", "model", "predicted", "actual", "confidence", "text"]
    rows = [dict(zip(columns, row)) for row in table["body"]]
    assert len(rows) == 20
    assert {"model": "binary", "predicted": "Positive", "actual": "Negative", "text": PLANTED}.items() <= \
        next(row for row in rows if row["text"] == PLANTED).items()
    confidences = [float(row["confidence"]) for row in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert wrong[-1][1] not in {row["text"] for row in rows}
    assert f"{len(wrong)} of {len(labels)} labels" in printed(outputs["wrong"])
    assert "PREDICTION_LOG_TEXTS" not in printed(outputs["wrong"])


def test_the_notebook_shows_what_get_models_says_of_the_same_feedback(with_texts):
    traffic, outputs = with_texts
    served, versions = tables(outputs["versions"])
    rows = {row[1]: dict(zip(served["head"][0][2:], row[2:])) for row in served["body"]}
    for model, (count, right) in traffic.accuracy().items():
        assert int(rows[model]["count"]) == count
        assert float(rows[model]["accuracy"]) == pytest.approx(round(right / count, 4))
    assert {row[0] for row in versions["body"]} == set(TEXT_ROUTES)


def test_the_promql_reads_the_counter_the_service_exposes_and_counts_every_label_sent(with_texts):
    traffic, _ = with_texts
    [cell] = [cell for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.id == "promql"]
    query = re.search(r"```promql\n(.*?)```", cell.source, re.S).group(1)
    assert set(re.findall(r"\bsentiment_\w+", query)) == {"sentiment_feedback_total"}
    assert all(set(sample.labels) == {"model", "predicted", "actual"} for sample in traffic.feedback_total)
    counted = Counter()
    for sample in traffic.feedback_total:
        counted[sample.labels["model"], sample.labels["predicted"] == sample.labels["actual"]] += sample.value
    # The same right answers as the log; one label more for the answer labelled twice (the log keeps the last).
    for model, (count, right) in traffic.accuracy().items():
        assert (counted[model, True], counted[model, False]) == (right, count - right + (model == traffic.relabelled))


def test_without_texts_in_the_log_the_notebook_says_to_set_prediction_log_texts(without_texts):
    outputs = without_texts
    assert "PREDICTION_LOG_TEXTS=true" in printed(outputs["wrong"])
    [table] = tables(outputs["wrong"])
    assert table["head"][0][-1] == "text_sha256"
    rows = [dict(zip(table["head"][0], row)) for row in table["body"]]
    assert hashlib.sha256(PLANTED.encode()).hexdigest() in {row["text_sha256"] for row in rows}
    assert PLANTED not in json.dumps(outputs), "a text shown that the log should not have kept"
    assert "Set SENTIMENT_API_URL" in printed(outputs["versions"])


def test_the_monitoring_notebook_is_committed_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
