"""What the service keeps of its answers: an id and a version on each, a row in the prediction log, and
the labels its users send back. No HTTP here: the resources in web/resources.py call `Recorder`.

`Recorder.stamp` gives each answer its `id` (signed, see `ids`) and `model_version`, and returns what
queues their rows;
`Recorder.feedback` checks `POST /feedback` items against their ids (issued here, within the retention,
a label of the model that answered), counts them in `sentiment_feedback_total` and queues them.
"""
import functools
import time

from serving import ids
from serving.config import model_index
from serving.errors import BadQuery, NoFeedback, UnknownAnswer
from serving.prediction_log import DAY


class Recorder:
    """Ids, versions and the prediction log for every served model of one app.

    Parameters
    ----------
    signer : ids.Signer
        Signs and verifies answer ids (its key is shared through the prediction log's database).
    log : prediction_log.PredictionLog
        Where rows go; disabled for PREDICTION_LOG=off.
    models : dict
        Name -> loaded model (`serving.kind.ModelKind`), the ones served at start; `learn` adds those switched in later.
    metrics : metrics.Metrics
        Counts feedback by model, predicted and actual label.
    """

    def __init__(self, *, signer, log, models, metrics):
        self.signer, self.log, self.metrics = signer, log, metrics
        self.by_tag = {}  # version tag -> model_version, of every version this process has served
        self.stamps = {}  # model_version -> (its model's byte, `config.model_index`, its tag, {label: position})
        self.latest = {}  # model name -> the loaded model last learned: what feedback for that model is checked by
        self.names = {}  # a model's byte -> its name
        for served in models.values():
            self.learn(served)

    def learn(self, served):
        """Get ready to stamp the answers of a loaded model (at start, when a release switches one in, and
        at its first answer if that comes first); return its stamp."""
        tag = ids.version_tag(served.version)
        self.by_tag[tag] = served.version
        self.latest[served.name] = served
        if served.labels is None:  # a regressor: its ids carry the number answered, its feedback is a number
            self.log.regressors.add(served.name)
        self.names[model_index(served.name)] = served.name
        stamp = self.stamps[served.version] = (
            model_index(served.name), tag,
            None if served.labels is None else {label: i for i, label in enumerate(served.labels)})
        return stamp

    def stamp(self, served, scored, texts, *, request_id, shadow=None):
        """Give each answer of the loaded model `served` (a `model.Scored`'s) its id and version; return what
        records them: a function of no arguments that queues their rows (web/resources.py runs it once the answer has
        been sent). `shadow` is the (version, labels) of the shadow that scored the same texts, if any."""
        answers = scored.answers
        version = served.version
        # A request thread can score with a version the follower has switched in but not yet told us about.
        model_index, tag, label_index = self.stamps.get(version) or self.learn(served)
        now = time.time()
        if label_index is None:  # a regressor's answers: numbers
            issued = self.signer.issue_values(model_index=model_index, version=tag, now=now,
                                              values=[answer["prediction"] for answer in answers])
        else:  # One call for the request's ids: what they share is made once (see `ids.Signer.issue_many`).
            issued = self.signer.issue_many(model_index=model_index, version=tag, now=now,
                                            label_indices=[label_index[answer["prediction"]] for answer in answers])
        for answer, answer_id in zip(answers, issued):
            answer["id"] = answer_id
            answer["model_version"] = version
        return functools.partial(self.log.record, model=served.name, version=version, request_id=request_id,
                                 now=now, answers=answers, texts=texts, tokens=scored.tokens, known=scored.known,
                                 shadow=shadow,
                                 values=None if label_index is not None else [p[0] for p in scored.probabilities])

    def feedback(self, items):
        """Check every (where, id, target) item, then count and queue them all; return what was accepted.

        All or nothing: the first bad item raises `UnknownAnswer` (an id not issued here, or past the
        retention) or `BadQuery` (a label the answering model does not have, or a number it cannot
        take), and nothing is recorded.
        """
        if not self.log.enabled:
            raise NoFeedback("This server keeps no prediction log (PREDICTION_LOG=off), so it takes no feedback. "
                             "Ask its operator to set PREDICTION_LOG.")
        now = time.time()
        oldest = now - self.log.days * DAY
        rows = []
        for where, answer_id, target in items:
            at = f"{where}: " if where else ""
            issued = self.signer.verify(answer_id)
            model = self.names.get(issued.model_index) if issued else None
            served = self.latest.get(model)
            # Labels come from the model's manifest: a version of another label set cannot be named by an id;
            # a regressor's ids carry its number.
            if served is None or (served.labels is None) != (issued.value is not None) or (
                    served.labels is not None and issued.label_index >= len(served.labels)):
                raise UnknownAnswer(f"{at}No answer with id {answer_id[:64]!r} was given by this service. "
                                    "Send the `id` of an answer exactly as it came.")
            if issued.time < oldest:
                raise UnknownAnswer(f"{at}The answer {answer_id!r} is older than the {self.log.days} days this "
                                    "service keeps; feedback for it is no longer taken.")
            checked = served.check_target(target)
            if served.labels is None:
                if checked is None or isinstance(target, str):
                    low, high = served.target.get("min"), served.target.get("max")
                    scale = f"from {low} to {high}" if low is not None and high is not None else "a finite number"
                    raise BadQuery(f"{at}The {model} model answers a number: send the true one as \"value\", "
                                   f"{scale}, not {str(target)[:64]!r}.")
                predicted, label = repr(issued.value), repr(checked)
                error = served.error_of(issued.value, checked)
            else:
                if checked is None:
                    raise BadQuery(f"{at}{str(target)[:64]!r} is not a label of the {model} model, which gave this "
                                   f"answer; send one of: {', '.join(served.labels)}.")
                predicted, label = served.labels[issued.label_index], checked
                error = served.error_of(predicted, label)
            rows.append({"id": answer_id, "time": now, "issued": issued.time, "model": model,
                         "model_version": self.by_tag.get(issued.version_tag), "predicted": predicted,
                         "label": label, "error": error})
        for row in rows:
            self.metrics.count_feedback(row["model"], row["predicted"], row["label"], row["error"],
                                        numeric=self.latest[row["model"]].labels is None)
        self.log.record_feedback(rows)
        return [feedback_answer(row, numeric=self.latest[row["model"]].labels is None) for row in rows]


ERROR_DECIMALS = 6  # of a number's error in POST /feedback's answer


def feedback_answer(row, *, numeric):
    """What POST /feedback answers of one accepted item: for a regressor, the numbers and the error."""
    if numeric:
        return {"id": row["id"], "model": row["model"], "model_version": row["model_version"],
                "predicted": float(row["predicted"]), "value": float(row["label"]),
                # 1.11, not 1.1100000000000003: the difference of two decimals, as a person reads it (the log
                # keeps the float itself).
                "error": round(row["error"], ERROR_DECIMALS)}
    return {name: row[name] for name in ("id", "model", "model_version", "predicted", "label")}
