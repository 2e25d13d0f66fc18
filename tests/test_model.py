"""Loading a model folder (model.py): every way a folder can be broken is a ModelError naming the
file, raised before any pickle is unpickled."""
import json
import os
import pickle
import shutil

import pytest

import model
import util

PICKLES = [model.VECTORIZER_FILE, model.CLASSIFIER_FILE]


class Marker:
    """Unpickling this creates a folder: the proof that a pickle was (or was not) unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.fixture
def models(model_dir, tmp_path):
    """A private copy of the session's models (both folders), safe to break."""
    out = tmp_path / "models"
    for name in ("binary", "fine-grained"):
        shutil.copytree((model_dir / name).resolve(), out / name)
    return out


def edit_manifest(folder, change):
    """Rewrite `manifest.json` after `change(manifest)`."""
    manifest = util.read_json(folder / model.MANIFEST_FILE)
    change(manifest)
    (folder / model.MANIFEST_FILE).write_text(json.dumps(manifest))


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BREAKAGES = {  # how the folder is broken: (do it to the folder, the file the message must name, a phrase in it)
    "vectorizer tampered": (lambda f: flip_last_byte(f / model.VECTORIZER_FILE), model.VECTORIZER_FILE, "sha256"),
    "classifier truncated": (lambda f: truncate(f / model.CLASSIFIER_FILE), model.CLASSIFIER_FILE, "truncated"),
    "vectorizer missing": (lambda f: (f / model.VECTORIZER_FILE).unlink(), model.VECTORIZER_FILE, "missing"),
    "classifier missing": (lambda f: (f / model.CLASSIFIER_FILE).unlink(), model.CLASSIFIER_FILE, "missing"),
    "metrics tampered": (lambda f: (f / "metrics.json").write_text('{"accuracy": 1.0}'), "metrics.json", "sha256"),
    "metrics missing": (lambda f: (f / "metrics.json").unlink(), "metrics.json", "missing"),
    "plot tampered": (lambda f: truncate(f / "confusion.png"), "confusion.png", "sha256"),
    "manifest missing": (lambda f: (f / model.MANIFEST_FILE).unlink(), model.MANIFEST_FILE, "missing"),
    "manifest truncated": (lambda f: truncate(f / model.MANIFEST_FILE), model.MANIFEST_FILE, "not a valid manifest"),
    "manifest not an object": (lambda f: (f / model.MANIFEST_FILE).write_text("[]"), model.MANIFEST_FILE,
                               "not a valid manifest"),
    "manifest artifacts not a mapping": (lambda f: edit_manifest(f, lambda m: m.update(artifacts=PICKLES)),
                                         model.MANIFEST_FILE, "artifacts"),
    "manifest without a pickle's hash": (
        lambda f: edit_manifest(f, lambda m: m["artifacts"].pop(model.CLASSIFIER_FILE)), model.MANIFEST_FILE,
        model.CLASSIFIER_FILE),
    "another scikit-learn": (lambda f: edit_manifest(f, lambda m: m["versions"].update({"scikit-learn": "0.24.2"})),
                             model.MANIFEST_FILE, "trained with scikit-learn 0.24.2"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_model_folder_is_a_model_error_naming_the_file(models, breakage):
    break_it, file_name, phrase = BREAKAGES[breakage]
    break_it(models / "binary")
    for load in (lambda: model.SentimentModel.load(models / "binary"), lambda: model.load_models(models)):
        with pytest.raises(model.ModelError) as error:
            load()
        assert str(models / "binary" / file_name) in str(error.value)
        assert phrase in str(error.value)
        assert "\n" not in str(error.value)


def test_the_intact_copy_loads_and_scores(models):
    loaded = model.load_models(models)
    assert set(loaded) == {"binary", "fine-grained"}
    answer = loaded["binary"].predict(["a brilliant, dazzling masterpiece"])[0]
    assert answer["prediction"] == "Positive"
    assert answer["confidence"] == max(answer["probabilities"].values())


def test_a_swapped_pickle_is_never_unpickled(models, tmp_path):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(Marker(marker))
    pickle.loads(evil)  # the proof works: unpickling this file does leave the marker
    assert marker.exists()
    marker.rmdir()
    for name in PICKLES:  # the manifest keeps the real pickles' hashes
        (models / "binary" / name).write_bytes(evil)
    for load in (lambda: model.SentimentModel.load(models / "binary"), lambda: model.load_models(models)):
        with pytest.raises(model.ModelError, match="sha256 does not match"):
            load()
    assert not marker.exists()


def test_a_pickle_swapped_after_its_hash_was_checked_is_never_unpickled(models, tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    check = model.verify_artifacts

    def check_then_swap(folder, manifest):
        check(folder, manifest)  # the files are good when checked, then replaced before they are read
        for name in PICKLES:
            (folder / name).write_bytes(pickle.dumps(Marker(marker)))

    monkeypatch.setattr(model, "verify_artifacts", check_then_swap)
    with pytest.raises(model.ModelError, match="changed while the model was loading"):
        model.SentimentModel.load(models / "binary")
    assert not marker.exists()


@pytest.mark.parametrize("state", ["missing", "empty", "only a dangling link"])
def test_a_model_dir_without_usable_models_is_a_model_error_naming_it(tmp_path, state):
    model_dir = tmp_path / "models"
    if state != "missing":
        model_dir.mkdir()
    if state == "only a dangling link":
        (model_dir / "binary").symlink_to(tmp_path / "deleted-version")
    with pytest.raises(model.ModelError) as error:
        model.load_models(model_dir)
    assert str(model_dir) in str(error.value)
    assert ("which is gone" if state == "only a dangling link" else "no models found") in str(error.value)
