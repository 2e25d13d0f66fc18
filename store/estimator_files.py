"""Reading a fitted scikit-learn estimator that someone hands over, as plain data, running none of its code.

    graph = read_estimator(path)     # a skops file, a pickle or a joblib file

A model trained elsewhere arrives as a file its author saved: with `skops.io.dump`, `pickle.dump` or
`joblib.dump`. Whatever the format, the file is read into one plain graph: each estimator (and each part
it holds, a tree, a loss) becomes a `Node` naming its class, with the arguments it was built with and
the state it was given, and everything else is what JSON or numpy holds (numbers, strings, lists,
tuples, dicts, arrays). No class of scikit-learn is imported, built or asked anything while a file is
read, so no code in it runs, not even a `__setstate__`: what a model does is worked out later from the
graph, by code of this project that checks every number it uses.

Every class a file names must be in `ALLOWED`, the exact list of what can be served (the module and the
class, as scikit-learn 1.9 names them); any other is refused in one line naming it and where it was met.
What the file says about itself (skops' own list of trusted types, a pickle's globals) is never trusted.
- skops: the zip's `schema.json` is walked here, and each array taken from its `.npy` member with
  `numpy.load(allow_pickle=False)`. A function (a `FunctionTransformer`'s) is refused.
- pickle: an unpickler whose globals are stand-ins: naming an allowed class gives a `Node`, not the class.
  Only numpy's array reconstruction is real (it makes an empty array, then fills it with bytes).
- joblib: the same unpickler under joblib's framing; an array of objects is read by it too, never by
  plain pickle.
"""
import _compat_pickle
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np

from store.artifacts import ModelError

SKOPS_MAGIC = b"PK\x03\x04"  # a zip file: skops' format
MAX_FILE_BYTES = 2 * 2**30  # refused beyond: no served estimator of this project's kinds is near it

# What a served estimator may be made of: (module, class) as the file names them. The first group is what
# a user puts in a pipeline; the second the parts those hold once fitted.
ESTIMATORS = frozenset({
    ("sklearn.pipeline", "Pipeline"),
    ("sklearn.compose._column_transformer", "ColumnTransformer"),
    ("sklearn.preprocessing._encoders", "OneHotEncoder"),
    ("sklearn.preprocessing._encoders", "OrdinalEncoder"),
    ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.preprocessing._data", "MinMaxScaler"),
    ("sklearn.impute._base", "SimpleImputer"),
    ("sklearn.feature_extraction.text", "TfidfVectorizer"),
    ("sklearn.feature_extraction.text", "CountVectorizer"),
    ("sklearn.linear_model._logistic", "LogisticRegression"),
    ("sklearn.linear_model._base", "LinearRegression"),
    ("sklearn.linear_model._ridge", "Ridge"),
    ("sklearn.naive_bayes", "MultinomialNB"),
    ("sklearn.naive_bayes", "ComplementNB"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._classes", "DecisionTreeRegressor"),
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "RandomForestRegressor"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingClassifier"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor"),
})
PARTS = frozenset({
    ("sklearn.feature_extraction.text", "TfidfTransformer"),
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.preprocessing._label", "LabelEncoder"),
    ("sklearn._loss.loss", "HalfSquaredError"),
    ("sklearn._loss.loss", "HalfBinomialLoss"),
    ("sklearn._loss.loss", "HalfMultinomialLoss"),
    ("sklearn._loss.link", "IdentityLink"),
    ("sklearn._loss.link", "LogitLink"),
    ("sklearn._loss.link", "MultinomialLogit"),
    ("sklearn._loss.link", "Interval"),
    ("sklearn._loss._loss", "CyHalfSquaredError"),
    ("sklearn._loss._loss", "CyHalfBinomialLoss"),
    ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfSquaredError"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss"),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"),
    ("numpy.random._generator", "Generator"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.mtrand", "RandomState"),
    ("builtins", "slice"),
})
ALLOWED = ESTIMATORS | PARTS
# The real globals: numpy's array and scalar reconstruction and pickle's bytes, which build data and call
# nothing else.
NUMPY_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5's arrays
    ("_codecs", "encode"),  # pickle protocol 2's bytes: text to bytes by a codec, a data transform
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
# numpy's scalar types, named as data (an encoder's `dtype=np.float64`): read as their names, never called.
NUMPY_TYPES = {("numpy", name) for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8",
                                             "uint64", "uint32", "uint16", "uint8", "bool_", "object_", "str_")}
# joblib's own framing of an array in its pickles (read by `JoblibReader`).
JOBLIB_ARRAY = ("joblib.numpy_pickle", "NumpyArrayWrapper")
# skops' node types that hold data or an allowed class; any other (a function, a method, an operator, an
# object skops pickles) is refused.
SKOPS_DATA = {"DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode", "DTypeNode", "SliceNode"}
SKOPS_OBJECTS = {"ObjectNode", "TreeNode", "LossNode", "RandomGeneratorNode", "ReduceNode"}
FUNCTION_HINT = ("a FunctionTransformer's function, or any function, would run as the model scores. Do the "
                 "same with the allowed transformers, or fit on data already transformed.")


class Node:
    """One object of the file, as data: `name` ("module.Class"), the `args` it was made with (a tree's
    sizes), and its `state` (its attributes, as a dict, or None)."""

    __slots__ = ("name", "args", "state")

    def __init__(self, name, args=(), state=None):
        self.name, self.args, self.state = name, tuple(args), state

    def __setstate__(self, state):  # pickle's BUILD: the state, kept as data
        self.state = state

    def __repr__(self):
        return f"Node({self.name})"


def read_estimator(path):
    """The estimator in the file at `path` as a graph of `Node`s; `ModelError` naming the file and what is
    wrong with it (a class that cannot be served, a function, a file that is none of the formats)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelError(f"{path}: {size:,} bytes; a model file of more than {MAX_FILE_BYTES:,} is refused.")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if data.startswith(SKOPS_MAGIC):
        return read_skops(data, path)
    data = decompressed(data, path)  # joblib.dump(..., compress=N) writes a compressed stream
    if data[:1] == b"\x80":
        return read_pickle(data, path)
    raise ModelError(f"{path}: not a skops file, a pickle or a joblib file (it starts {data[:8]!r}). Save the "
                     "fitted pipeline with skops.io.dump(pipeline, path), or with pickle or joblib.")


def decompressed(data, path):
    """`data` itself, or what joblib's compression of it (zlib, gzip, bz2 or xz) holds, to MAX_FILE_BYTES."""
    import bz2
    import lzma
    import zlib

    if data[:1] == b"\x78":
        reader = zlib.decompressobj()
    elif data[:2] == b"\x1f\x8b":
        reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif data[:3] == b"BZh":
        reader = bz2.BZ2Decompressor()
    elif data[:6] == b"\xfd7zXZ\x00":
        reader = lzma.LZMADecompressor()
    else:
        return data
    try:
        whole = reader.decompress(data, MAX_FILE_BYTES + 1)
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        raise ModelError(f"{path}: a compressed file that does not decompress ({exc}).") from None
    if len(whole) > MAX_FILE_BYTES:
        raise ModelError(f"{path}: decompresses to more than {MAX_FILE_BYTES:,} bytes; refused.")
    return whole


def refuse_class(path, module, name, where):
    """The one-line refusal of a class no served model is made of."""
    if (module, name) in (("sklearn.preprocessing._function_transformer", "FunctionTransformer"),):
        return ModelError(f"{path}: refused: {where}is a FunctionTransformer; {FUNCTION_HINT}")
    return ModelError(f"{path}: refused: {where}names {module}.{name}, which is not a class this service reads "
                      "(docs/models.md lists them), so reading it could run code. Nothing in the file was run.")


# --- pickle and joblib ----------------------------------------------------------------------------------

def stand_in(module, name):
    """What an allowed global becomes: a callable, and a class for NEWOBJ, that gives a `Node`."""
    qualified = f"{module}.{name}"
    return type(name, (), {"__new__": staticmethod(lambda cls=None, *args: Node(qualified, args))})


class Reader(pickle.Unpickler):
    """pickle's unpickler with stand-ins for every global but numpy's data builders."""

    def __init__(self, file, path):
        super().__init__(file)
        self.path = path

    def find_class(self, module, name):
        return allowed_global(module, name, self.path, "the pickle ", super().find_class)


def allowed_global(module, name, path, where, real):
    """What a pickle's global (module, name) is read as: numpy's data builders themselves (`real`), a
    numpy type's name, a stand-in for an allowed class; any other is refused. A protocol-2 pickle's Python 2
    names (`__builtin__.slice`) are read as pickle reads them (`builtins.slice`)."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module),
                                                                    name))
    if (module, name) in NUMPY_GLOBALS:
        return real(module, name)
    if (module, name) == ("builtins", "bytes"):  # pickle protocol 2 writes b"" as bytes()
        return empty_bytes
    if (module, name) in NUMPY_TYPES:
        return f"{module}.{name}"
    if (module, name) in ALLOWED:
        return stand_in(module, name)
    raise refuse_class(path, module, name, where)


def empty_bytes(*args):
    """`bytes()`, the only call of bytes a protocol-2 pickle makes; anything else is not a model's."""
    if args:
        raise pickle.UnpicklingError("bytes called with arguments")
    return b""


def read_pickle(data, path):
    """A pickle, or a joblib file (a pickle that names joblib's array wrapper), as a graph of `Node`s."""
    if b"NumpyArrayWrapper" in data or b"NDArrayWrapper" in data:
        return read_joblib(data, path)
    try:
        return check_graph(Reader(io.BytesIO(data), path).load(), path)
    except ModelError:
        raise
    except Exception as exc:  # a truncated or malformed stream: still a file that cannot be served
        raise ModelError(f"{path}: not a readable pickle ({type(exc).__name__}: {str(exc)[:120]}).") from None


def read_joblib(data, path):
    """A joblib file: joblib's unpickler, its globals those of `Reader`, its arrays of objects read by
    `Reader` as well (joblib itself would read them with plain pickle)."""
    from joblib import numpy_pickle

    class JoblibReader(numpy_pickle.NumpyUnpickler):
        dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()

        def find_class(self, module, name):
            if (module, name) == JOBLIB_ARRAY:
                return numpy_pickle.NumpyArrayWrapper
            return allowed_global(module, name, path, "the joblib file ", super().find_class)

        def load_build(self):
            wrapper = self.stack[-2] if len(self.stack) > 1 else None
            if isinstance(wrapper, numpy_pickle.NDArrayWrapper):
                raise ModelError(f"{path}: a joblib file of before joblib 0.10 (arrays in other files); save it again.")
            pickle._Unpickler.load_build(self)
            wrapper = self.stack[-1]
            if isinstance(wrapper, numpy_pickle.NumpyArrayWrapper):
                self.stack.pop()
                if not isinstance(wrapper.dtype, np.dtype):
                    raise ModelError(f"{path}: an array of joblib's with no dtype.")
                if wrapper.dtype.hasobject:  # joblib would unpickle it with no restriction
                    self.stack.append(Reader(self.file_handle, path).load())
                else:
                    self.stack.append(wrapper.read(self, ensure_native_byte_order=True))
        dispatch[pickle.BUILD[0]] = load_build

    try:
        return check_graph(JoblibReader(str(path), io.BytesIO(data), ensure_native_byte_order=True).load(), path)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: not a readable joblib file ({type(exc).__name__}: {str(exc)[:120]}). A "
                         "compressed joblib file is read too; save it again with joblib.dump.") from None


# --- skops ------------------------------------------------------------------------------------------

def read_skops(data, path):
    """A skops file: its schema walked here, its arrays read without pickle."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelError(f"{path}: a zip file, but not a skops file ({exc}).") from None
    try:
        return check_graph(SkopsReader(archive, path).node(schema, "the top"), path)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{path}: a skops file this service cannot read ({type(exc).__name__}: "
                         f"{str(exc)[:120]}). Save it again with skops.io.dump.") from None


class SkopsReader:
    """Walks a skops schema into plain data and `Node`s, refusing what is not data or an allowed class."""

    def __init__(self, archive, path):
        self.archive, self.path = archive, path

    def node(self, schema, where):
        if not isinstance(schema, dict):
            raise ModelError(f"{self.path}: {where}: not a skops node.")
        loader, module, name = schema.get("__loader__"), schema.get("__module__"), schema.get("__class__")
        content = schema.get("content")
        if loader == "JsonNode":
            return json.loads(content)
        if loader == "DictNode":
            return {key: self.node(value, f"{where}.{key}") for key, value in content.items()}
        if loader in ("ListNode", "TupleNode"):
            items = [self.node(value, f"{where}[{i}]") for i, value in enumerate(content)]
            return items if loader == "ListNode" else tuple(items)
        if loader == "NdArrayNode":
            return self.array(schema, where)
        if loader in ("TypeNode", "DTypeNode"):
            return f"{module}.{name}"
        if loader == "SliceNode":
            return slice(*(self.node(content[k], where) if isinstance(content[k], dict) else content[k]
                           for k in ("start", "stop", "step")))
        if loader in SKOPS_OBJECTS:
            if (module, name) not in ALLOWED:
                raise refuse_class(self.path, module, name, f"{where} ")
            args = ()
            reduced = schema.get("__reduce__")
            if isinstance(reduced, dict) and "args" in reduced:
                args = self.node(reduced["args"], where)
            state = self.node(content, where) if isinstance(content, dict) and "__loader__" in content else None
            return Node(f"{module}.{name}", args, state)
        if loader == "FunctionNode" or loader == "PartialNode":
            raise ModelError(f"{self.path}: refused: {where} is a function ({module}.{name}); {FUNCTION_HINT}")
        raise ModelError(f"{self.path}: refused: {where} is a skops {loader} ({module}.{name}), which holds no "
                         "data a served model needs. Nothing in the file was run.")

    def array(self, schema, where):
        if schema.get("type") == "numpy":
            member = schema.get("file")
            with self.archive.open(member) as raw:
                return np.load(io.BytesIO(raw.read()), allow_pickle=False)
        if schema.get("type") == "json":  # an array of objects (strings, as an encoder's categories), item by item
            items = [self.node(item, f"{where}[{i}]") for i, item in enumerate(schema.get("content"))]
            array = np.empty(len(items), dtype=object)
            array[:] = items
            return array
        raise ModelError(f"{self.path}: {where}: an array stored as {schema.get('type')!r}, which is not read.")


# --- the graph ----------------------------------------------------------------------------------------

def check_graph(graph, path):
    """The graph, once its top is an estimator that can be served; `ModelError` otherwise."""
    if not isinstance(graph, Node) or tuple(graph.name.rsplit(".", 1)) not in ESTIMATORS:
        kind = graph.name if isinstance(graph, Node) else type(graph).__name__
        raise ModelError(f"{path}: holds {kind}, not a fitted estimator or Pipeline this service serves.")
    return graph
