"""What a handed-over pipeline is, read from its graph (`store.estimator_files`): its kind, and its inputs.

    described = describe(graph)    # {"kind", "family", "inputs": [...], "labels"} or ModelError

- The kind: a text classifier when the first step is a text vectorizer (TfidfVectorizer,
  CountVectorizer); otherwise a tabular classifier or regressor, as the last step is one or the other.
- A tabular pipeline's inputs: the columns it was fitted on (`feature_names_in_`), each typed by what the
  first step does with it: one-hot or ordinal encoded, a `category` whose values are the encoder's (a
  closed list when the encoder refuses an unknown value, a `name` when it ignores one); otherwise a
  `number`. The data given with the model then supplies each number's range.
Nothing here runs the model; this only reads its fitted attributes.
"""
import numpy as np

from store.artifacts import ModelError
from store.estimator_files import Node

TEXT_VECTORIZERS = {"sklearn.feature_extraction.text.TfidfVectorizer",
                    "sklearn.feature_extraction.text.CountVectorizer"}
CLASSIFIERS = {"sklearn.linear_model._logistic.LogisticRegression", "sklearn.naive_bayes.MultinomialNB",
               "sklearn.naive_bayes.ComplementNB", "sklearn.tree._classes.DecisionTreeClassifier",
               "sklearn.ensemble._forest.RandomForestClassifier",
               "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"}
REGRESSORS = {"sklearn.linear_model._base.LinearRegression", "sklearn.linear_model._ridge.Ridge",
              "sklearn.tree._classes.DecisionTreeRegressor", "sklearn.ensemble._forest.RandomForestRegressor",
              "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor"}
ENCODERS = {"sklearn.preprocessing._encoders.OneHotEncoder", "sklearn.preprocessing._encoders.OrdinalEncoder"}
COLUMN_TRANSFORMER = "sklearn.compose._column_transformer.ColumnTransformer"
PIPELINE = "sklearn.pipeline.Pipeline"


def steps(graph):
    """A Pipeline node's steps as [(name, node)]; a lone estimator is a pipeline of one step."""
    if graph.name != PIPELINE:
        return [("model", graph)]
    listed = (graph.state or {}).get("steps")
    if not isinstance(listed, list) or not listed or not all(
            isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) for s in listed):
        raise ModelError("the Pipeline's steps are not a list of (name, estimator) pairs.")
    return listed


def describe(graph):
    """The kind, the last step's family, the inputs and the labels of a pipeline's graph."""
    pipeline = steps(graph)
    final_name, final = pipeline[-1]
    if not isinstance(final, Node) or final.name not in CLASSIFIERS | REGRESSORS:
        raise ModelError(f"its last step, {final_name}, is {getattr(final, 'name', type(final).__name__)}: not "
                         "a classifier or regressor this service serves.")
    classifier = final.name in CLASSIFIERS
    labels = [str(label) for label in np.asarray(final.state.get("classes_")).tolist()] if classifier else None
    first = pipeline[0][1]
    if isinstance(first, Node) and first.name in TEXT_VECTORIZERS:
        if not classifier:
            raise ModelError("a text pipeline must end in a classifier: the service answers text with labels.")
        return {"kind": "text-classifier", "family": final.name.rsplit(".", 1)[1], "inputs": None, "labels": labels}
    return {"kind": "tabular-classifier" if classifier else "tabular-regressor",
            "family": final.name.rsplit(".", 1)[1], "inputs": tabular_inputs(graph, first), "labels": labels}


def tabular_inputs(graph, first):
    """The columns the pipeline was fitted on, each typed by what the first step does with it."""
    state = graph.state if graph.name == PIPELINE else first.state
    names = (first.state or {}).get("feature_names_in_")
    if names is None:
        names = (state or {}).get("feature_names_in_")
    if names is None:
        raise ModelError("it was fitted on an array, not a table with named columns, so its inputs have no names. "
                         "Fit it on a pandas DataFrame.")
    names = [str(name) for name in np.asarray(names).tolist()]
    encoded = encoded_columns(first) if isinstance(first, Node) and first.name == COLUMN_TRANSFORMER else {}
    inputs = []
    for name in names:
        if name in encoded:
            values, closed = encoded[name]
            inputs.append({"name": name, "type": "category" if closed else "name", "values": values})
        else:
            inputs.append({"name": name, "type": "number"})
    return inputs


def encoded_columns(transformer):
    """{column: (its categories, whether an unknown value is refused)} of a ColumnTransformer's encoders,
    including encoders that end a Pipeline inside it."""
    found = {}
    for fitted in transformer.state.get("transformers_") or []:
        if not isinstance(fitted, tuple) or len(fitted) != 3:
            raise ModelError("the ColumnTransformer's fitted transformers are not (name, transformer, columns).")
        _, part, columns = fitted
        encoder = part
        if isinstance(part, Node) and part.name == PIPELINE:
            encoder = steps(part)[-1][1]
        if not isinstance(encoder, Node) or encoder.name not in ENCODERS:
            continue
        categories = encoder.state.get("categories_")
        columns = [str(c) for c in (columns if isinstance(columns, list) else np.asarray(columns).tolist())]
        if not isinstance(categories, list) or len(categories) != len(columns):
            raise ModelError(f"{encoder.name.rsplit('.', 1)[1]} of {', '.join(columns)}: its categories do not "
                             "match its columns.")
        closed = encoder.state.get("handle_unknown") == "error"
        for column, values in zip(columns, categories):
            found[column] = ([value if isinstance(value, str) else str(value) for value in np.asarray(values).tolist()
                              if not (isinstance(value, float) and value != value)], closed)
    return found
