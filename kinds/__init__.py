"""Model kinds: each one small module behind the interface of `serving.kind.ModelKind`.

`load(folder)` reads a verified model folder as the kind its manifest names (a manifest without a
`kind` is a text classifier, as every folder was before there were kinds); `load_models(model_dir)`
loads every live model of a model directory. The web app, the follower, the batch engines, the build
and the commands load models through these two, and never ask which kind they hold.

A kind's module is imported when a model of that kind is first loaded: the text classifier's brings in
scikit-learn (its pickles are read as scikit-learn's classes), which costs a command like
`predict.py --model ratings` more than a second it has no need of.
"""
import importlib
from pathlib import Path

from store import artifacts
from store.artifacts import ModelError

# Each kind's name, as a manifest's `kind` says it, and where its class lives.
KINDS = {"text-classifier": ("kinds.text", "TextClassifier"),
         "tabular-regressor": ("kinds.tabular", "TabularRegressor"),
         "tabular-classifier": ("kinds.tabular_classifier", "TabularClassifier"),
         "tree-regressor": ("kinds.forest", "TreeRegressor"),
         "tree-classifier": ("kinds.forest", "TreeClassifier")}
DEFAULT_KIND = "text-classifier"


def kind_of(manifest, origin):
    """The class of the kind a manifest names; `ModelError` for a kind this server does not know."""
    name = manifest.get("kind", DEFAULT_KIND)
    if name not in KINDS:
        raise ModelError(f"{origin}: a model of kind {str(name)[:64]!r}, which this server does not serve "
                         f"(it knows {', '.join(KINDS)}). Update the server, or rebuild the model.")
    module, cls = KINDS[name]
    return getattr(importlib.import_module(module), cls)


def load(folder):
    """Verify and load a model folder as its kind; `ModelError` naming the file at fault."""
    folder = artifacts.resolve_folder(folder)  # one fixed version, even if a release swaps the link meanwhile
    return kind_of(artifacts.read_manifest(folder), folder).load(folder)


def from_files(files, origin):
    """A model from `store.artifacts.read_files`' bytes (a Dask worker's copy), checked again as its kind."""
    origin = Path(origin)
    manifest = artifacts.parse_manifest(files[artifacts.MANIFEST_FILE], origin / artifacts.MANIFEST_FILE)
    return kind_of(manifest, origin).from_files(files, origin)


def read_files(folder):
    """What loading a model folder needs, verified, to send to another process: {file name: bytes}."""
    folder = artifacts.resolve_folder(folder)
    return artifacts.read_files(folder, kind_of(artifacts.read_manifest(folder), folder).FILES)


def load_models(model_dir):
    """Load every model folder under `model_dir`, keyed by name; raise `ModelError` if any is bad, or if two
    folders hold the same model (a copy kept beside the live one must not silently replace it)."""
    models, folders = {}, {}
    for folder in artifacts.model_folders(model_dir):
        loaded = load(folder)
        if loaded.name in models:
            raise ModelError(f"{folders[loaded.name]} and {folder} both hold the {loaded.name} model; MODEL_DIR "
                             "serves one folder per model. Move the copy you do not mean to serve out of "
                             f"{model_dir} (keep backups elsewhere).")
        models[loaded.name], folders[loaded.name] = loaded, folder
    return models
