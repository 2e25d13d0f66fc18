"""Reading a pickle without running its code: an exact allow-list of globals, then every attribute checked.

A pickle runs code only by calling a global it names, so `loads_restricted` refuses any global outside
the allow-list a model kind gives, before it is looked up, let alone called. Pickle then sets the
objects' attributes without calling anything, so `check_state` compares every attribute with what the
kind expects (exact types: a callable set where scikit-learn expects a string would be called when
scoring). Each kind keeps its own lists (e.g. `kinds/text_loading.py`).
"""
import io
import pickle

import numpy as np

from store.artifacts import ModelError

NONE = type(None)
# NumPy's array reconstruction, which every fitted model's arrays need: `_reconstruct(ndarray, shape, dtype)`
# makes an empty array, which then takes its bytes; `dtype` describes them.
NUMPY_ARRAYS = frozenset({("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")})


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that no model file needs."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the (module, name) pairs of `allowed`; any other stops the load."""

    def __init__(self, file, allowed):
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module, name):
        """The allowed global `module.name`, or `ForbiddenGlobal` before anything is imported or called."""
        if (module, name) not in self.allowed:
            raise ForbiddenGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def loads_restricted(data, path, allowed):
    """Unpickle bytes through `RestrictedUnpickler` with the globals `allowed`; `path` names them in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), allowed).load()
    except ForbiddenGlobal as exc:
        raise ModelError(f"{path}: refused: the pickle asks for {exc}, which no model file needs, so it may "
                         "run code. Do not use this model folder; rebuild it with `python build_model.py`.") from None
    except Exception as exc:  # a verified file that will not load is still a broken model
        raise ModelError(f"{path}: cannot be unpickled ({exc!r}). Rebuild the model.") from None


def state_problems(obj, expected):
    """What in `obj`'s attributes is not in `expected` ({attribute: type or tuple of types}): an unknown
    attribute, one of another type (exactly: no subclass, no bool for a number), or an array of non-numbers."""
    problems = []
    for name, value in vars(obj).items():
        allowed = expected.get(name)
        allowed = allowed if isinstance(allowed, tuple) else (allowed,)
        if allowed == (None,):
            problems.append(f"unexpected attribute {name!r}")
        elif type(value) not in allowed:
            problems.append(f"{name} is a {type(value).__name__}")
        elif type(value) is np.ndarray and value.dtype.kind not in "biuf":
            problems.append(f"{name} holds {value.dtype} values, not numbers")
    return problems
