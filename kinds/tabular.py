"""The tabular regressor: a number (a film's IMDb rating) from named, typed inputs, by a linear model
written as plain numbers. No HTTP here.

A folder of this kind holds `regressor.json` (`training.ratings.export`: the intercept, each category's
weight, each number's fill value, scaling and weights) and its manifest's `inputs` (each input's name,
type, whether it is required, and its allowed values or the range the model knows) and `target`. Both
are JSON: nothing in the folder can run code. Scoring one input is a handful of look-ups and sums, the
same sum scikit-learn's `Pipeline.predict` makes (a test holds them to 1e-9), with no DataFrame.

Input types:
- `category`: one of a closed list (a genre); anything else is refused with the list;
- `name`: an open list (a director); a name the model never saw is accepted, adds nothing, and the
  answer says so;
- `number`: finite and positive (a budget in US dollars), with the range the model knows; it may lie
  NUMBER_MARGIN times beyond that range either way (`year` values YEAR_MARGIN years beyond it). A model
  added with `release.py add` gives each number its `bounds` instead (`training.adopt`): any finite
  number between them, negative or zero too.
"""
import json
import math
import sys
from itertools import chain, repeat
from pathlib import Path

import numpy as np

from kinds import tabular_inputs
from serving.errors import BadQuery, TooLarge
from serving.kind import LOWER, ModelKind, Scored
from serving.payloads import flag_from_json, flag_from_text, is_json, json_type, parse_form, parse_json
from store import artifacts
from store.artifacts import ModelError

REGRESSOR_FILE = "regressor.json"
FORMAT = 1
MISSING = ""  # a category or name not given, as the model was trained to read it
YEAR_MARGIN = 5  # years beyond the training range a year input may take
NUMBER_MARGIN = 10  # how many times beyond its training range another number input may lie (`number_bounds`)
MAX_NAME = 200  # characters in a category or name
EXPLAIN = "explain"  # the flag asking for an answer's contributions, unless a model has an input of that name
INPUT_TYPES = ("category", "name", "number")
LARGEST_FLOAT = sys.float_info.max
NUMBER_CLASSES, TEXT_CLASSES = {int, float, type(None)}, {str, type(None)}  # of JSON values taken as they are
DECIMALS = 2  # of a prediction, as answered
# A shadow version agrees with the live one on an input when their numbers are this close: a tenth of a
# rating point, well under the model's typical error (about 0.66 on held-out films).
SHADOW_TOLERANCE = 0.1
SHADOW_SHARE = 0.15  # of an added regressor's typical error: the ratings model's 0.66 would give 0.1
MAX_DECIMALS = 12


class TabularRegressor(ModelKind):
    """A verified, loaded tabular regressor: its inputs, its weights, its manifest and metrics."""

    KIND = "tabular-regressor"
    FILES = (REGRESSOR_FILE,)
    GATE_FIGURES = {"mae": LOWER}

    def __init__(self, *, weights, manifest, metrics):
        super().__init__(manifest=manifest, metrics=metrics)
        self.inputs = check_inputs(manifest.get("inputs"))
        self.target = manifest.get("target") or {}
        # A number is answered on the target's scale: a sum beyond it (only inputs far outside the training
        # range make one) is taken to its nearest end.
        self.lowest, self.highest = self.target.get("min", -math.inf), self.target.get("max", math.inf)
        self.intercept, self.categories, self.numbers = check_weights(weights, self.inputs)
        self.by_name = {spec["name"]: spec for spec in self.inputs}
        # Per input: (spec, name, required, a test that passes the values check_value would return as they
        # are: a listed category, a plain name, a positive finite number not a year). Others go through
        # check_value, which refuses or converts them with its messages.
        self.checks = [(spec, spec["name"], spec["required"], accepts(spec)) for spec in self.inputs]
        self.decimals, self.typical_error, self.tolerance = answer_scale(self.target, metrics)

    @classmethod
    def load(cls, folder):
        """Verify and load a model folder; raise `ModelError` naming the file at fault."""
        folder = artifacts.resolve_folder(folder)
        return cls.from_files(artifacts.read_files(folder, cls.FILES), folder)

    @classmethod
    def from_files(cls, files, origin):
        """Load a model from `artifacts.read_files`' bytes (sent from `origin`), checked again here."""
        origin = Path(origin)
        manifest, metrics = artifacts.check_files(files, origin, cls.FILES)
        try:
            weights = json.loads(files[REGRESSOR_FILE])
            return cls(weights=weights, manifest=manifest, metrics=metrics)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{origin / REGRESSOR_FILE}: not the weights of a tabular regressor ({exc}). "
                             "Rebuild the model with build_model.py.") from None

    # --- Requests to inputs: one dict of named values per input --------------------------------------

    def inputs_from_get(self, *, query_string, mimetype, body, settings):
        """([the one input of the query string, a form body or a JSON object], False)."""
        fields = parse_form(query_string, "URL query string")
        given = {name: values for name, values in fields.items()}
        if mimetype == "application/x-www-form-urlencoded":
            for name, values in parse_form(body, "form body").items():
                given.setdefault(name, []).extend(values)
        elif is_json(mimetype) and body.strip():
            document = parse_json(body)
            if not isinstance(document, dict):
                raise BadQuery(f"The JSON body must be an object of inputs, not {json_type(document)}.")
            for name, value in document.items():
                given.setdefault(name, []).append(value)
        for name, values in given.items():
            if len(values) > 1:
                raise BadQuery(f"{name[:64]} was sent {len(values)} times; send it once.")
        explain = False
        if EXPLAIN not in self.by_name and EXPLAIN in given:
            (value,) = given.pop(EXPLAIN)
            explain = self.wants_explanation(flag_from_text(value) if isinstance(value, str) else
                                             flag_from_json(value))
        return [self.check_input({name: values[0] for name, values in given.items()}, where="")], explain

    def wants_explanation(self, explain):
        """`explain`, when this kind can explain its answers; else a 400 saying it cannot."""
        if explain and not self.EXPLAINS:
            raise BadQuery(f"The {self.name} model is a {self.KIND.replace('-', ' ')}: its answers have no exact "
                           "contributions to explain. Leave explain out.")
        return explain

    def inputs_from_post(self, *, body, settings):
        """(the inputs of {"instances": [{...}, ...]}, in order, False)."""
        example = self.example_text()
        if not body.strip():
            raise BadQuery(f'POST takes a JSON body {{"instances": [{example}, ...]}}; the body is empty.')
        document = parse_json(body)
        if not isinstance(document, dict) or "instances" not in document:
            raise BadQuery(f'POST takes a JSON object {{"instances": [{example}, ...]}}. For one, GET with '
                           "query parameters works too.")
        unknown = sorted(set(document) - {"instances", EXPLAIN})
        if unknown:
            raise BadQuery(f"Unknown field {unknown[0][:64]!r} in the body; it holds only \"instances\" (and "
                           "\"explain\").")
        explain = self.wants_explanation(flag_from_json(document[EXPLAIN])) if EXPLAIN in document else False
        instances = document["instances"]
        if not isinstance(instances, list):
            raise BadQuery(f"instances must be an array of objects, not {json_type(instances)}.")
        if not instances:
            raise BadQuery("instances is empty; send at least one.")
        if len(instances) > settings.MAX_BATCH_SIZE:
            raise TooLarge(f"instances holds {len(instances):,} items; the limit is {settings.MAX_BATCH_SIZE:,} "
                           "per request. Split the batch.")
        checked = []
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise BadQuery(f"instances[{i}] must be an object like {example}, not {json_type(instance)}.")
            checked.append(self.check_input(instance, where=f"instances[{i}]."))
        return checked, explain

    def inputs_from_v2(self, *, inputs, binary, settings):
        """The rows of the protocol's tensors, one per input (`kinds.tabular_inputs`), each checked as a
        POST's instance."""
        rows = tabular_inputs.rows_from_v2(inputs, binary, self.inputs, max_batch=settings.MAX_BATCH_SIZE)
        return [self.check_input({name: value for name, value in row.items() if value is not None},
                                 where=f"row {j}: ") for j, row in enumerate(rows)]

    V2_OUTPUTS = ("prediction", "id")

    def v2_columns(self, scored):
        """The numbers predicted, unrounded."""
        return {"prediction": ("FP64", [len(scored.answers)], lambda: [row[0] for row in scored.probabilities])}

    def check_input(self, given, *, where):
        """One input ({name: value}, values as text from a URL or form, or JSON values), checked: {name:
        value or None} over every input of the model. Raises `BadQuery` naming the field and what to send."""
        unknown = given.keys() - self.by_name.keys()
        if unknown:
            unknown = sorted(unknown)
            raise BadQuery(f"{where}{unknown[0][:64]} is not an input of the {self.name} model; its inputs are "
                           f"{', '.join(self.by_name)}.")
        row = {}
        for spec, name, required, accepted in self.checks:
            value = given.get(name)
            if value is None:  # not sent (JSON null too); a blank value is refused below, as any bad one
                if required:
                    raise BadQuery(f"{where}{name} is missing; it is required ({describe_input(spec)}).")
                row[name] = None
            elif accepted(value):  # the common case, decided in a few operations
                row[name] = float(value) if spec["type"] == "number" else value
            else:
                row[name] = check_value(spec, value, f"{where}{name}")
        return row

    def example_text(self):
        """A short example input for messages."""
        return "{" + ", ".join(f'"{spec["name"]}": ...' for spec in self.inputs if spec["required"]) + "}"

    # --- Scoring -----------------------------------------------------------------------------------

    def predict_value(self, row):
        """The model's number for one checked input, unrounded: scikit-learn's sum, term by term, taken to
        the nearest end of the target's scale if it lies beyond (as no held-out film's does)."""
        total = self.intercept
        for name, weights in self.categories:
            value = row[name]
            total += weights.get(MISSING if value is None else value, 0.0)
        for name, log, fill, mean, scale, weight, missing in self.numbers:
            value = row[name]
            if value is None:
                value = fill
            elif log:
                value = math.log(value)
            total += weight * ((value - mean) / scale)
            if missing is not None:
                total += missing[2] * (((1.0 if row[name] is None else 0.0) - missing[0]) / missing[1])
        return self.lowest if total < self.lowest else self.highest if total > self.highest else total

    def unseen(self, row):
        """The inputs of `row` whose value the model never saw in training: a name it does not know, or a
        number outside the range it was trained on."""
        names = []
        for name, weights in self.categories:
            value = row[name]
            if value is not None and value not in weights:
                names.append(name)
        for spec in self.inputs:
            value = row[spec["name"]]
            if spec["type"] == "number" and value is not None and not spec["min"] <= value <= spec["max"]:
                names.append(spec["name"])
        return names

    def score(self, inputs, *, explain=False):
        """Score checked inputs; return `Scored`: one answer per input (with `explanation` when asked), and
        the unrounded numbers."""
        values = [self.predict_value(row) for row in inputs]
        answers = [{"prediction": round(value, self.decimals), "typical_error": self.typical_error,
                    "unseen": self.unseen(row)} for value, row in zip(values, inputs)]
        if explain:
            for answer, row in zip(answers, inputs):
                answer["explanation"] = self.explanation(row)
        return Scored(answers, None, None, [[value] for value in values])

    EXPLAINS = True  # a linear model's answer is its intercept and one exact contribution per input

    def explanation(self, row):
        """The intercept and each input's contribution to the sum `predict_value` makes of `row`, unrounded:
        they add up to the prediction (before it is taken to the target's scale, which only inputs far out
        of the training range need)."""
        contributions = {}
        for name, weights in self.categories:
            value = row[name]
            contributions[name] = weights.get(MISSING if value is None else value, 0.0)
        for name, log, fill, mean, scale, weight, missing in self.numbers:
            value = row[name]
            used = fill if value is None else math.log(value) if log else value
            contributions[name] = weight * ((used - mean) / scale)
            if missing is not None:
                contributions[name] += missing[2] * (((1.0 if value is None else 0.0) - missing[0]) / missing[1])
        return {"intercept": self.intercept, "contributions": {spec["name"]: contributions[spec["name"]]
                                                               for spec in self.inputs}}

    def predictions_of(self, inputs):
        """Each input's prediction, as `score` answers it."""
        return [round(self.predict_value(row), self.decimals) for row in inputs]

    # --- Many inputs at once, column by column (predict.py) ---------------------------------------

    def columns_of(self, documents):
        """Many JSON objects as checked columns ({input: [value or None per object]}) when every value is
        one `check_input` would take as it is; None when any is not, or a key is not an input: then
        `check_input` on each object finds the first bad one and says what is wrong with it."""
        if not set(chain.from_iterable(documents)) <= self.by_name.keys():
            return None
        columns = {}
        for spec, name, required, accepted in self.checks:
            column = list(map(dict.get, documents, repeat(name)))
            try:
                distinct = set(column)  # each value checked once: a film data set repeats its values
            except TypeError:  # a list or an object
                return None
            classes = set(map(type, distinct))
            if spec["type"] == "number":
                # True equals 1 and False 0, so a set holding 1 may hide a boolean: look at every value then.
                if not classes <= NUMBER_CLASSES or (1 in distinct or 0 in distinct) and bool in set(map(type, column)):
                    return None
            elif not classes <= TEXT_CLASSES:
                return None
            if not all(value is None or accepted(value) for value in distinct) or (required and None in distinct):
                return None
            columns[name] = column
        return columns

    def predict_columns(self, columns, count):
        """`predict_value` of every row of `columns_of`'s columns, unrounded: the same operations in the
        same order on arrays, so each number is the one `predict_value` gives, to the last bit (the
        logarithm is the math module's, as there)."""
        total = np.full(count, self.intercept)
        for name, weights in self.categories:
            lookup = {**weights, None: weights.get(MISSING, 0.0)}
            total += np.fromiter(map(lookup.get, columns[name], repeat(0.0)), float, count)
        for name, log, fill, mean, scale, weight, missing in self.numbers:
            given = np.array(columns[name], dtype=float)  # None becomes NaN
            absent = np.isnan(given)
            if log:
                given = np.fromiter(map(math.log, given.tolist()), float, count)  # log(NaN) is NaN
            total += weight * ((np.where(absent, fill, given) - mean) / scale)
            if missing is not None:
                total += missing[2] * ((absent.astype(float) - missing[0]) / missing[1])
        return np.clip(total, self.lowest, self.highest)

    def unseen_columns(self, columns, count):
        """`unseen` of every row of `columns_of`'s columns, each as `;`-joined text."""
        flags = []
        for name, weights in self.categories:
            column = columns[name]
            unseen = {value for value in set(column) if value is not None and value not in weights}
            if unseen:  # a name it never saw; a listed category always has a weight
                flags.append((name, np.fromiter(map(unseen.__contains__, column), bool, count)))
        for spec in self.inputs:
            if spec["type"] == "number":
                given = np.array(columns[spec["name"]], dtype=float)  # NaN, for None, is in no range
                flags.append((spec["name"], (given < spec["min"]) | (given > spec["max"])))
        texts = [""] * count
        if not flags:
            return texts
        for row in np.flatnonzero(np.logical_or.reduce([flag for _, flag in flags])).tolist():
            texts[row] = ";".join(name for name, flag in flags if flag[row])
        return texts

    def agrees(self, answered, shadowed):
        """A shadow's number agrees with the answer's when within its tolerance (`answer_scale`)."""
        return abs(answered - shadowed) <= self.tolerance

    # --- Feedback: the true number -------------------------------------------------------------------

    def check_target(self, value):
        """The true value sent back, if it is a finite number on the target's scale; else None."""
        if not is_finite(value):
            return None
        low, high = self.target.get("min", -math.inf), self.target.get("max", math.inf)
        return float(value) if low <= value <= high else None

    def error_of(self, prediction, target):
        """The absolute error."""
        return abs(float(prediction) - float(target))

    # --- Describing itself -------------------------------------------------------------------------

    def describe(self):
        """Named inputs in; one number out."""
        return {"kind": self.KIND, "target": self.target, "labels": None, "explains": self.EXPLAINS,
                "inputs": [{**spec, "datatype": "FP64" if spec["type"] == "number" else "BYTES", "shape": [-1]}
                           for spec in self.inputs],
                "outputs": [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]}

    def info(self):
        """What `/models` shows of this model, with its inputs and target."""
        return {**super().info(), "inputs": self.inputs, "target": self.target}


def rounded(values, decimals=DECIMALS):
    """Python's `round(value, decimals)` of each of an array of numbers, as a list of floats, in C for all
    but a few: numpy's rint(value * 10**decimals) / 10**decimals is that same float wherever the scaled
    value is clear of a halfway point (its own rounding error is under 1e-7 while it is under 1e9), so
    only values within 1e-6 of one, or that large, go through `round` itself."""
    scale = 10.0 ** decimals
    scaled = values * scale
    answers = (np.rint(scaled) / scale).tolist()
    doubtful = (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6) | ~(np.abs(scaled) < 1e9)
    for row in np.flatnonzero(doubtful).tolist():
        answers[row] = round(float(values[row]), decimals)
    return answers


def answer_scale(target, metrics):
    """(the decimals a number is answered with, its typical error so rounded, how close a shadow's number
    must be to agree) of a regressor: DECIMALS and SHADOW_TOLERANCE, unless the target says its decimals
    (a model added with `release.py add`, in its data's units): then a shadow agrees within
    SHADOW_SHARE of the typical error."""
    decimals = target.get("decimals", DECIMALS)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"the target's decimals must be a whole number from 0 to {MAX_DECIMALS}")
    quantiles = metrics.get("absolute_error_quantiles") or {}
    typical = quantiles.get("0.5") if isinstance(quantiles.get("0.5"), float) else None
    tolerance = SHADOW_SHARE * typical if "decimals" in target and typical else SHADOW_TOLERANCE
    return decimals, None if typical is None else round(typical, decimals), tolerance


def accepts(spec):
    """A quick test for the plainest good values of an input (see `TabularRegressor.checks`)."""
    if spec["type"] == "category":
        values = frozenset(spec["values"])
        return lambda value: value.__class__ is str and value in values
    if spec["type"] == "name":
        return lambda value: value.__class__ is str and 0 < len(value) <= MAX_NAME and value == value.strip() != ""
    if spec.get("year"):
        low, high = spec["min"] - YEAR_MARGIN, spec["max"] + YEAR_MARGIN
        return lambda value: (value.__class__ is int or value.__class__ is float) and low <= value <= high \
            and value == int(value)
    low, high = number_bounds(spec)
    return lambda value: (value.__class__ is float or value.__class__ is int) and low <= value <= high


def number_bounds(spec):
    """The values a number input takes (not a year): its `bounds` if it has them, else NUMBER_MARGIN times
    beyond the range the model was trained on, either way. Further out a linear model's answer is an
    extrapolation that means nothing (a running time of a million minutes would rate a film in the
    thousands)."""
    if "bounds" in spec:
        return tuple(spec["bounds"])
    return spec["min"] / NUMBER_MARGIN, spec["max"] * NUMBER_MARGIN


def check_value(spec, value, where):
    """One given value of an input, checked against its spec: the value as scored, or `BadQuery`."""
    kind = spec["type"]
    if kind == "number":
        number = parse_number(value, where, spec)
        if "bounds" in spec:
            low, high = spec["bounds"]
            if not low <= number <= high:  # NaN and infinities too
                raise BadQuery(f"{where} must be a number from {plain(low)} to {plain(high)} ({describe_input(spec)}"
                               f"), not {value!r:.64}.")
            return float(number)
        if not math.isfinite(number) or number <= 0:
            raise BadQuery(f"{where} must be a finite positive number ({describe_input(spec)}), not {value!r:.64}.")
        if spec.get("year"):
            low, high = spec["min"] - YEAR_MARGIN, spec["max"] + YEAR_MARGIN
            if number != int(number) or not low <= number <= high:
                raise BadQuery(f"{where} must be a whole year from {low:.0f} to {high:.0f} (the model knows films "
                               f"from {spec['min']:.0f} to {spec['max']:.0f}), not {value!r:.64}.")
            return float(number)
        low, high = number_bounds(spec)
        if not low <= number <= high:
            raise BadQuery(f"{where} must be from {plain(low)} to {plain(high)}, {NUMBER_MARGIN} times beyond the "
                           f"{plain(spec['min'])} to {plain(spec['max'])} the model was trained on either way "
                           f"(further out its answer would mean nothing), not {value!r:.64}.")
        return float(number)
    if not isinstance(value, str):
        raise BadQuery(f"{where} must be a string ({describe_input(spec)}), not {json_type(value)}.")
    if kind == "category":
        if value not in spec["values"]:
            raise BadQuery(f"{where} {value[:64]!r} is not one the model knows; send one of: "
                           f"{', '.join(spec['values'])}.")
        return value
    text = value.strip()
    if not text:
        raise BadQuery(f"{where} is empty; send a name, or leave {where.rsplit('.', 1)[-1]} out if it is unknown.")
    if len(value) > MAX_NAME:
        raise BadQuery(f"{where} is {len(value):,} characters long; the limit is {MAX_NAME}.")
    return text


def plain(number):
    """A bound for a message: 3,000,000,000 and 21.8 rather than 3e+09 and 21.800000000000001."""
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"


def parse_number(value, where, spec):
    """A number from JSON (not a boolean) or from text (a URL or form)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadQuery(f"{where} must be a number ({describe_input(spec)}), not {json_type(value)}.")
    if isinstance(value, str):
        try:
            # float() reads 1_000 as a thousand and " 5" as 5; a number in a URL is digits, a point, an e.
            if "_" in value or not value.strip():
                raise ValueError(value)
            return float(value)
        except ValueError:
            raise BadQuery(f"{where} must be a number ({describe_input(spec)}), not {value[:64]!r}.") from None
    return float(value) if is_finite(value) else math.inf  # an integer too large for a float is refused as inf is


def describe_input(spec):
    """An input's spec in words, for messages."""
    if spec["type"] == "number":
        unit = f" in {spec['unit']}" if spec.get("unit") else ""
        if spec.get("year"):
            return f"a year; the model was trained on films from {spec['min']:.0f} to {spec['max']:.0f}"
        if "bounds" in spec:
            return (f"a number{unit}; the data the model was added with held {plain(spec['min'])} to "
                    f"{plain(spec['max'])}")
        return f"a number{unit}; the model was trained on {spec['min']:,.0f} to {spec['max']:,.0f}"
    if spec["type"] == "category":
        return "one of: " + ", ".join(spec["values"])
    return "a name; one the model never saw is accepted"


def check_inputs(inputs):
    """The manifest's `inputs`, checked: a list of {name, type, required, ...} with what each type needs."""
    if not isinstance(inputs, list) or not inputs:
        raise ModelError("the manifest has no inputs")
    names = set()
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or spec["name"] in names:
            raise ModelError(f"an input of the manifest is not a named, distinct input: {str(spec)[:80]}")
        if spec.get("type") not in INPUT_TYPES or not isinstance(spec.get("required"), bool):
            raise ModelError(f"input {spec['name']!r}: type must be one of {', '.join(INPUT_TYPES)}, "
                             "required a boolean")
        if spec["type"] == "category" and not (isinstance(spec.get("values"), list) and spec["values"]
                                               and all(isinstance(v, str) for v in spec["values"])):
            raise ModelError(f"input {spec['name']!r}: a category needs its list of values")
        if spec["type"] == "number" and not all(is_finite(spec.get(k)) for k in ("min", "max")):
            raise ModelError(f"input {spec['name']!r}: a number needs a finite min and max")
        bounds = spec.get("bounds", [spec.get("min"), spec.get("max")])
        if spec["type"] == "number" and not (isinstance(bounds, list) and len(bounds) == 2 and all(
                map(is_finite, bounds)) and bounds[0] <= spec["min"] <= spec["max"] <= bounds[1]):
            raise ModelError(f"input {spec['name']!r}: its bounds must be two finite numbers around its min and max")
        names.add(spec["name"])
    return inputs


def check_weights(weights, inputs):
    """regressor.json's content, checked against the inputs: (intercept, [(name, {value: weight})],
    [(name, log, fill, mean, scale, weight, missing (mean, scale, weight) or None)])."""
    if not isinstance(weights, dict) or weights.get("format") != FORMAT:
        raise ValueError(f"format must be {FORMAT}")
    if not is_finite(weights.get("intercept")):
        raise ValueError("the intercept is not a finite number")
    kinds_ = {spec["name"]: spec["type"] for spec in inputs}
    required = {spec["name"] for spec in inputs if spec["required"]}
    categories, numbers = weights.get("categories"), weights.get("numbers")
    if not isinstance(categories, dict) or not isinstance(numbers, dict):
        raise ValueError("categories and numbers must be objects")
    if {n for n, k in kinds_.items() if k != "number"} != set(categories) or \
            {n for n, k in kinds_.items() if k == "number"} != set(numbers):
        raise ValueError("the weights' inputs are not the manifest's")
    checked_categories = []
    for name, table in categories.items():
        if not isinstance(table, dict) or not all(isinstance(k, str) and is_finite(v) for k, v in table.items()):
            raise ValueError(f"{name}: each value's weight must be a finite number")
        checked_categories.append((name, {k: float(v) for k, v in table.items()}))
    checked_numbers = []
    for name, spec in numbers.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("log"), bool):
            raise ValueError(f"{name}: not a number's weights")
        fill = spec.get("fill")
        if not all(is_finite(spec.get(k)) for k in ("mean", "scale", "weight")) or spec["scale"] <= 0 or \
                (fill is not None and not is_finite(fill)):
            raise ValueError(f"{name}: mean, scale (positive) and weight must be finite numbers")
        if fill is None and name not in required:
            raise ValueError(f"{name}: an optional number needs a fill value")
        missing = spec.get("missing")
        if missing is not None:
            if not isinstance(missing, dict) or missing.get("scale", 0) <= 0 or \
                    not all(is_finite(missing.get(k)) for k in ("mean", "scale", "weight")):
                raise ValueError(f"{name}: its missing-value weights must be finite numbers (scale positive)")
            missing = (float(missing["mean"]), float(missing["scale"]), float(missing["weight"]))
        checked_numbers.append((name, spec["log"], float(fill) if fill is not None else math.nan, float(spec["mean"]),
                                float(spec["scale"]), float(spec["weight"]), missing))
    return float(weights["intercept"]), checked_categories, checked_numbers


def is_finite(value):
    """True for a finite int or float (not a boolean, nor an int too large for a float)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -LARGEST_FLOAT <= value <= LARGEST_FLOAT
