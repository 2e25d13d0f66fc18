"""Releases: the versions of each model kept on disk, the live links servers answer with, and their history.

    MODEL_DIR/<name>                     the live version (what servers answer with), a symlink
    MODEL_DIR/.versions/<name>-<time>/   every version kept: live, earlier ones, candidates
    MODEL_DIR/.versions/shadow/<name>    the version scored in shadow beside the live one, a symlink if any
    MODEL_DIR/.versions/releases.jsonl   the release history, one JSON object per line
    MODEL_DIR/.versions/.lock            taken by builds and release commands while they change any of these

`publish` makes a new version and (if it goes live) switches the link in one `os.replace`, so readers
see the old model or the whole new one; `promote`, `rollback` and `shadow` move the links and write
the history. All of it lives under `.versions/`, which `store.artifacts.model_folders` never reads,
except the live links: a copy of a folder cannot stand in for a release. A running server follows the
links by itself (`serving.follower`).
"""
import contextlib
import fcntl
import getpass
import json
import os
import platform
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import util
from store.artifacts import (
    HISTORY_FILE,
    KEEP_VERSIONS,
    LOCK_FILE,
    MANIFEST_FILE,
    SHADOW_DIR,
    VERSIONS_DIR,
    model_version,
)


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


def promote(model_dir, name, version, *, verify, why="", action="promote"):
    """Make `version` of model `name` live: verified first (`verify(folder)`, which loads it as a server would
    and raises `ModelError` if it cannot), then one link switch, recorded; a shadow of
    the same version is turned off. Returns the (before, after) versions."""
    with release_lock(model_dir):
        folder = folder_of(model_dir, name, version)
        verify(folder)  # never make live what a server would refuse
        before = live_folder(model_dir, name)
        if before == folder.resolve():
            raise ReleaseError(f"{name} {version_of_folder(folder)} is already live.")
        replace_link(Path(model_dir) / name, folder)
        record_release(model_dir, name, action, before, folder, why)
        if shadow_folder(model_dir, name) == folder.resolve():  # the shadow made live: nothing left to compare
            (Path(model_dir) / VERSIONS_DIR / SHADOW_DIR / name).unlink()
            record_release(model_dir, name, "shadow-off", folder, None, f"{version_of_folder(folder)} made live")
        return version_of_folder(before) if before else None, version_of_folder(folder)


def rollback(model_dir, name, *, verify, why=""):
    """Make the version live before the live one live again (`rollback_target`)."""
    target = rollback_target(model_dir, name)
    if target is None:
        raise ReleaseError(f"the release history records no version of {name} live before the live one; "
                           f"choose one from `python release.py list {name}` and promote it.")
    if folder_of(model_dir, name, target, missing_ok=True) is None:
        raise ReleaseError(f"{name} {target}, live before, is no longer kept; choose one from "
                           f"`python release.py list {name}` and promote it.")
    return promote(model_dir, name, target, verify=verify, why=why, action="rollback")


def shadow(model_dir, name, version, *, verify, why=""):
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
        verify(folder)  # never put in shadow what a server would refuse
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
