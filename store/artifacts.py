"""The artifact contract: what a model folder holds, its manifest, verification, and atomic publishing.

A model folder holds the two pickles the tutorial named, `metrics.json`, plots, and `manifest.json`:
the model's name, labels, hyper-parameters, training data, library versions, creation time and every
other file's sha256. `training/build.py` writes folders with `publish()` and `write_manifest()`;
`kinds/text.py` reads them with `read_verified()`, which checks every hash and the scikit-learn version
*before* unpickling anything: a pickle can run code, so only files that match their manifest are
trusted. It is two steps: `read_files()` verifies the folder and returns the checked bytes, and
`load_files()` checks them again and unpickles them; a Dask worker, which has no folder, runs the
second step on the bytes the client sent.

On disk, `MODEL_DIR/<name>` is a symlink to `MODEL_DIR/.versions/<name>-<time>/`; publishing a new
version switches the link in one `os.replace`, so readers see the old model or the whole new one. The
versions kept, the release commands (`promote`, `rollback`, `shadow`) and their history are below
("Releases"); a running server follows the links by itself (`follower`).
"""
import hashlib
import importlib.metadata
import json
import pickle
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import util

VECTORIZER_FILE = "TFIDFVectorizer.pkl"
CLASSIFIER_FILE = "SentimentClassifier.pkl"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
TUNING_FILE = "tuning.json"
# Every model folder has metrics.json besides the files of its kind; its manifest hashes every file.
VERSIONS_DIR = ".versions"
KEEP_VERSIONS = 5  # versions of each model a publish keeps, besides the live and rollback ones
HISTORY_FILE = "releases.jsonl"
SHADOW_DIR = "shadow"  # .versions/shadow/<name>: the link to the version scored in shadow, if any
LOCK_FILE = ".lock"
# The installed scikit-learn's version, read from its metadata: checking a manifest need not import it.
SKLEARN_VERSION = importlib.metadata.version("scikit-learn")


class ModelError(Exception):
    """A model folder cannot be trusted or used: missing, altered, or built by another scikit-learn."""


# --- Writing ------------------------------------------------------------------------------------

def write_manifest(folder, *, name, kind, labels, hyperparameters, training_data, release=None, inputs=None,
                   target=None, route=None):
    """Write `manifest.json` for the files already in `folder`: what the model is, every file's sha256, and
    `release`, what the build decided: the gate's comparison with the live model, whether the version went
    live, and whether `--promote` overrode the gate. A model of named inputs (not one text) lists them in
    `inputs`, and a regressor describes its number in `target`; a model added with `release.py add` names
    its `route`."""
    util.write_json(Path(folder) / MANIFEST_FILE, {
        "name": name,
        "kind": kind,
        "labels": None if labels is None else list(labels),
        "hyperparameters": hyperparameters,
        "training_data": training_data,
        "versions": {"python": platform.python_version(), "scikit-learn": SKLEARN_VERSION,
                     "numpy": np.__version__, "scipy": importlib.metadata.version("scipy")},
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "artifacts": {p.name: util.sha256_file(p) for p in sorted(Path(folder).iterdir()) if p.name != MANIFEST_FILE},
        **({"release": release} if release is not None else {}),
        **({"inputs": inputs} if inputs is not None else {}),
        **({"target": target} if target is not None else {}),
        **({"route": route} if route is not None else {}),
    })


def write_pickle(path, obj):
    """Pickle `obj` to `path` (a file in a staging folder, which `publish` makes durable)."""
    Path(path).write_bytes(pickle.dumps(obj))


def model_version(manifest):
    """The stable name of a published model version, as answers and `GET /models` show it: its creation
    time and a tag of its files' hashes, e.g. `20261201T184854Z-1a2b3c4d`. Computed from the manifest
    alone, so every server, replica and tool that reads the same folder names it the same way."""
    created = datetime.fromisoformat(manifest["created_at"]).astimezone(UTC)
    files = json.dumps(manifest["artifacts"], sort_keys=True).encode()
    return f"{created:%Y%m%dT%H%M%SZ}-{hashlib.sha256(files).hexdigest()[:8]}"


# --- Reading ------------------------------------------------------------------------------------

def model_folders(model_dir):
    """The model folders under `model_dir`; raise `ModelError` when there are none."""
    model_dir = Path(model_dir)
    # A link whose target is gone still counts, so it fails loudly instead of being skipped.
    folders = sorted(p for p in model_dir.iterdir()
                     if (p.is_dir() or p.is_symlink()) and not p.name.startswith(".")) if model_dir.is_dir() else []
    if not folders:
        raise ModelError(f"{model_dir}: no models found. Build them with `python build_model.py --out {model_dir}`.")
    return folders


def read_files(folder, names):
    """Verify a model folder and return what loading it needs, here or on another machine: {file name: bytes}
    for `manifest.json`, `metrics.json` and `names` (the files of its kind), each the very bytes whose hash
    was checked (so a file swapped after `verify_artifacts` is never used)."""
    folder = resolve_folder(folder)
    files = {MANIFEST_FILE: read_manifest_bytes(folder)}
    manifest = parse_manifest(files[MANIFEST_FILE], folder / MANIFEST_FILE)
    needed = (*names, METRICS_FILE)
    check_listed(manifest, needed, folder / MANIFEST_FILE)
    verify_artifacts(folder, manifest)
    files.update({name: (folder / name).read_bytes() for name in needed})
    check_hashes(files, manifest, needed, folder,
                 "changed while the model was loading; refusing to load it. Try again.")
    return files


def check_files(files, origin, names):
    """(manifest, metrics) of `read_files`' bytes, after checking the manifest and every hash again: run where
    the model is used (a Dask worker checks here what the client sent), whose scikit-learn must be the one
    that built it. `ModelError` names `origin`, the folder the bytes came from."""
    origin = Path(origin)
    manifest = parse_manifest(files[MANIFEST_FILE], origin / MANIFEST_FILE)
    needed = (*names, METRICS_FILE)
    check_listed(manifest, needed, origin / MANIFEST_FILE)
    missing = [name for name in needed if name not in files]
    if missing:
        raise ModelError(f"{origin}: {', '.join(missing)} did not arrive with the model. Try again.")
    check_hashes(files, manifest, needed, origin, "sha256 does not match manifest.json on arrival; the bytes were "
                                                  "altered on the way. Refusing to load them.")
    try:
        metrics = json.loads(files[METRICS_FILE])
    except ValueError:
        raise ModelError(f"{origin / METRICS_FILE}: not valid JSON. Rebuild the model.") from None
    return manifest, metrics


def check_listed(manifest, names, path):
    """`ModelError` unless the manifest at `path` lists a hash for every one of `names`."""
    missing = [name for name in names if name not in manifest["artifacts"]]
    if missing:
        raise ModelError(f"{path}: lists no hash for {', '.join(missing)}. Rebuild the model.")


def check_hashes(files, manifest, names, folder, problem):
    """`ModelError` naming the first of `names` whose bytes do not match the manifest's sha256."""
    for name in names:
        if hashlib.sha256(files[name]).hexdigest() != manifest["artifacts"][name]:
            raise ModelError(f"{folder / name}: {problem}")


def resolve_folder(folder):
    """The real folder behind a model folder or its link; `ModelError` if there is none."""
    real = Path(folder).resolve()
    if not real.is_dir():
        via = f" (it links to {real}, which is gone)" if Path(folder).is_symlink() else ""
        raise ModelError(f"{folder}: no such model folder{via}. Build it with `python build_model.py`.")
    return real


def read_manifest(folder):
    """Read and sanity-check `manifest.json` of a model folder."""
    return parse_manifest(read_manifest_bytes(folder), folder / MANIFEST_FILE)


def read_manifest_bytes(folder):
    """The bytes of a model folder's `manifest.json`."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing. Rebuild the model with `python build_model.py`.")
    return path.read_bytes()


def parse_manifest(data, path):
    """Parse and sanity-check the bytes of a manifest; `path` names it in errors."""
    try:
        manifest = json.loads(data)
        artifacts = manifest["artifacts"]
        trained_with = manifest["versions"]["scikit-learn"]
        manifest["name"], manifest["created_at"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: not a valid manifest ({exc!r}). Rebuild the model.") from None
    if not isinstance(artifacts, dict):
        raise ModelError(f"{path}: 'artifacts' must map file names to sha256 hashes. Rebuild the model.")
    if trained_with != SKLEARN_VERSION:
        raise ModelError(
            f"{path}: trained with scikit-learn {trained_with}, but {SKLEARN_VERSION} is installed. "
            "Install the version in requirements.txt or rebuild the model.")
    return manifest


def verify_artifacts(folder, manifest):
    """Check each artifact's sha256 against the manifest before anything is unpickled."""
    for name, expected in manifest["artifacts"].items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path}: missing. Rebuild the model with `python build_model.py`.")
        if util.sha256_file(path) != expected:
            raise ModelError(
                f"{path}: sha256 does not match manifest.json; the file was altered or truncated. "
                "Refusing to load it. Rebuild the model with `python build_model.py`.")
