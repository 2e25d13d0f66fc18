"""The artifact contract (artifacts.py): a model folder is verified file by file before anything is
unpickled, and publishing is atomic: a new model appears whole or the old one stays, whether the build
fails, runs out of disk, is killed half-way, or runs beside another build."""
import copyreg
import errno
import functools
import io
import operator
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion

import kinds
from app import create_app
from kinds import text_loading
from kinds.text_scoring import feature_parts
from store import artifacts, releases
from store.unpickle import RestrictedUnpickler
from support import ROOT, Call, edit_manifest, install, published, run_build, wait_for
from training import build as build_model
from training import data as training_data
from training import recipes

NAMES = ["binary", "fine-grained"]
PICKLES = [artifacts.VECTORIZER_FILE, artifacts.CLASSIFIER_FILE]
PAGE = 4096





def loads_and_scores(folder):
    """True when the model in `folder` loads and answers with one of its labels."""
    loaded = kinds.load(folder)
    return loaded.predict(["a brilliant film"])[0]["prediction"] in loaded.labels


# --- Verified before it is trusted ---------------------------------------------------------------

class Marker:
    """Unpickling this creates a folder: the proof that a pickle was (or was not) unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


MANIFEST = artifacts.MANIFEST_FILE
BREAKAGES = {  # how the folder is broken: (do it to the folder, the file the message must name, a phrase in it)
    "vectorizer tampered": (lambda f: flip_last_byte(f / artifacts.VECTORIZER_FILE), artifacts.VECTORIZER_FILE,
                            "sha256 does not match manifest.json"),
    "classifier truncated": (lambda f: truncate(f / artifacts.CLASSIFIER_FILE), artifacts.CLASSIFIER_FILE,
                             "altered or truncated"),
    "vectorizer missing": (lambda f: (f / artifacts.VECTORIZER_FILE).unlink(), artifacts.VECTORIZER_FILE, "missing"),
    "classifier missing": (lambda f: (f / artifacts.CLASSIFIER_FILE).unlink(), artifacts.CLASSIFIER_FILE, "missing"),
    "metrics tampered": (lambda f: (f / artifacts.METRICS_FILE).write_text('{"accuracy": 1.0}'),
                         artifacts.METRICS_FILE, "sha256"),
    "metrics missing": (lambda f: (f / artifacts.METRICS_FILE).unlink(), artifacts.METRICS_FILE, "missing"),
    "plot tampered": (lambda f: truncate(f / "confusion.png"), "confusion.png", "sha256"),
    "manifest missing": (lambda f: (f / MANIFEST).unlink(), MANIFEST, "missing. Rebuild the model"),
    "manifest truncated": (lambda f: truncate(f / MANIFEST), MANIFEST, "not a valid manifest"),
    "manifest not an object": (lambda f: (f / MANIFEST).write_text("[]"), MANIFEST, "not a valid manifest"),
    "manifest artifacts not a mapping": (lambda f: edit_manifest(f, lambda m: m.update(artifacts=PICKLES)),
                                         MANIFEST, "'artifacts' must map file names to sha256 hashes"),
    "manifest without a pickle's hash": (
        lambda f: edit_manifest(f, lambda m: m["artifacts"].pop(artifacts.CLASSIFIER_FILE)), MANIFEST,
        f"lists no hash for {artifacts.CLASSIFIER_FILE}"),
    "another scikit-learn": (lambda f: edit_manifest(f, lambda m: m["versions"].update({"scikit-learn": "0.24.2"})),
                             MANIFEST, "trained with scikit-learn 0.24.2"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_model_folder_is_refused_with_one_line_naming_the_file(models, breakage):
    break_it, file_name, phrase = BREAKAGES[breakage]
    folder = (models / "binary").resolve()
    break_it(folder)
    with pytest.raises(artifacts.ModelError) as refused:
        kinds.load(models / "binary")
    assert str(folder / file_name) in str(refused.value)
    assert phrase in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_swapped_pickle_is_never_unpickled(models, tmp_path):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(Marker(marker))
    pickle.loads(evil)  # the proof works: unpickling this file does leave the marker
    assert marker.exists()
    marker.rmdir()
    for name in PICKLES:  # the manifest keeps the real pickles' hashes
        (models / "binary" / name).write_bytes(evil)
    with pytest.raises(artifacts.ModelError, match="sha256 does not match"):
        kinds.load(models / "binary")
    assert not marker.exists()


def test_a_pickle_swapped_after_its_hash_was_checked_is_never_unpickled(models, tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    check = artifacts.verify_artifacts

    def check_then_swap(folder, manifest):
        check(folder, manifest)  # the files are good when checked, then replaced before they are read
        for name in PICKLES:
            (folder / name).write_bytes(pickle.dumps(Marker(marker)))

    monkeypatch.setattr(artifacts, "verify_artifacts", check_then_swap)
    with pytest.raises(artifacts.ModelError, match="changed while the model was loading"):
        kinds.load(models / "binary")
    assert not marker.exists()



# --- Pickles that cannot run code -----------------------------------------------------------------
class EvilClassifier(MultinomialNB):
    """A subclass of an allowed class, defined elsewhere, that runs code when its state is set."""

    def __setstate__(self, state):
        open(state.pop("_marker"), "w").close()
        super().__setstate__(state)


class EvilLogistic(LogisticRegression):
    """The same, dressed as the other family."""

    def __setstate__(self, state):
        open(state.pop("_marker"), "w").close()
        super().__setstate__(state)


def stack_global_call(module, name, argument):
    """A protocol-4 pickle calling `module`'s `name` (which may be dotted) with one string argument."""
    def text(value):
        encoded = value.encode()
        return b"\x8c" + bytes([len(encoded)]) + encoded  # SHORT_BINUNICODE
    # PROTO 4, module, name, STACK_GLOBAL, the argument, TUPLE1, REDUCE, STOP
    return b"\x80\x04" + text(module) + text(name) + b"\x93" + text(argument) + b"\x85R."


def payloads(marker, workdir):
    """Each hostile pickle by name, as bytes; each creates `marker` when unpickled by plain pickle."""
    touch = f"touch {marker}"
    return {**{name: pickle.dumps(payload) for name, payload in payload_objects(marker, workdir).items()},
            "posix.system": stack_global_call("posix", "system", touch),
            "dotted name inside an sklearn module": stack_global_call("sklearn.datasets._base", "os.system", touch)}


def dressed(payload, dress):
    """A hostile object dressed as one of the new classes: the second part of a FeatureUnion, or a fitted
    attribute of a LogisticRegression. Pickled, it runs its code when unpickled, as the bare one does."""
    if dress == "FeatureUnion part":
        return pickle.dumps(FeatureUnion([("words", TfidfVectorizer()), ("chars", payload)]))
    regression = LogisticRegression()
    regression.coef_ = payload
    return pickle.dumps(regression)


def payload_objects(marker, workdir):
    """The hostile payloads that are Python objects (all but the two written opcode by opcode), by name."""
    touch = f"touch {marker}"
    second = workdir / "second.npy"
    second.write_bytes(pickle.dumps(Call(os.system, touch)))
    evil, evil_logistic = EvilClassifier(), EvilLogistic()
    evil._marker = evil_logistic._marker = str(marker)
    return {
        "os.system": Call(os.system, touch),
        "builtins.exec": Call(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": Call(subprocess.call, ["touch", str(marker)]),
        "getattr(__import__('os'), 'system')": Call(Call(getattr, Call(__import__, "os"), "system"), touch),
        "numpy.load of a second pickle": Call(np.load, str(second), None, True),
        "copyreg._reconstructor": Call(copyreg._reconstructor, subprocess.Popen, subprocess.Popen,
                                       ["touch", str(marker)]),
        "functools.partial": Call(Call(functools.partial, os.system, touch)),
        "operator.attrgetter": Call(Call(operator.attrgetter("system"), Call(__import__, "os")), touch),
        "object array holding a call": np.array([Call(os.system, touch)], dtype=object),
        "subclass of an allowed class": evil,
        "subclass of LogisticRegression": evil_logistic,
    }


DRESSES = ["FeatureUnion part", "LogisticRegression state"]


@pytest.mark.parametrize("dress", DRESSES)
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "subprocess.call",
                                     "getattr(__import__('os'), 'system')", "numpy.load of a second pickle",
                                     "copyreg._reconstructor", "functools.partial", "operator.attrgetter",
                                     "object array holding a call", "subclass of an allowed class",
                                     "subclass of LogisticRegression"])
def test_a_hostile_pickle_dressed_as_a_new_class_runs_no_code_when_loaded(models, tmp_path, payload, dress):
    marker = tmp_path / "marker"
    data = dressed(payload_objects(marker, tmp_path)[payload], dress)
    try:  # the dressed payload runs code under plain pickle, so the refusal below is what keeps it from running
        pickle.loads(data)
    except Exception:
        pass
    assert wait_for(marker.exists, timeout=5), "the dressed payload does not run code even unrestricted"
    marker.unlink()
    file = artifacts.VECTORIZER_FILE if dress == "FeatureUnion part" else artifacts.CLASSIFIER_FILE
    folder = install(models, "binary", data, file=file)
    for load in (lambda: kinds.load(models / "binary"), lambda: kinds.load_models(models),
                 lambda: kinds.from_files(kinds.read_files(models / "binary"), folder)):
        with pytest.raises(kinds.ModelError, match="refused: the pickle asks for") as refused:
            load()
        assert str(folder / file) in str(refused.value)
    time.sleep(0.1)  # a spawned `touch` would have had its time
    assert not marker.exists(), "a load path ran the payload"


def load_everywhere(models, tmp_path):
    """Read the model folder every way it is read outside gunicorn; return {load path: refusal message}.

    The two commands run side by side while the in-process loads run; each must exit non-zero with one
    line and no traceback.
    """
    texts = tmp_path / "reviews.txt"
    texts.write_text("a superb film\n")
    commands = {"predict.py": ["predict.py", str(texts), "--model", "binary", "--model-dir", str(models)],
                "python app.py": ["app.py", "--port", "9"]}
    running = {path: subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env={**os.environ, "MODEL_DIR": str(models)})
               for path, args in commands.items()}
    messages = {}
    for path, load in {"SentimentModel.load": lambda: kinds.load(models / "binary"),
                       "load_models": lambda: kinds.load_models(models),
                       "create_app": lambda: create_app({"MODEL_DIR": str(models)}),
                       "a Dask worker": lambda: kinds.from_files(
                           kinds.read_files(models / "binary"),
                           artifacts.resolve_folder(models / "binary"))}.items():
        with pytest.raises(kinds.ModelError) as caught:
            load()
        messages[path] = str(caught.value)
    for path, process in running.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0 and "Traceback" not in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        messages[path] = stderr
    return messages


@pytest.fixture(scope="module")
def live_payloads(tmp_path_factory):
    """The hostile pickles by name, each first shown to run code under plain pickle.loads (so the
    tests below could fail), with the marker file they create."""
    workdir = tmp_path_factory.mktemp("payloads")
    marker = workdir / "marker"
    built = payloads(marker, workdir)
    for name, data in built.items():
        try:
            pickle.loads(data)
        except Exception:  # some payloads fail after their call has run; what matters is that it ran
            pass
        assert wait_for(marker.exists, timeout=5), f"{name}: the payload does not run code even unrestricted"
        marker.unlink()
    return built, marker


@pytest.mark.parametrize("payload", [
    "os.system", "posix.system", "builtins.exec", "subprocess.call", "getattr(__import__('os'), 'system')",
    "dotted name inside an sklearn module", "numpy.load of a second pickle", "copyreg._reconstructor",
    "functools.partial", "operator.attrgetter", "object array holding a call", "subclass of an allowed class",
    "subclass of LogisticRegression"])
def test_a_hostile_pickle_with_matching_hashes_runs_no_code_on_any_load_path(models, tmp_path, live_payloads, payload):
    built, marker = live_payloads
    folder = install(models, "binary", built[payload])
    messages = load_everywhere(models, tmp_path)
    assert set(messages) == {"SentimentModel.load", "load_models", "create_app", "a Dask worker", "predict.py",
                             "python app.py"}
    for path, message in messages.items():
        assert str(folder / artifacts.CLASSIFIER_FILE) in message, path
        assert "refused: the pickle asks for" in message, f"{path}: {message}"
    time.sleep(0.1)  # a spawned `touch` would have had its time
    assert not marker.exists(), "a load path ran the payload"


def test_bytes_sent_to_a_worker_are_checked_against_their_manifest_again_before_unpickling(models, tmp_path):
    files = kinds.read_files(models / "binary")
    assert set(files) == {artifacts.MANIFEST_FILE, artifacts.METRICS_FILE, *PICKLES}
    assert kinds.from_files(files, models / "binary").predict(["a superb film"])
    marker = tmp_path / "unpickled"
    altered = {**files, artifacts.CLASSIFIER_FILE: pickle.dumps(Marker(marker))}  # changed on the way
    with pytest.raises(kinds.ModelError, match=r"SentimentClassifier\.pkl: sha256 does not match manifest\.json on "
                                               r"arrival; the bytes were altered on the way"):
        kinds.from_files(altered, models / "binary")
    assert not marker.exists()


def test_the_refusal_names_the_global_the_pickle_asked_for(models, live_payloads):
    built, _ = live_payloads
    install(models, "binary", built["dotted name inside an sklearn module"])
    with pytest.raises(kinds.ModelError, match=r"asks for sklearn\.datasets\._base\.os\.system, which no model"):
        kinds.load(models / "binary")


def smuggled(models, name, change):
    """The model's vectorizer with `change(vectorizer)` applied, pickled in place with matching hashes.

    Every change uses only globals the allow-list admits, so it is the checks after loading that refuse it.
    """
    vectorizer = kinds.load(models / name).vectorizer
    change(feature_parts(vectorizer)[0])  # the words' vectorizer, alone or the first part of a FeatureUnion
    return install(models, name, pickle.dumps(vectorizer), file=artifacts.VECTORIZER_FILE)


@pytest.mark.parametrize("change, complaint", [
    (lambda v: setattr(v, "tokenizer", np.float64), "tokenizer is a type"),
    (lambda v: setattr(v, "preprocessor", np.float64), "preprocessor is a type"),
    (lambda v: setattr(v, "analyzer", np.float64), "analyzer is a type"),
    (lambda v: setattr(v, "analyzer", "sentence"), "analyzer is 'sentence'"),
    (lambda v: setattr(v, "build_analyzer", np.float64), "unexpected attribute 'build_analyzer'"),
    (lambda v: setattr(v, "min_df", True), "min_df is a bool"),
    (lambda v: setattr(v._tfidf, "idf_", np.array(["1"], dtype=object)), "idf_ holds object values"),
    (lambda v: setattr(v, "dtype", np.ndarray), "dtype is not numpy.float64"),
    (lambda v: v.vocabulary_.__setitem__("boring", 3.5), "vocabulary_ maps something other than words"),
    (lambda v: setattr(v, "ngram_range", (1, 2.5)), "ngram_range is not two whole numbers"),
], ids=["tokenizer", "preprocessor", "analyzer callable", "analyzer unknown", "method shadowed", "bool for int",
        "object array", "dtype", "float index", "float n-gram"])
def test_an_allowed_pickle_carrying_unexpected_state_is_refused(models, change, complaint):
    folder = smuggled(models, "binary", change)
    with pytest.raises(kinds.ModelError) as caught:
        kinds.load(models / "binary")
    assert str(folder / artifacts.VECTORIZER_FILE) in str(caught.value) and complaint in str(caught.value)


def test_the_two_pickles_swapped_are_refused(models):
    folder = (models / "binary").resolve()
    vectorizer = (folder / artifacts.VECTORIZER_FILE).read_bytes()
    classifier = (folder / artifacts.CLASSIFIER_FILE).read_bytes()
    install(models, "binary", vectorizer, file=artifacts.CLASSIFIER_FILE)
    install(models, "binary", classifier, file=artifacts.VECTORIZER_FILE)
    with pytest.raises(kinds.ModelError, match="holds a LogisticRegression, not a TfidfVectorizer or a FeatureUnion"):
        kinds.load(models / "binary")


@pytest.mark.parametrize("name", NAMES)
def test_the_allow_list_loads_every_model_the_tuner_can_choose(tiny_data, name, tmp_path):
    data = next(d for d in training_data.kaggle_datasets(tiny_data / "train.tsv") if d.name == name)
    asked = set()

    class Recording(RestrictedUnpickler):
        def find_class(self, module, name):
            asked.add((module, name))
            return super().find_class(module, name)

    nb = recipes.NAIVE_BAYES
    words, classifier = ("ngram_range", "sublinear_tf", "min_df"), ("alpha", "fit_prior")
    chosen = [recipes.recipe_of(nb, recipes.WORDS, words={k: grid[k] for k in words},
                                classifier={k: grid[k] for k in classifier})
              for grid in ParameterGrid(recipes.PARAM_GRID[nb])]
    chosen += [recipes.default_recipe(name, family=family, features=features)
               for family in recipes.FAMILIES for features in recipes.FEATURES]
    for recipe in chosen:
        vectorizer, classifier = recipes.parts(recipes.make_pipeline(recipe).fit(data.texts, data.y))
        for obj, allowed in ((vectorizer, text_loading.VECTORIZERS), (classifier, text_loading.CLASSIFIERS)):
            loaded = Recording(io.BytesIO(pickle.dumps(obj)), text_loading.ALLOWED_GLOBALS).load()
            assert text_loading.object_problems(loaded, allowed) == [], recipe
    assert asked == text_loading.ALLOWED_GLOBALS, "every allowed global is one the build needs"


# --- Publishing ----------------------------------------------------------------------------------




def staging(out, pid="*"):
    """The staging folders of build process `pid` (of any build by default)."""
    return list((out / ".versions").glob(f"staging-{pid}-*"))


def copy_of(folder):
    """A `write` for `publish` that fills the staging folder with a copy of a published model's files."""
    def write(staging_folder):
        for path in folder.resolve().iterdir():
            shutil.copy(path, staging_folder / path.name)
    return write


def test_publishing_switches_the_link_to_a_new_version_with_ordinary_permissions(models, tmp_path):
    before = (models / "binary").resolve()
    final = releases.publish(models, "binary", copy_of(models / "binary"))
    link = models / "binary"
    assert link.is_symlink() and link.resolve() == final
    assert final != before and final.parent == models / ".versions"
    assert before.exists()  # the version just replaced stays: a server may be loading it
    assert loads_and_scores(link)
    ordinary_file, ordinary_dir = tmp_path / "file", tmp_path / "dir"
    ordinary_file.touch()
    ordinary_dir.mkdir()
    assert link.resolve().stat().st_mode & 0o777 == ordinary_dir.stat().st_mode & 0o777
    for path in link.resolve().iterdir():
        assert path.stat().st_mode & 0o777 == ordinary_file.stat().st_mode & 0o777, path.name


def fail_in_write(error):
    """A `write` that puts a file in the staging folder, then raises `error`."""
    def write(folder):
        (folder / artifacts.VECTORIZER_FILE).write_bytes(b"half a model")
        raise error
    return write


@pytest.mark.parametrize("how", ["disk full while writing", "a bug while writing", "Ctrl-C while writing",
                                 "disk full at fsync", "rename refused"])
def test_a_publish_that_fails_removes_its_staging_folder_and_keeps_the_old_model(models, monkeypatch, how):
    before = published(models)
    versions = sorted((models / ".versions").iterdir())
    write = copy_of(models / "binary")
    error = {"disk full while writing": OSError(errno.ENOSPC, "No space left on device"),
             "a bug while writing": RuntimeError("bug"), "Ctrl-C while writing": KeyboardInterrupt()}.get(how)
    if error is not None:
        write = fail_in_write(error)
    elif how == "disk full at fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    else:
        monkeypatch.setattr(os, "rename", lambda src, dst: (_ for _ in ()).throw(OSError(errno.EACCES, "refused")))

    with pytest.raises((OSError, RuntimeError, KeyboardInterrupt)) as raised:
        releases.publish(models, "binary", write)
    monkeypatch.undo()
    assert error is None or raised.value is error  # the build's own error goes on, for main() to report
    assert staging(models) == []
    assert sorted((models / ".versions").iterdir()) == versions
    assert published(models) == before
    assert loads_and_scores(models / "binary")


def test_a_model_folder_copied_in_by_hand_is_kept_as_a_version_when_a_build_replaces_it(models):
    real = (models / "binary").resolve()
    (models / "binary").unlink()
    shutil.copytree(real, models / "binary")
    by_hand = (models / "binary" / MANIFEST).read_bytes()
    releases.publish(models, "binary", copy_of(real))
    assert (models / "binary").is_symlink()
    kept = list((models / ".versions").glob("binary-copied-*"))
    assert len(kept) == 1 and (kept[0] / MANIFEST).read_bytes() == by_hand
    assert loads_and_scores(kept[0]) and loads_and_scores(models / "binary")


def allocated(path):
    """Bytes `path` takes on a file system with PAGE-sized blocks."""
    return -(-path.stat().st_size // PAGE) * PAGE


def test_a_build_that_runs_out_of_disk_exits_1_frees_what_it_wrote_and_keeps_the_old_models(
        model_dir, tiny_data, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    out = tmp_path / "small-disk"
    out.mkdir()
    # Room for the published models and a few pages more: not for a second copy of either model.
    size = sum(allocated(p) for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink()) + 8 * PAGE
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(out)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        shutil.copytree(model_dir, out, symlinks=True, dirs_exist_ok=True)
        before, free = published(out), os.statvfs(out).f_bfree
        assert set(before) == set(NAMES)
        capsys.readouterr()

        assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(out)]) == 1

        assert capsys.readouterr().err == f"error: cannot write the models to {out}: No space left on device.\n"
        assert staging(out) == []
        assert os.statvfs(out).f_bfree == free  # the disk is not left full of a failed build
        assert published(out) == before
        assert all(loads_and_scores(out / name) for name in NAMES)
    finally:
        subprocess.run(["umount", str(out)], check=True)


# --- Builds killed half-way, or running side by side --------------------------------------------

def switched_since(before, out):
    """The models whose published version changed since `before`."""
    now = published(out)
    return [name for name in NAMES if now[name] != before[name]]


# moment to kill: (reached, given (out, build pid, models before); models the build has published by then)
KILL_MOMENTS = {
    "while starting up": (lambda out, pid, before: True, []),
    "while writing the binary model": (lambda out, pid, before: staging(out, pid), []),
    "after publishing binary, while building fine-grained": (
        lambda out, pid, before: switched_since(before, out) == ["binary"], ["binary"]),
    "while writing the fine-grained model": (
        lambda out, pid, before: switched_since(before, out) == ["binary"] and staging(out, pid), ["binary"]),
}


def kill_build_at(moment, data, out):
    """Start a build and SIGKILL it at `moment`; return (models before it started, its pid).

    The build is frozen with SIGSTOP first and the moment checked again, so the state it dies in is
    the one the test asserts on; if it ran past the moment meanwhile (a loaded machine), try again.
    """
    reached, switched = KILL_MOMENTS[moment]
    for _ in range(3):
        before = published(out)
        process = run_build("--data", data, "--out", out, start_new_session=True)
        deadline = time.monotonic() + 60
        while not reached(out, process.pid, before):
            assert process.poll() is None, f"the build ended before the moment to kill it:\n{process.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        process.send_signal(signal.SIGSTOP)
        on_time = reached(out, process.pid, before) and switched_since(before, out) == switched
        # The whole session, as a supervisor kills a unit: the build and any worker process of its calibration,
        # which would outlive it for half a minute holding its output pipes.
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        if on_time:
            return before, process.pid
    pytest.fail(f"could not catch the build {moment} in 3 tries")


@pytest.mark.parametrize("moment", KILL_MOMENTS)
def test_a_build_killed_half_way_leaves_loadable_models_and_the_next_build_cleans_up(
        models, tiny_data, moment):
    before, pid = kill_build_at(moment, tiny_data / "train.tsv", models)

    after = published(models)
    for name in NAMES:
        assert (after[name] != before[name]) == (name in KILL_MOMENTS[moment][1]), name
        assert loads_and_scores(models / name)
    assert bool(staging(models, pid)) == ("writing" in moment)  # what the next build has to clean up

    assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(models)]) == 0
    rebuilt = published(models)
    assert staging(models) == []
    assert not list(models.glob(".*.link"))
    for name in NAMES:
        assert rebuilt[name][0] not in (before[name][0], after[name][0])
        assert rebuilt[name][1] > after[name][1]
        assert len(list((models / ".versions").glob(f"{name}-*"))) <= artifacts.KEEP_VERSIONS
    assert set(kinds.load_models(models)) == {*NAMES, "ratings"}  # the ratings model, untouched by a text build


def test_leftovers_of_a_build_killed_between_its_last_steps_are_removed_by_the_next_build(models, tiny_data):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    current = (models / "binary").resolve()
    # Killed after renaming its version into place, before switching the link; and after making the
    # new link, before moving it over the old one.
    unpublished = shutil.copytree(current, models / ".versions" / f"binary-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    os.symlink(os.path.relpath(unpublished, models), models / f".binary.{dead.pid}.link")

    # --keep 1: the unpublished version is an old one like any other, and goes when versions are pruned.
    assert build_model.main(["--data", str(tiny_data / "train.tsv"), "--out", str(models), "--keep", "1"]) == 0
    assert not unpublished.exists()
    assert not list(models.glob(".*.link"))
    assert current.exists()  # the version just replaced stays: a server may be loading it
    assert sorted(p.name for p in models.iterdir()) == [".versions", "binary", "fine-grained", "ratings"]


def test_a_live_builds_staging_folder_is_left_alone_by_another_build(models):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = models / ".versions" / f"staging-{alive.pid}-abc123"
        theirs.mkdir()
        releases.publish(models, "binary", copy_of(models / "binary"))
        assert theirs.exists()
    finally:
        alive.kill()
        alive.wait()
    releases.publish(models, "binary", copy_of(models / "binary"))
    assert not theirs.exists()  # its process has gone: now it is a leftover


def test_two_builds_at_once_into_one_folder_both_succeed_and_leave_loadable_models(models, tiny_data):
    builds = [run_build("--data", tiny_data / "train.tsv", "--out", models) for _ in range(2)]
    for build in builds:
        _, stderr = build.communicate(timeout=120)
        assert build.returncode == 0, stderr
    assert set(kinds.load_models(models)) == {*NAMES, "ratings"}  # the ratings model, untouched by a text build
    assert sorted(p.name for p in models.iterdir()) == [".versions", "binary", "fine-grained", "ratings"]
    for name in NAMES:  # the version both replaced and one per build: all within the versions kept
        assert len(list((models / ".versions").glob(f"{name}-*"))) == 3
