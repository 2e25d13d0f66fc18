"""The model-kind interface: everything the serving machinery asks of a model, whatever kind it is.

A kind of model (the text classifier of `kinds/text.py`, and each kind added beside it) subclasses
`ModelKind` and fills in its methods; HTTP, the Open Inference Protocol, ids, the prediction log,
feedback, metrics, the gate, shadow scoring, releases and the batch engines call only these. The
life of a request, as the machinery sees it:

    served = kinds.load(folder)                      # a verified folder; its manifest names the kind
    inputs, explain = served.inputs_from_get(...)    # or inputs_from_post
    scored = served.score(inputs, explain=explain)   # answers, plus the drift signals of the kind
    served.check_target(value)                       # feedback: the true value, checked
    served.describe()                                # /models, OpenAPI, V2 metadata, the demo

No Flask and no HTTP here: a kind parses what the HTTP layer hands over (the query string, a body)
and raises the named errors of `serving.errors`, which the HTTP layer maps to statuses.
"""
from serving import config
from store import artifacts

HIGHER, LOWER = "higher", "lower"  # which way a figure of the gate is better


class Scored:
    """What scoring gave: `answers` (one dict per input), each input's `tokens` and `known` tokens (the
    text kind's drift counts: how many tokens its analyzer made, and how many the vocabulary knows), and
    the `probabilities` the answers round (a list per input, in the labels' order)."""

    __slots__ = ("answers", "tokens", "known", "probabilities")

    def __init__(self, answers, tokens, known, probabilities):
        self.answers, self.tokens, self.known, self.probabilities = answers, tokens, known, probabilities


class ModelKind:
    """One loaded, verified model of some kind. Subclasses set `KIND` and implement the methods below.

    Attributes
    ----------
    name : str
        The model's name (its folder under MODEL_DIR), e.g. "binary".
    version : str
        Its version, computed from the manifest (`store.artifacts.model_version`).
    manifest, metrics : dict
        The contents of `manifest.json` and `metrics.json`.
    labels : list of str or None
        What it answers, for a classifier, in order (from the manifest only); None for a number.
    route : str
        Where it is scored: a built model's fixed route, or an added model's (`config.model_route`).
    """

    KIND = None  # the manifest's "kind"
    FILES = ()  # the files a folder of this kind must hold besides the manifest and metrics.json
    # The figures the gate compares a new build with the live model on, and which way each is better.
    GATE_FIGURES = {}

    def __init__(self, *, manifest, metrics):
        self.manifest, self.metrics = manifest, metrics
        self.name = manifest["name"]
        self.version = artifacts.model_version(manifest)
        self.labels = list(manifest["labels"]) if manifest.get("labels") is not None else None
        self.route = config.model_route(self.name, manifest)

    # --- Loading ------------------------------------------------------------------------------------

    @classmethod
    def from_files(cls, files, origin):
        """The model of a folder's verified bytes ({file name: bytes}, `store.artifacts.read_files`), sent
        from `origin`; raise `ModelError` naming the file at fault. Nothing in them may run code."""
        raise NotImplementedError

    # --- Requests to inputs -------------------------------------------------------------------------

    def inputs_from_get(self, *, query_string, mimetype, body, settings):
        """(inputs, explain) of a GET: one input from the query string; raise a named error."""
        raise NotImplementedError

    def inputs_from_post(self, *, body, settings):
        """(inputs, explain) of a POST body: a batch of inputs, in order; raise a named error."""
        raise NotImplementedError

    def inputs_from_v2(self, *, inputs, binary, settings):
        """The inputs of an Open Inference Protocol request: its "inputs" tensors as decoded, and the bytes after
        its JSON part (its tensors sent as binary data); raise a named error."""
        raise NotImplementedError

    # The Open Inference Protocol's outputs, in their default order; "id" (each answer's) is answered too.
    V2_OUTPUTS = ()

    def v2_columns(self, scored):
        """The protocol's outputs of `scored` but "id": {name: (datatype, shape, a function giving the
        values, flat)}; the values are made only for the outputs asked for."""
        raise NotImplementedError

    # --- Scoring ------------------------------------------------------------------------------------

    def score(self, inputs, *, explain=False):
        """Score inputs; return `Scored`: one answer per input and the drift signals of the kind."""
        raise NotImplementedError

    def predictions_of(self, inputs):
        """Each input's prediction as `score` would answer it, and nothing else: what a shadow version
        gives beside the live one, at a fraction of `score`'s cost."""
        raise NotImplementedError

    def agrees(self, answered, shadowed):
        """Whether a shadow version's prediction agrees with the one answered: the same label, by default."""
        return answered == shadowed

    # --- Feedback -----------------------------------------------------------------------------------

    def check_target(self, value):
        """A true value sent back for an answer, checked: returned as recorded, or `None` when it is not
        one this model can have (the caller says which are)."""
        raise NotImplementedError

    def error_of(self, prediction, target):
        """How wrong `prediction` was, given the true `target`: 0 or 1 for a label."""
        raise NotImplementedError

    # --- Describing itself --------------------------------------------------------------------------

    def describe(self):
        """Its inputs and outputs, for the OpenAPI document, V2 metadata and the demo: {"kind", "inputs":
        [{"name", "datatype", "shape"}], "outputs": [...], "labels"}."""
        raise NotImplementedError

    def info(self):
        """What `/models` shows of this model: no file-system paths."""
        return {
            "name": self.name,
            "kind": self.KIND,
            "version": self.version,
            "labels": self.labels,
            "created_at": self.manifest["created_at"],
            "hyperparameters": self.manifest["hyperparameters"],
            "training_data": {k: v for k, v in self.manifest["training_data"].items() if k != "path"},
            "metrics": self.metrics,
        }
