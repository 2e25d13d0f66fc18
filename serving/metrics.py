"""Prometheus metrics: what the service counts (`Metrics`), and where prometheus-client keeps the values.

`use_values_in` chooses where the values live, in memory or in files shared by gunicorn's workers;
`web.factory.create_app` calls it with the app's settings just before it builds the app's `Metrics`.
"""
import logging
import os
import threading
import time
from collections import Counter
from datetime import datetime
from functools import partial

import prometheus_client
from prometheus_client import multiprocess, values

from serving import drift
from serving.signal_sums import PREDICTION, SignalSums, ValueSums

log = logging.getLogger("sentiment")
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Scoring takes well under a millisecond, so the buckets start far below prometheus-client's 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def use_values_in(multiprocess_dir):
    """Keep metric values in files in `multiprocess_dir` (gunicorn's workers), or in memory when it is None.

    Process-wide, for every metric made afterwards, whichever app makes it: prometheus-client looks up
    `values.ValueClass` whenever a metric or labelled series is made, and its file-backed values read
    PROMETHEUS_MULTIPROC_DIR to know where to write. prometheus-client makes this choice from the
    environment when it is imported; the app's settings make it here instead, so a developer's
    PROMETHEUS_MULTIPROC_DIR cannot reach a test's app.
    """
    if multiprocess_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir  # where MultiProcessValue writes
        values.ValueClass = values.MultiProcessValue()
    else:
        values.ValueClass = values.MutexValue


class Metrics:
    """The service's Prometheus metrics, in one registry per app or in files shared by gunicorn's workers.

    Under gunicorn, the master's start (`lifecycle.master_starting`) sets PROMETHEUS_MULTIPROC_DIR to
    a shared folder, which the settings read; `create_app` then calls `use_values_in` with it before
    building this, so every worker writes its values to files there and `/metrics` sums them: the counts
    are right whichever worker answers. Without it (`python app.py`, Flask's test client) each app
    keeps its own in-memory registry. `multiprocess_dir` must be the folder given to `use_values_in`.
    """

    def __init__(self, *, multiprocess_dir=None):
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode values live in files, so the metrics are registered nowhere.
        self.registry = None if multiprocess_dir else prometheus_client.CollectorRegistry()
        common = {"registry": self.registry, "namespace": "sentiment"}
        self.requests = prometheus_client.Counter(
            "http_requests", "HTTP requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"], **common)
        self.latency = prometheus_client.Histogram(
            "http_request_duration_seconds", "Time from request to response inside the app, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, **common)
        self.predictions = prometheus_client.Counter(
            "predictions", "Texts scored, by model and predicted label.", ["model", "label"], **common)
        # Drift signals (see drift.py): what every scored text brings, summed over workers.
        self.texts_scored = prometheus_client.Counter(
            "texts_scored", "Texts scored, by model.", ["model"], **common)
        self.tokens = prometheus_client.Counter(
            "tokens", "Tokens of the texts scored, as the model's analyzer splits them, by model.", ["model"], **common)
        self.known_tokens = prometheus_client.Counter(
            "known_tokens", "Tokens of the texts scored that the model's vocabulary knows, by model.", ["model"],
            **common)
        self.texts_without_known_terms = prometheus_client.Counter(
            "texts_without_known_terms", "Texts scored with no term the model knows (only its priors spoke), "
            "by model.", ["model"], **common)
        self.confidence = prometheus_client.Histogram(
            "confidence", "Confidence of each answer (the top probability), by model.", ["model"],
            buckets=drift.CONFIDENCE_BUCKETS, **common)
        self.text_length = prometheus_client.Histogram(
            "text_length_chars", "Length of each text scored, in characters, by model.", ["model"],
            buckets=drift.LENGTH_BUCKETS, **common)
        # A regressor's drift signals: rows scored, per input the rows missing it and those with a value the
        # model never saw, and the predictions (their mean is sum / count).
        self.rows_scored = prometheus_client.Counter(
            "rows_scored", "Inputs scored by a model of named inputs (a regressor), by model.", ["model"], **common)
        self.input_missing = prometheus_client.Counter(
            "input_missing", "Rows scored without a value for an optional input, by model and input.",
            ["model", "input"], **common)
        self.input_unseen = prometheus_client.Counter(
            "input_unseen", "Rows scored with a value the model never saw (a name not in its training data, a "
            "number outside its training range), by model and input.", ["model", "input"], **common)
        self.predicted_value = prometheus_client.Summary(
            "predicted_value", "A regressor's answers (the rating predicted), by model: sum and count.", ["model"],
            **common)
        # The same signals on the build's held-out side (metrics.json's reference), for rules to compare with.
        reference = {"registry": self.registry, "namespace": "sentiment", "subsystem": "reference",
                     "multiprocess_mode": "livemax"}
        self.reference = {
            "known_token_share": prometheus_client.Gauge(
                "known_token_share", "Share of the held-out texts' tokens the model knows, at build time.",
                ["model"], **reference),
            "no_known_term_share": prometheus_client.Gauge(
                "no_known_term_share", "Share of held-out texts with no known term, at build time.",
                ["model"], **reference),
            "confidence_mean": prometheus_client.Gauge(
                "confidence_mean", "Mean confidence on the held-out texts, at build time.", ["model"], **reference),
            "accuracy": prometheus_client.Gauge(
                "accuracy", "Accuracy on the held-out texts, at build time.", ["model"], **reference),
            "label_shares": prometheus_client.Gauge(
                "label_share", "Share of held-out texts given each label, at build time.", ["model", "label"],
                **reference),
            "confidence_buckets": prometheus_client.Gauge(
                "confidence_share", "Share of held-out texts with confidence at most `le`, at build time.",
                ["model", "le"], **reference),
            "text_length_quantiles": prometheus_client.Gauge(
                "text_length_chars", "Quantiles of the held-out texts' length in characters, at build time.",
                ["model", "quantile"], **reference),
            "mae": prometheus_client.Gauge(
                "mae", "A regressor's mean absolute error on the held-out rows, at build time.", ["model"],
                **reference),
            "predicted_value_mean": prometheus_client.Gauge(
                "predicted_value_mean", "A regressor's mean prediction on the held-out rows, at build time.",
                ["model"], **reference),
            "input_missing_shares": prometheus_client.Gauge(
                "input_missing_share", "Share of held-out rows without a value for each input, at build time.",
                ["model", "input"], **reference),
            "input_unseen_shares": prometheus_client.Gauge(
                "input_unseen_share", "Share of held-out rows with a value of each input the model fitted on the "
                "training side never saw, at build time.", ["model", "input"], **reference),
        }
        # Every live worker serves the same models, so their values agree: "livemax" shows one series
        # per model, and drops a worker's series when it exits (e.g. replaced after a rebuild + HUP).
        self.model_info = prometheus_client.Gauge(
            "model_info", "A served model and its version; the value is its creation time in Unix seconds.",
            ["model", "version", "created_at"], multiprocess_mode="livemax", **common)
        # Releases: versions a running server loaded as their links moved, and its shadow's agreement.
        self.model_loads = prometheus_client.Counter(
            "model_loads", "Versions loaded by a running server after a release moved a link, by model, role "
            "(live or shadow) and outcome (loaded; refused: it failed verification and the old one kept serving).",
            ["model", "role", "outcome"], **common)
        self.shadow = prometheus_client.Counter(
            "shadow", "Texts scored by the shadow version as well as the live one, by model and whether the "
            "shadow's label agreed with the answer's (true or false).", ["model", "agree"], **common)
        # The learning loop: labels sent back (accuracy and the confusion matrix are ratios of these), and
        # prediction-log rows that were never written, by why.
        self.feedback = prometheus_client.Counter(
            "feedback", "Labels sent back to POST /feedback, by model, predicted and actual label.",
            ["model", "predicted", "actual"], **common)
        self.feedback_error = prometheus_client.Summary(
            "feedback_absolute_error", "A regressor's absolute error on the true values sent back to POST "
            "/feedback, by model: sum / count is its live mean absolute error.", ["model"], **common)
        self.log_dropped = prometheus_client.Counter(
            "prediction_log_dropped", "Prediction-log rows never written: queue_full (the queue was full), "
            "database_error (the database refused or was unreachable), writer_lost (the writer process ended "
            "before writing them), exit (not written when the worker stopped).", ["reason"], **common)
        # Zero from the start, so rate() sees the first.
        for reason in ("queue_full", "database_error", "writer_lost", "exit"):
            self.log_dropped.labels(reason)
        # Labelled series, once looked up: labels() takes a lock, and this is done for every request.
        self.series = {}  # (endpoint, method, status) -> its request counter and latency histogram
        self.prediction_series = {}  # (model, label) -> its prediction counter
        self.scored_series = {}  # model -> its drift-signal series
        self.shadow_series = {}  # model -> its (agree, disagree) counters
        self.signals = {}  # model -> SignalSums not yet written, under signals_lock
        self.signals_lock = threading.Lock()  # made before a fork, used after: never held in the master
        self.signals_due = 0.0  # when the sums are next written (monotonic)
        # The thread writing what a process summed once its requests stop (`start`): made in the worker.
        self.stopping = threading.Event()  # made before a fork, used after, like the lock above
        self.writer = None

    def describe_models(self, models):
        """Set the model-info gauge, and the reference gauges of its build, for each served model."""
        for name, served in models.items():
            self.describe_model(name, served)

    def describe_model(self, name, served, *, replaces=None):
        """Set the model-info and reference gauges of one served model; the version it `replaces`, if any,
        reads 0 (under gunicorn a series cannot be removed: 0 once no worker serves that version)."""
        if replaces is not None:
            self.model_info.labels(name, replaces.version, replaces.manifest["created_at"]).set(0)
        created = served.manifest["created_at"]
        self.model_info.labels(name, served.version, created).set(unix_time(created))
        self.describe_reference(name, served.metrics.get("reference") or {})
        described = served.describe()
        inputs = described.get("inputs") if described["kind"] != "text-classifier" else None
        if inputs:  # named inputs' series exist from the start, at 0: a rule sees an input never missing as 0
            self.rows_scored.labels(name)
            if served.labels is None:
                self.predicted_value.labels(name)
            for spec in inputs:
                self.input_missing.labels(name, spec["name"])
                self.input_unseen.labels(name, spec["name"])

    def describe_reference(self, name, reference):
        """The reference gauges of one model (none for a model built before its build recorded one)."""
        for key, gauge in self.reference.items():
            value = reference.get(key)
            if isinstance(value, dict):
                for label, share in value.items():
                    gauge.labels(name, label).set(share)
            elif value is not None:
                gauge.labels(name).set(value)

    def count_scored(self, model_name, scored, texts):
        """Count one request's scored texts (a `model.Scored`): labels, and the drift signals.

        The drift signals are summed in this process and written to the metrics at most every
        SIGNALS_EVERY seconds (and before /metrics answers, by the writer thread once requests stop, and
        when the worker stops): in gunicorn's shared files each write costs a lock and a file write, and a
        GET would make eight of them.
        """
        numbers = scored.tokens is None  # a model of named inputs': the signals of its inputs
        if scored.answers and isinstance(scored.answers[0]["prediction"], str):  # labels: counted by label
            self.count_predictions(model_name, scored.answers)
        with self.signals_lock:
            sums = self.signals.get(model_name)
            if sums is None:
                sums = self.signals[model_name] = ValueSums() if numbers else SignalSums()
            sums.add(scored, texts)
            due = time.monotonic() >= self.signals_due
        if due:
            self.write_signals()

    def write_signals(self):
        """Write the drift signals summed since the last write into the metrics."""
        with self.signals_lock:
            taken, self.signals = self.signals, {}
            self.signals_due = time.monotonic() + SIGNALS_EVERY
        for model_name, sums in taken.items():
            if isinstance(sums, ValueSums):
                sums.write_to(self.rows_scored.labels(model_name),
                              partial(self.input_missing.labels, model_name),
                              partial(self.input_unseen.labels, model_name),
                              partial(self.predicted_value.labels, model_name))
                self.write_shadow(model_name, sums)
                continue
            series = self.scored_series.get(model_name)
            if series is None:
                series = self.scored_series[model_name] = tuple(
                    metric.labels(model_name) for metric in (self.texts_scored, self.tokens, self.known_tokens,
                                                             self.texts_without_known_terms, self.confidence,
                                                             self.text_length))
            sums.write_to(*series)
            self.write_shadow(model_name, sums)

    # A per-process part of the app (lifecycle.Service): a thread writing the sums of an idle process; at
    # exit, write what is summed.
    def start(self):
        """Start the thread that writes the sums no request has written, in this process (after the fork)."""
        self.stopping.clear()
        self.writer = threading.Thread(target=self.write_when_idle, name="metrics writer", daemon=True)
        self.writer.start()

    def stop(self, timeout):
        """Stop the writer thread, and write the drift signals summed since the last write."""
        self.stopping.set()
        if self.writer is not None:
            self.writer.join(timeout)
        self.write_signals()

    def write_when_idle(self):
        """Every WRITE_IDLE_EVERY seconds until stopped, write the sums pending since the last write.

        Requests write their sums only when they come (`count_scored`): without this, a worker that goes
        idle would keep its last ones until its next request, and /metrics would show them late, or never.
        """
        while not self.stopping.wait(WRITE_IDLE_EVERY):
            # Read without the lock, as a request would not wait for it: a stale look delays a write one round.
            if self.signals and time.monotonic() >= self.signals_due:
                try:
                    self.write_signals()
                except Exception:  # a full disk, say: the next round tries again, and requests still write
                    log.exception("writing the summed drift signals failed; trying again in %.1f s",
                                  WRITE_IDLE_EVERY)

    def count_predictions(self, model_name, answers):
        """Count scored texts by label: one increment per label, not per text."""
        # Counter over a map runs its loop in C: a POST of 1,000 answers tallied in a Python loop took ~0.2 ms.
        # A GET's one answer needs no Counter.
        tallies = ((answers[0]["prediction"], 1),) if len(answers) == 1 else Counter(map(PREDICTION, answers)).items()
        for label, count in tallies:
            key = (model_name, label)
            series = self.prediction_series.get(key)
            if series is None:
                series = self.prediction_series[key] = self.predictions.labels(model_name, label)
            series.inc(count)

    def count_shadow(self, model_name, answers, shadow_labels, agrees=None, *, numbers=False):
        """Count the inputs whose shadow prediction agreed with the answer's (`agrees(answered, shadow's)`,
        equality by default), and those whose did not: summed in this process and written with the drift
        signals (`write_signals`), for the same reason. `numbers`: the model is a regressor."""
        agrees = agrees or (lambda answered, shadowed: answered == shadowed)
        agree = sum(1 for answer, label in zip(answers, shadow_labels) if agrees(answer["prediction"], label))
        with self.signals_lock:
            sums = self.signals.get(model_name)
            if sums is None:
                sums = self.signals[model_name] = ValueSums() if numbers else SignalSums()
            sums.shadow_agreed += agree
            sums.shadow_disagreed += len(answers) - agree

    def write_shadow(self, model_name, sums):
        """Add one model's summed shadow counts to `sentiment_shadow_total`."""
        if not (sums.shadow_agreed or sums.shadow_disagreed):
            return
        series = self.shadow_series.get(model_name)
        if series is None:
            series = self.shadow_series[model_name] = (self.shadow.labels(model_name, "true"),
                                                       self.shadow.labels(model_name, "false"))
        for counter, count in zip(series, (sums.shadow_agreed, sums.shadow_disagreed)):
            if count:
                counter.inc(count)

    def count_model_load(self, model_name, role, outcome):
        """Count one version a running server loaded (or refused) after a release."""
        self.model_loads.labels(model_name, role, outcome).inc()

    def count_feedback(self, model_name, predicted, actual, error=None, *, numeric=False):
        """Count one label sent back for an answer of `model_name`; for a regressor (`numeric`), its
        absolute `error` instead (its numbers would make a series each)."""
        if numeric:
            self.feedback_error.labels(model_name).observe(error)
        else:
            self.feedback.labels(model_name, predicted, actual).inc()

    def count_dropped(self, reason, count):
        """Count prediction-log rows that will never be written (called from the prediction log's feeder thread too)."""
        self.log_dropped.labels(reason).inc(count)

    def observe(self, endpoint, method, status, seconds):
        """Count one answered request and its latency."""
        method = method if method in KNOWN_METHODS else "other"  # callers cannot mint new series
        key = (endpoint, method, status)
        series = self.series.get(key)
        if series is None:  # first time: look the labelled series up once (labels() takes a lock)
            series = self.series[key] = (self.requests.labels(endpoint, method, str(status)),
                                         self.latency.labels(endpoint))
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self):
        """The text `/metrics` answers: this app's registry, or the sum over every worker's files."""
        self.write_signals()  # this process's own, at least, are up to date
        registry = self.registry
        if registry is None:
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return prometheus_client.generate_latest(registry)


SIGNALS_EVERY = 0.5  # seconds between writes of a process's drift-signal sums
# Seconds between the writer thread's looks at an idle process's sums: they reach /metrics within about a
# second of the last request, well inside a Prometheus scrape interval (15 s by default), while one wake-up a
# second per worker costs nothing measurable. Shorter would wake every worker more often for no scrape's sake.
WRITE_IDLE_EVERY = 1.0


def unix_time(iso_timestamp):
    """Seconds since the epoch of an ISO 8601 timestamp such as a manifest's created_at."""
    return datetime.fromisoformat(iso_timestamp).timestamp()
