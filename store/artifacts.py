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
import contextlib
import fcntl
import getpass
import hashlib
import io
import json
import os
import pickle
import platform
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy
import sklearn
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

import util

VECTORIZER_FILE = "TFIDFVectorizer.pkl"
CLASSIFIER_FILE = "SentimentClassifier.pkl"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
TUNING_FILE = "tuning.json"
# Files every model folder must have and its manifest must hash; plots and tuning.json are hashed too.
REQUIRED_FILES = (VECTORIZER_FILE, CLASSIFIER_FILE, METRICS_FILE)
VERSIONS_DIR = ".versions"
KEEP_VERSIONS = 5  # versions of each model a publish keeps, besides the live and rollback ones
HISTORY_FILE = "releases.jsonl"
SHADOW_DIR = "shadow"  # .versions/shadow/<name>: the link to the version scored in shadow, if any
LOCK_FILE = ".lock"


class ModelError(Exception):
    """A model folder cannot be trusted or used: missing, altered, or built by another scikit-learn."""


# --- Writing ------------------------------------------------------------------------------------

def write_manifest(folder, *, name, labels, hyperparameters, training_data, release=None):
    """Write `manifest.json` for the files already in `folder`: what the model is, every file's sha256, and
    `release`, what the build decided: the gate's comparison with the live model, whether the version went
    live, and whether `--promote` overrode the gate."""
    util.write_json(Path(folder) / MANIFEST_FILE, {
        "name": name,
        "labels": list(labels),
        "hyperparameters": hyperparameters,
        "training_data": training_data,
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "scipy": scipy.__version__},
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "artifacts": {p.name: util.sha256_file(p) for p in sorted(Path(folder).iterdir()) if p.name != MANIFEST_FILE},
        **({"release": release} if release is not None else {}),
    })


def write_pickle(path, obj):
    """Pickle `obj` to `path` (a file in a staging folder, which `publish` makes durable)."""
    Path(path).write_bytes(pickle.dumps(obj))


def publish(out_dir, name, write, *, live=True, keep=KEEP_VERSIONS, why=""):
    """Publish a model folder atomically: a new model appears whole, or the old one stays.

    `write(folder)` fills a private staging folder; it is then renamed to
    `DIR/.versions/<name>-<time>/` and, when `live`, the symlink `DIR/<name>` is switched to it with one
    `os.replace` (otherwise it is a candidate, which serves nothing until `promote`). A build that fails
    removes its staging folder before the error goes on; a build killed at any point leaves `DIR/<name>`
    pointing at the previous model, and its leftovers are removed by the next build. Builds and release
    commands take turns (`release_lock`) from the rename on; the publish is written to the release
    history with `why`, and the model's versions beyond the newest `keep` are removed (`prune`).
    Returns the new version's folder.
    """
    out_dir = Path(out_dir)
    versions = out_dir / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(versions)
    staging = Path(tempfile.mkdtemp(dir=versions, prefix=f"staging-{os.getpid()}-"))
    try:
        write(staging)
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        # mkdtemp makes the folder private (0700); a server running as another user must read it.
        os.chmod(staging, 0o777 & ~util.UMASK)
        with release_lock(out_dir):
            final = versions / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
            os.rename(staging, final)
            before = live_folder(out_dir, name)
            if live:
                previous = switch_link(out_dir, name, final)
                before = before or previous  # a folder copied in by hand, now kept as a version
            record_release(out_dir, name, "publish" if live else "candidate", before, final, why)
            prune(out_dir, name, keep=keep, also=(before,))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a full disk must not stay full of a failed build
        raise
    return final


def switch_link(out_dir, name, final):
    """Point `out_dir/name` at `final` in one `os.replace`; return the version it pointed at before."""
    link = out_dir / name
    previous = link.resolve() if link.is_symlink() else None
    if link.is_dir() and not link.is_symlink():  # a folder copied in by hand: keep it as a version
        previous = out_dir / VERSIONS_DIR / f"{name}-copied-{time.time_ns()}"
        os.rename(link, previous)
    replace_link(link, final)
    return previous


def replace_link(link, target):
    """Make `link` a relative symlink to `target` in one `os.replace` of a temporary link beside it."""
    tmp_link = link.parent / f".{link.name}.{os.getpid()}.link"
    tmp_link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp_link)
    os.replace(tmp_link, link)


def remove_abandoned_staging(versions):
    """Delete staging folders and temporary links left by builds that were killed (their process is gone)."""
    leftovers = [(path, path.name.split("-")[1]) for path in versions.glob("staging-*")]
    leftovers += [(path, path.name.split(".")[-2]) for path in versions.parent.glob(".*.*.link")]
    for path, pid in leftovers:
        if not pid.isdigit() or process_exists(int(pid)):
            continue
        if path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


def process_exists(pid):
    """True while process `pid` runs (or belongs to another user, so it cannot be checked)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Releases: versions, the live links, the history ---------------------------------------------
#
# MODEL_DIR/<name>                     the live version (what servers answer with), a symlink
# MODEL_DIR/.versions/<name>-<time>/   every version kept: live, earlier ones, candidates
# MODEL_DIR/.versions/shadow/<name>    the version scored in shadow beside the live one, a symlink if any
# MODEL_DIR/.versions/releases.jsonl   the release history, one JSON object per line
# MODEL_DIR/.versions/.lock            taken by builds and release commands while they change any of these
#
# All of it under `.versions/`, which `model_folders` never reads, except the live links: a copy of a
# folder cannot stand in for a release.

VERSION_FOLDER = re.compile(r"(.+)-(\d{8}T\d+Z|copied-\d+)")  # <name>-<UTC time>, or <name>-copied-<ns>


class ReleaseError(Exception):
    """A release command cannot be carried out: an unknown version, nothing to roll back to."""


@contextlib.contextmanager
def release_lock(model_dir):
    """Hold the lock builds and release commands take turns on; released on exit, or when a killed
    holder's process ends."""
    versions = Path(model_dir) / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    with open(versions / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def live_folder(model_dir, name):
    """The version folder `MODEL_DIR/<name>` links to, or None (no link, or a folder copied in by hand)."""
    link = Path(model_dir) / name
    return link.resolve() if link.is_symlink() else None


def shadow_folder(model_dir, name):
    """The version folder `name`'s shadow link points at, or None when it has no shadow."""
    link = Path(model_dir) / VERSIONS_DIR / SHADOW_DIR / name
    return link.resolve() if link.is_symlink() else None


def version_folders(model_dir, name):
    """Every kept version folder of model `name`, oldest first. Copies of one version (same manifest) sort
    by folder name, so the first published is the one `folder_of` finds, and a later copy can be pruned."""
    versions = Path(model_dir) / VERSIONS_DIR
    found = [p for p in versions.iterdir() if p.is_dir() and (m := VERSION_FOLDER.fullmatch(p.name))
             and m.group(1) == name] if versions.is_dir() else []
    return sorted(found, key=lambda folder: (created_time(folder), folder.name))


def peek_manifest(folder):
    """A version folder's manifest as JSON, unchecked, for naming and ordering versions; None if unreadable."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST_FILE).read_bytes())
        manifest["created_at"], manifest["artifacts"]
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def created_time(folder):
    """When a version was made: its manifest's `created_at`, or the folder's time if that cannot be read."""
    manifest = peek_manifest(folder)
    try:
        return datetime.fromisoformat(manifest["created_at"]).timestamp()
    except (ValueError, TypeError):
        return folder.stat().st_mtime


def prune(model_dir, name, *, keep=KEEP_VERSIONS, also=()):
    """Delete the versions of `name` but the newest `keep`, the live one, the one in shadow, the one a
    rollback goes to, and those in `also` (the version a publish just replaced: a server may still be loading it).
    Versions that a killed build renamed into place but never published go too, once older than `keep`."""
    folders = version_folders(model_dir, name)
    protected = {live_folder(model_dir, name), shadow_folder(model_dir, name), *also}
    target = rollback_target(model_dir, name)
    if target is not None:
        protected.add(folder_of(model_dir, name, target, missing_ok=True))
    protected = {Path(p).resolve() for p in protected if p is not None}
    for path in folders[:max(len(folders) - keep, 0)]:
        if path.resolve() not in protected:
            shutil.rmtree(path, ignore_errors=True)


def version_of_folder(folder):
    """The `model_version` of a version folder, read from its manifest; None if it cannot be read."""
    manifest = peek_manifest(folder)
    try:
        return model_version(manifest) if manifest else None
    except (ValueError, TypeError):
        return None


def folder_of(model_dir, name, version, *, missing_ok=False):
    """The kept folder of model `name` whose `model_version` (or folder name) is `version`."""
    for folder in version_folders(model_dir, name):
        if version in (folder.name, version_of_folder(folder)):
            return folder
    if missing_ok:
        return None
    raise ReleaseError(f"{name} has no version {version!r} in {Path(model_dir) / VERSIONS_DIR}; "
                       f"`python release.py list {name}` shows the versions kept.")


def record_release(model_dir, name, action, before, after, why):
    """Append one line to the release history: when, which model, what was done, from and to which
    version (their `model_version`s), why and by whom. Called with the release lock held."""
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "model": name, "action": action,
             "from": version_of_folder(before) if before else None,
             "to": version_of_folder(after) if after else None,
             "why": why, "by": f"{user()}@{platform.node()}"}
    path = Path(model_dir) / VERSIONS_DIR / HISTORY_FILE
    with open(path, "a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")
        history.flush()
        os.fsync(history.fileno())


def user():
    """Who runs this command, for the history (a container's user may have no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def release_history(model_dir, name=None):
    """The release history, oldest first: every entry, or model `name`'s."""
    path = Path(model_dir) / VERSIONS_DIR / HISTORY_FILE
    if not path.is_file():
        return []
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [entry for entry in entries if name is None or entry["model"] == name]


def rollback_target(model_dir, name):
    """The `model_version` a rollback of `name` goes to: the one live before the live one became live
    (rollbacks undo, so two in a row go two steps back), or None when the history does not say."""
    folder = live_folder(model_dir, name)
    live = version_of_folder(folder) if folder else None
    lineage = []  # the versions made live in turn; a rollback steps back one
    for entry in release_history(model_dir, name):
        if entry["action"] in ("publish", "promote"):
            lineage.append(entry["to"])
        elif entry["action"] == "rollback":
            while lineage and lineage[-1] != entry["to"]:
                lineage.pop()
            lineage = lineage or [entry["to"]]
    if len(lineage) < 2 or lineage[-1] != live:
        return None
    return lineage[-2]


def promote(model_dir, name, version, *, why="", action="promote"):
    """Make `version` of model `name` live: verified first, then one link switch, recorded; a shadow of
    the same version is turned off. Returns the (before, after) versions."""
    with release_lock(model_dir):
        folder = folder_of(model_dir, name, version)
        read_verified(folder)  # never make live what a server would refuse
        before = live_folder(model_dir, name)
        if before == folder.resolve():
            raise ReleaseError(f"{name} {version_of_folder(folder)} is already live.")
        replace_link(Path(model_dir) / name, folder)
        record_release(model_dir, name, action, before, folder, why)
        if shadow_folder(model_dir, name) == folder.resolve():  # the shadow made live: nothing left to compare
            (Path(model_dir) / VERSIONS_DIR / SHADOW_DIR / name).unlink()
            record_release(model_dir, name, "shadow-off", folder, None, f"{version_of_folder(folder)} made live")
        return version_of_folder(before) if before else None, version_of_folder(folder)


def rollback(model_dir, name, *, why=""):
    """Make the version live before the live one live again (`rollback_target`)."""
    target = rollback_target(model_dir, name)
    if target is None:
        raise ReleaseError(f"the release history records no version of {name} live before the live one; "
                           f"choose one from `python release.py list {name}` and promote it.")
    if folder_of(model_dir, name, target, missing_ok=True) is None:
        raise ReleaseError(f"{name} {target}, live before, is no longer kept; choose one from "
                           f"`python release.py list {name}` and promote it.")
    return promote(model_dir, name, target, why=why, action="rollback")


def shadow(model_dir, name, version, *, why=""):
    """Score `version` of model `name` in shadow beside the live one (verified first, one link switch,
    recorded); `version` None turns the shadow off. Returns the (before, after) shadow versions."""
    with release_lock(model_dir):
        before = shadow_folder(model_dir, name)
        link = Path(model_dir) / VERSIONS_DIR / SHADOW_DIR / name
        if version is None:
            if before is None:
                raise ReleaseError(f"{name} has no shadow to turn off.")
            link.unlink()
            record_release(model_dir, name, "shadow-off", before, None, why)
            return version_of_folder(before), None
        folder = folder_of(model_dir, name, version)
        read_verified(folder)  # never put in shadow what a server would refuse
        if folder.resolve() == live_folder(model_dir, name):
            raise ReleaseError(f"{name} {version_of_folder(folder)} is the live version; a shadow is another "
                               "version scored beside it.")
        link.parent.mkdir(exist_ok=True)
        replace_link(link, folder)
        record_release(model_dir, name, "shadow", before, folder, why)
        return version_of_folder(before) if before else None, version_of_folder(folder)


def model_names(model_dir):
    """The names of the models with a live link or kept versions under `model_dir`."""
    model_dir = Path(model_dir)
    names = {p.name for p in model_dir.iterdir() if p.is_symlink() and not p.name.startswith(".")} \
        if model_dir.is_dir() else set()
    versions = model_dir / VERSIONS_DIR
    names |= {m.group(1) for p in (versions.iterdir() if versions.is_dir() else ())
              if (m := VERSION_FOLDER.fullmatch(p.name))}
    return sorted(names)


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


def read_verified(folder):
    """Verify a model folder and load it; return (manifest, vectorizer, classifier, metrics).

    Raises `ModelError` naming the file at fault. Every hash is checked before anything is unpickled,
    the pickles are read with `RestrictedUnpickler`, and the objects are checked by `check_loaded`.
    """
    folder = resolve_folder(folder)  # one fixed version, even if a build swaps the link meanwhile
    return load_files(read_files(folder), folder)


def read_files(folder):
    """Verify a model folder and return what loading it needs, here or on another machine: {file name: bytes}
    for `manifest.json` and `REQUIRED_FILES`, each the very bytes whose hash was checked (so a file swapped
    after `verify_artifacts` is never used)."""
    folder = resolve_folder(folder)
    files = {MANIFEST_FILE: read_manifest_bytes(folder)}
    manifest = parse_manifest(files[MANIFEST_FILE], folder / MANIFEST_FILE)
    verify_artifacts(folder, manifest)
    files.update({name: (folder / name).read_bytes() for name in REQUIRED_FILES})
    check_hashes(files, manifest, folder, "changed while the model was loading; refusing to load it. Try again.")
    return files


def load_files(files, origin):
    """Load a model from `read_files`' bytes, checking the manifest and every hash again first.

    Returns (manifest, vectorizer, classifier, metrics), or raises `ModelError` naming `origin`, the
    folder the bytes came from. Run where the model is used (a Dask worker checks here what the client
    sent): its scikit-learn must be the one that built it.
    """
    origin = Path(origin)
    manifest = parse_manifest(files[MANIFEST_FILE], origin / MANIFEST_FILE)
    check_hashes(files, manifest, origin, "sha256 does not match manifest.json on arrival; the bytes were "
                                          "altered on the way. Refusing to load them.")
    vectorizer = loads_restricted(files[VECTORIZER_FILE], origin / VECTORIZER_FILE)
    check_loaded(origin / VECTORIZER_FILE, vectorizer, TfidfVectorizer)
    classifier = loads_restricted(files[CLASSIFIER_FILE], origin / CLASSIFIER_FILE)
    check_loaded(origin / CLASSIFIER_FILE, classifier, MultinomialNB)
    return manifest, vectorizer, classifier, json.loads(files[METRICS_FILE])


def check_hashes(files, manifest, folder, problem):
    """`ModelError` naming the first of `REQUIRED_FILES` whose bytes do not match the manifest's sha256."""
    for name in REQUIRED_FILES:
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
        manifest["name"], manifest["labels"], manifest["created_at"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: not a valid manifest ({exc!r}). Rebuild the model.") from None
    if not isinstance(artifacts, dict):
        raise ModelError(f"{path}: 'artifacts' must map file names to sha256 hashes. Rebuild the model.")
    missing = [name for name in REQUIRED_FILES if name not in artifacts]
    if missing:
        raise ModelError(f"{path}: lists no hash for {', '.join(missing)}. Rebuild the model.")
    if trained_with != sklearn.__version__:
        raise ModelError(
            f"{path}: trained with scikit-learn {trained_with}, but {sklearn.__version__} is installed. "
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


# --- Unpickling with an exact allow-list ---------------------------------------------------------

# Every global a model pickle may name, compared whole as (module, name): pickle's only way to run code
# is to call a global it names, so anything else is refused before it is looked up, let alone called.
# The list is what the build's own pickles ask for, for every setting the tuner can choose
# (tests/store/test_artifacts.py proves it complete).
ALLOWED_GLOBALS = {
    # The two fitted objects, and the TF-IDF weighting the vectorizer keeps as `_tfidf`. Pickle creates
    # them empty (no __init__) and sets their attributes; `check_loaded` then checks every attribute.
    ("sklearn.feature_extraction.text", "TfidfVectorizer"),
    ("sklearn.feature_extraction.text", "TfidfTransformer"),
    ("sklearn.naive_bayes", "MultinomialNB"),
    # NumPy's array reconstruction: `_reconstruct(ndarray, shape, dtype)` makes an empty array, which
    # then takes its bytes; `dtype` describes them. idf_, feature_log_prob_, classes_ ... are such arrays.
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # The vectorizer's `dtype` setting, the class numpy.float64 itself.
    ("numpy", "float64"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ALLOWED_GLOBALS; any other global stops the load."""

    def find_class(self, module, name):
        """The allowed global `module.name`, or `ForbiddenGlobal` before anything is imported or called."""
        if (module, name) not in ALLOWED_GLOBALS:
            raise ForbiddenGlobal(f"{module}.{name}")
        return super().find_class(module, name)


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that no model file needs."""


def loads_restricted(data, path):
    """Unpickle bytes through `RestrictedUnpickler`; `path` names them in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except ForbiddenGlobal as exc:
        raise ModelError(f"{path}: refused: the pickle asks for {exc}, which no model file needs, so it may "
                         "run code. Do not use this model folder; rebuild it with `python build_model.py`.") from None
    except Exception as exc:  # a verified file that will not load is still a broken model
        raise ModelError(f"{path}: cannot be unpickled ({exc!r}). Rebuild the model.") from None


# --- What the loaded objects must be -------------------------------------------------------------

# Every attribute a fitted object may carry, with the types it may have. An unknown attribute, or one
# of another type, is refused: pickle sets attributes without calling anything, and a callable set
# where scikit-learn expects a string (an `analyzer`, a `tokenizer`) would be called when scoring.
NONE = type(None)
EXPECTED_STATE = {
    TfidfVectorizer: {
        "input": str, "encoding": str, "decode_error": str, "strip_accents": (NONE, str), "preprocessor": NONE,
        "tokenizer": NONE, "analyzer": str, "lowercase": bool, "token_pattern": (str, NONE),
        "stop_words": (NONE, str, list, frozenset), "max_df": (float, int), "min_df": (int, float),
        "max_features": (NONE, int), "ngram_range": tuple, "vocabulary": NONE, "binary": bool, "dtype": type,
        "norm": (str, NONE), "use_idf": bool, "smooth_idf": bool, "sublinear_tf": bool,
        "_tfidf": TfidfTransformer, "fixed_vocabulary_": bool, "_stop_words_id": int, "vocabulary_": dict,
    },
    TfidfTransformer: {"norm": (str, NONE), "use_idf": bool, "smooth_idf": bool, "sublinear_tf": bool,
                       "n_features_in_": int, "idf_": np.ndarray},
    MultinomialNB: {
        "alpha": (float, int), "fit_prior": bool, "class_prior": NONE, "force_alpha": bool, "n_features_in_": int,
        "classes_": np.ndarray, "class_count_": np.ndarray, "feature_count_": np.ndarray,
        "feature_log_prob_": np.ndarray, "class_log_prior_": np.ndarray,
    },
}
ANALYZERS = ("word", "char", "char_wb")


def check_loaded(path, obj, kind):
    """Raise `ModelError` unless `obj` is exactly a `kind` whose every attribute has an expected type."""
    if type(obj) is not kind:
        raise ModelError(f"{path}: holds a {type(obj).__name__}, not a {kind.__name__}. Rebuild the model.")
    problems = []
    for name, value in vars(obj).items():
        allowed = EXPECTED_STATE[kind].get(name)
        allowed = allowed if isinstance(allowed, tuple) else (allowed,)
        if allowed == (None,):
            problems.append(f"unexpected attribute {name!r}")
        elif type(value) not in allowed:  # exact types: no subclass, and no bool where a number is expected
            problems.append(f"{name} is a {type(value).__name__}")
        elif type(value) is np.ndarray and value.dtype.kind not in "biuf":
            problems.append(f"{name} holds {value.dtype} values, not numbers")
        elif type(value) is TfidfTransformer:
            check_loaded(path, value, TfidfTransformer)
    if kind is TfidfVectorizer:
        problems += vectorizer_problems(obj)
    if problems:
        raise ModelError(f"{path}: refused, not a model the build writes: {'; '.join(problems)}. "
                         "Rebuild the model with `python build_model.py`.")


def vectorizer_problems(vectorizer):
    """What in a vectorizer's settings the build never writes: a callable, an unknown analyzer, odd vocabulary."""
    problems = []
    state = vars(vectorizer)
    if state.get("analyzer") not in ANALYZERS:
        problems.append(f"analyzer is {state.get('analyzer')!r}")
    if state.get("dtype") is not np.float64:
        problems.append("dtype is not numpy.float64")
    ngrams = state.get("ngram_range")
    if not (isinstance(ngrams, tuple) and len(ngrams) == 2 and all(type(n) is int for n in ngrams)):
        problems.append("ngram_range is not two whole numbers")
    vocabulary = state.get("vocabulary_", {})
    if not all(type(term) is str and type(index) is int for term, index in vocabulary.items()):
        problems.append("vocabulary_ maps something other than words to column numbers")
    return problems
