"""Releases: the build's gate against the live model, versions kept, and release.py's commands."""
import csv
import fcntl
import gzip
import json
import shutil
import subprocess
import sys
import time

import pytest

import kinds
import release
from store import artifacts, releases
from support import ROOT, build, release_cli, scrambled
from training import build as build_model
from training import recipes


def live_version(models, name):
    """The model_version `models/name` serves."""
    return kinds.load(models / name).version


def manifest(folder):
    return json.loads((folder / artifacts.MANIFEST_FILE).read_text())


# --- The gate ------------------------------------------------------------------------------------

def test_a_build_on_scrambled_labels_is_held_back_as_a_candidate_and_the_live_model_stays(models, tiny_data, tmp_path):
    before = {name: live_version(models, name) for name in ("binary", "fine-grained")}
    code, said = build("--data", scrambled(tiny_data / "train.tsv", tmp_path / "broken.tsv"), "--out", models)
    assert code == build_model.GATE_HELD_BACK, said
    assert "NOT LIVE" in said and "worse than the live model" in said
    assert {name: live_version(models, name) for name in before} == before
    newest = releases.version_folders(models, "binary")[-1]
    release_record = manifest(newest)["release"]
    assert release_record["live"] is False and release_record["gate"]["passed"] is False
    assert release_record["gate"]["live_model"] == before["binary"]
    assert not release_record["gate"]["checks"]["held_out"]["passed"]
    assert [e["action"] for e in releases.release_history(models, "binary")][-1] == "candidate"
    listed = release_cli(models, "list", "binary")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if releases.version_of_folder(newest) in line)
    assert "candidate" in row and "worse than the live model" in row


def test_promote_overrides_the_gate_and_the_manifest_records_it(models, tiny_data, tmp_path):
    code, said = build("--data", scrambled(tiny_data / "train.tsv", tmp_path / "broken.tsv"), "--out", models,
                       "--promote")
    assert code == 0, said
    live = (models / "binary").resolve()
    assert manifest(live)["release"] == {**manifest(live)["release"], "live": True, "promoted_over_gate": True}
    assert "--promote overrode the gate" in releases.release_history(models, "binary")[-1]["why"]


def test_a_better_build_goes_live_over_a_worse_live_model(tiny_data, tmp_path):
    models = tmp_path / "models"
    code, said = build("--data", scrambled(tiny_data / "train.tsv", tmp_path / "broken.tsv"), "--out", models)
    assert code == 0, said  # the first build of a model is live
    assert "no live model" in said
    worse = live_version(models, "binary")
    code, said = build("--data", tiny_data / "train.tsv", "--out", models)
    assert code == 0, said
    assert live_version(models, "binary") != worse
    gate = manifest((models / "binary").resolve())["release"]["gate"]
    assert gate["passed"] and gate["live_model"] == worse
    assert gate["checks"]["held_out"]["accuracy"]["new"] > gate["checks"]["held_out"]["accuracy"]["live"]


def test_the_same_data_again_passes_the_gate(models, tiny_data):
    code, said = build("--data", tiny_data / "train.tsv", "--out", models)
    assert code == 0, said
    gate = manifest((models / "binary").resolve())["release"]["gate"]
    assert gate["passed"] and all(check["passed"] for check in gate["checks"].values())


def test_a_worse_recipe_on_the_same_rows_is_held_back(models, tiny_data, monkeypatch):
    # A bad setting (a vocabulary of three words) on the same data: the same-rows comparison, with the
    # live recipe refitted on the same training side, shows it.
    worse = {**recipes.default_recipe("fine-grained"), "tfidf__words__max_features": 3,
             "tfidf__chars__max_features": 3}
    real = recipes.default_recipe
    monkeypatch.setattr(recipes, "default_recipe",
                        lambda name, **kw: worse if name == "fine-grained" else real(name, **kw))
    code, said = build("--data", tiny_data / "train.tsv", "--out", models)
    assert code == build_model.GATE_HELD_BACK, said
    gate = manifest(releases.version_folders(models, "fine-grained")[-1])["release"]["gate"]
    assert not gate["checks"]["same_rows"]["passed"]


def test_far_too_little_data_is_held_back(kaggle_model_dir, kaggle_dir, tmp_path):
    models = shutil.copytree(kaggle_model_dir, tmp_path / "models", symlinks=True)
    before = live_version(models, "binary")
    with gzip.open(kaggle_dir / "train.tsv.gz", "rt", encoding="utf-8") as full:
        rows = list(csv.reader(full, delimiter="\t", quoting=csv.QUOTE_NONE))
    sentences = sorted({row[1] for row in rows[1:]}, key=int)[:150]  # of Kaggle's 8,544
    keep = set(sentences)
    small = tmp_path / "small.tsv"
    small.write_text("\n".join("\t".join(row) for row in [rows[0], *(r for r in rows[1:] if r[1] in keep)]) + "\n")
    code, said = build("--data", small, "--out", models)
    assert code == build_model.GATE_HELD_BACK, said
    assert live_version(models, "binary") == before


@pytest.mark.parametrize("args, complaint", [(["--keep", "0"], "--keep must be at least 1"),
                                              (["--tolerance", "2"], "--tolerance must be")])
def test_bad_release_options_are_refused(args, complaint, capsys):
    with pytest.raises(SystemExit) as exited:
        build_model.parse_args(args)
    assert exited.value.code == 2 and complaint in capsys.readouterr().err


# --- Versions kept ------------------------------------------------------------------------------

def test_a_publish_keeps_the_newest_versions_and_never_the_live_or_rollback_ones(models, tiny_data):
    first = live_version(models, "binary")
    for _ in range(3):
        assert build("--data", tiny_data / "train.tsv", "--out", models, "--keep", "2")[0] == 0
    kept = [releases.version_of_folder(f) for f in releases.version_folders(models, "binary")]
    assert first not in kept and len(kept) == 2
    assert kept[-1] == live_version(models, "binary")
    assert releases.rollback_target(models, "binary") == kept[0]


# --- Release commands ---------------------------------------------------------------------------

def test_promote_and_rollback_round_trip_with_history(models, tiny_data):
    first = live_version(models, "binary")
    assert build("--data", tiny_data / "train.tsv", "--out", models)[0] == 0
    second = live_version(models, "binary")
    assert second != first

    rolled = release_cli(models, "rollback", "binary", "--why", "complaints")
    assert rolled.returncode == 0, rolled.stderr
    assert live_version(models, "binary") == first and f"{first} is live" in rolled.stdout
    promoted = release_cli(models, "promote", "binary", second)
    assert promoted.returncode == 0, promoted.stderr
    assert live_version(models, "binary") == second
    assert release_cli(models, "rollback", "binary").returncode == 0
    assert live_version(models, "binary") == first

    history = releases.release_history(models, "binary")
    assert [(e["action"], e["from"], e["to"]) for e in history[-3:]] == [
        ("rollback", second, first), ("promote", first, second), ("rollback", second, first)]
    assert history[-3]["why"] == "complaints" and history[-3]["by"]
    shown = release_cli(models, "history", "binary").stdout
    assert "complaints" in shown and shown.count("rollback") == 2
    listed = release_cli(models, "list", "binary").stdout
    assert next(line for line in listed.splitlines() if first in line).split()[1] == "live"


def test_a_rollback_with_no_earlier_version_says_what_to_do(tiny_data, tmp_path):
    models = tmp_path / "models"
    assert build("--data", tiny_data / "train.tsv", "--out", models)[0] == 0
    rolled = release_cli(models, "rollback", "binary")
    assert rolled.returncode == 1
    assert rolled.stderr.startswith("error: ") and "promote it" in rolled.stderr and "Traceback" not in rolled.stderr


@pytest.mark.parametrize("args, complaint", [
    (["promote", "binary", "20990101T000000Z-deadbeef"], "has no version"),
    (["promote", "nonesuch", "x"], "holds no nonesuch model"),
])
def test_release_commands_refuse_unknown_models_and_versions_in_one_line(models, args, complaint):
    done = release_cli(models, *args)
    assert done.returncode == 1 and complaint in done.stderr and done.stderr.count("\n") == 1


def test_promote_refuses_a_damaged_version_and_the_live_one_keeps_serving(models, tiny_data):
    first = live_version(models, "binary")
    assert build("--data", tiny_data / "train.tsv", "--out", models)[0] == 0
    second = live_version(models, "binary")
    damaged = releases.folder_of(models, "binary", first) / artifacts.CLASSIFIER_FILE
    damaged.write_bytes(damaged.read_bytes()[:-10])
    done = release_cli(models, "promote", "binary", first)
    assert done.returncode == 1 and str(damaged) in done.stderr
    assert live_version(models, "binary") == second


def test_a_release_command_waits_its_turn_on_the_lock(models, tiny_data):
    assert build("--data", tiny_data / "train.tsv", "--out", models)[0] == 0
    with open(models / artifacts.VERSIONS_DIR / artifacts.LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a build does while it publishes
        waiting = subprocess.Popen([sys.executable, "release.py", "--model-dir", str(models), "rollback", "binary"],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None  # still waiting for the lock
        held = live_version(models, "binary")
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert live_version(models, "binary") != held


def test_release_reads_the_model_folder_from_config(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "elsewhere"))
    assert release.parse_args(["list"]).model_dir == tmp_path / "elsewhere"


def test_a_candidate_never_counts_as_a_model_folder(models, tiny_data, tmp_path):
    build("--data", scrambled(tiny_data / "train.tsv", tmp_path / "broken.tsv"), "--out", models)
    assert sorted(p.name for p in artifacts.model_folders(models)) == ["binary", "fine-grained", "ratings"]
