"""A process's drift signals, summed over its requests and written to the metrics every half second
(`serving.metrics.Metrics.write_signals`): one write to gunicorn's shared files per sum rather than
eight per GET.

`SignalSums` holds a text model's (texts, tokens, known tokens, texts without a known term, the
confidence and length histograms); `ValueSums` a regressor's (rows, each input's missing and unseen
values, the predictions' sum). Both count the shadow's agreement.
"""
import bisect
from collections import Counter
from functools import partial, reduce
from operator import add, itemgetter

from serving import drift


class SignalSums:
    """One model's drift signals summed over requests: texts, tokens, known tokens, texts with no known
    term, the confidence and length histograms' bucket counts and sums, and the shadow's agreement."""

    __slots__ = ("texts", "tokens", "known", "without", "confidence", "confidence_sum", "length", "length_sum",
                 "shadow_agreed", "shadow_disagreed")

    def __init__(self):
        self.texts = self.tokens = self.known = self.without = 0
        self.shadow_agreed = self.shadow_disagreed = 0  # texts whose shadow label was the answer's, and was not
        # One count per bucket, the last for +Inf.
        self.confidence = [0] * (len(drift.CONFIDENCE_BUCKETS) + 1)
        self.length = [0] * (len(drift.LENGTH_BUCKETS) + 1)
        self.confidence_sum = self.length_sum = 0.0

    def add(self, scored, texts):
        """Add one request's texts and answers."""
        if len(texts) == 1:  # a GET: the same sums without the batch path's Counters and lists
            self.add_one(scored.answers[0]["confidence"], len(texts[0]), scored.tokens[0], scored.known[0])
            return
        self.texts += len(texts)
        self.tokens += sum(scored.tokens)
        self.known += sum(scored.known)
        self.without += scored.known.count(0)
        # Where a value falls: bisect_left over the upper bounds, as `observe` (value <= bound). Mapped and
        # counted in C rather than in a Python loop per answer (a POST of 1,000 spent ~2 ms here). The sums
        # add one value at a time to the running sum, in order, as that loop did (`reduce`, not `sum`, which
        # compensates its rounding from Python 3.12 on).
        confidences = list(map(CONFIDENCE, scored.answers))
        lengths = list(map(len, texts))
        for bucket, count in Counter(map(CONFIDENCE_BUCKET, confidences)).items():
            self.confidence[bucket] += count
        for bucket, count in Counter(map(LENGTH_BUCKET, lengths)).items():
            self.length[bucket] += count
        self.confidence_sum = reduce(add, confidences, self.confidence_sum)
        self.length_sum = reduce(add, lengths, self.length_sum)

    def add_one(self, confidence, length, tokens, known):
        """Add one text: its answer's confidence, its length, its tokens and known tokens."""
        self.texts += 1
        self.tokens += tokens
        self.known += known
        self.without += known == 0
        self.confidence[CONFIDENCE_BUCKET(confidence)] += 1
        self.length[LENGTH_BUCKET(length)] += 1
        self.confidence_sum += confidence
        self.length_sum += length

    def write_to(self, texts, tokens, known, without, confidence, length):
        """Add the sums to the labelled series of one model."""
        for series, value in ((texts, self.texts), (tokens, self.tokens), (known, self.known),
                              (without, self.without)):
            if value:
                series.inc(value)
        add_to_histogram(confidence, self.confidence, self.confidence_sum)
        add_to_histogram(length, self.length, self.length_sum)


PREDICTION, CONFIDENCE = itemgetter("prediction"), itemgetter("confidence")
CONFIDENCE_BUCKET = partial(bisect.bisect_left, drift.CONFIDENCE_BUCKETS)
LENGTH_BUCKET = partial(bisect.bisect_left, drift.LENGTH_BUCKETS)


def add_to_histogram(histogram, counts, total):
    """Add per-bucket counts (the last is +Inf's) and their sum to a labelled histogram, as that many
    `observe` calls would, through the histogram's own values (`_buckets`, `_sum`: stable since
    prometheus-client 0.4; a test checks the result against `observe`, value by value)."""
    for bucket, count in zip(histogram._buckets, counts):
        if count:
            bucket.inc(count)
    if total:
        histogram._sum.inc(total)


class ValueSums:
    """The drift signals of a model of named inputs summed over requests: rows scored, per input the rows
    where it was missing and where its value was one the model never saw (an unknown name, a number outside
    the training range), a regressor's sum of the predictions (a classifier's labels are counted by label),
    and the shadow's agreement."""

    __slots__ = ("rows", "labelled", "missing", "unseen", "value_sum", "shadow_agreed", "shadow_disagreed")

    def __init__(self):
        self.rows = self.labelled = 0
        self.missing, self.unseen = Counter(), Counter()
        self.value_sum = 0.0
        self.shadow_agreed = self.shadow_disagreed = 0

    def add(self, scored, inputs):
        """Add one request's inputs (dicts, None for a missing value) and answers (each with `unseen`)."""
        self.rows += len(inputs)
        for row, answer, values in zip(inputs, scored.answers, scored.probabilities):
            for name, value in row.items():
                if value is None:
                    self.missing[name] += 1
            self.unseen.update(answer["unseen"])
            if len(values) == 1:  # a number; a classifier's probabilities are counted by label instead
                self.value_sum += values[0]
            else:
                self.labelled += 1

    def write_to(self, rows, missing, unseen, predicted):
        """Add the sums to one model's series: `rows` labelled; `predicted()` gives the labelled summary of
        the predictions' sum and count; `missing` and `unseen` are functions of an input's name that give its
        labelled counter."""
        if self.rows:
            rows.inc(self.rows)
        if self.rows > self.labelled:
            add_to_summary(predicted(), self.rows - self.labelled, self.value_sum)
        for counts, series in ((self.missing, missing), (self.unseen, unseen)):
            for name, count in counts.items():
                series(name).inc(count)


def add_to_summary(summary, count, total):
    """Add `count` observations summing to `total` to a labelled summary, as that many `observe` calls would
    (through its `_count` and `_sum`, as `add_to_histogram`)."""
    summary._count.inc(count)
    summary._sum.inc(total)
