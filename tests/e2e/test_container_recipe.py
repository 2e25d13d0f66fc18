"""The Dockerfile's recipe, executed without Docker: what it copies, runs, serves and health-checks works.

The build context (the repository's files less .dockerignore's, plus the tiny data set where a user
puts Kaggle's train.tsv) is copied as its COPY instructions say, its RUN commands run in order under
its ENV (`pip install` aside: the virtual environment already has the pinned requirements), then its
CMD serves on a free loopback port in place of BIND's and its HEALTHCHECK command is run against it.
The image's USER is not switched to (this interpreter may live where that user cannot read);
test_deploy.py checks that Kubernetes runs the image as that user.
"""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
import requests

from serving.config import MODEL_ROUTES
from support import (
    ROOT,
    SERVICE_VARIABLES,
    TEXT_ROUTES,
    dockerfile_env,
    dockerfile_instructions,
    dockerfile_last,
    free_port,
    write_tiny_kaggle,
    write_tiny_movies,
)

# What the test does with each: runs RUN, COPY, ENV, WORKDIR, CMD and HEALTHCHECK as described above;
# FROM is this interpreter, USER and EXPOSE are checked against Kubernetes by test_deploy.py.
UNDERSTOOD = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "HEALTHCHECK", "CMD"}
VENV_BIN = str(Path(sys.executable).parent)  # `python` and `gunicorn` in the recipe are the venv's


def dockerignored(path, patterns):
    """True if .dockerignore's `patterns` leave `path` (relative, POSIX) out of the build context."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern) or
               (pattern.startswith("**/") and fnmatch.fnmatch(PurePosixPath(prefix).name, pattern[3:]))
               for prefix in prefixes for pattern in patterns)


def build_context(destination):
    """The files `docker build .` would send: the repository's, less .dockerignore's, and tiny data in lib/data."""
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file() and not dockerignored(name, patterns):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    write_tiny_kaggle(destination / "lib" / "data")  # where the Dockerfile's header says to put Kaggle's file
    write_tiny_movies(destination / "lib" / "data")  # and movies.json, which the build would otherwise fetch
    return destination


def copy(arguments, context, workdir):
    """COPY SRC... DEST, from the build context into the image's file system (here, `workdir`)."""
    *sources, destination = arguments.split()
    target = workdir / destination
    for source in sources:
        if (context / source).is_dir():
            shutil.copytree(context / source, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / source, target)


def exec_form(arguments):
    """The command of a CMD (or HEALTHCHECK CMD) in exec (JSON) form, as a list."""
    return json.loads(arguments[arguments.index("["):])


def files_under(folder):
    """Every file below `folder`, relative."""
    return {path.relative_to(folder) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The recipe's build steps done in a temporary folder; returns (workdir, env, the instructions)."""
    tmp = tmp_path_factory.mktemp("container")
    context = build_context(tmp / "context")
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    # An instruction this test does not act on (ENTRYPOINT, ARG, ...) would make its run differ from Docker's.
    assert {kind for kind, _ in instructions} <= UNDERSTOOD, {kind for kind, _ in instructions} - UNDERSTOOD
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES | {"KAGGLE_DATA_DIR"}}
    env["PATH"] = VENV_BIN + os.pathsep + env["PATH"]
    workdir, ran = tmp / "root", []
    for kind, arguments in instructions:
        if kind == "ENV":
            env.update(dockerfile_env([(kind, arguments)]))
        elif kind == "WORKDIR":
            workdir = tmp / "root" / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            copy(arguments, context, workdir)
        elif kind == "RUN" and not re.match(r"pip3? install\b", arguments):
            done = subprocess.run(["/bin/sh", "-c", arguments], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, f"RUN {arguments}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            ran.append(arguments)
    assert ran, "the Dockerfile runs nothing but pip install?"
    return workdir, env, instructions


@pytest.fixture(scope="module")
def container(image):
    """The image's CMD serving on a free loopback port, and its HEALTHCHECK command aimed at that port."""
    workdir, env, instructions = image
    image_port = env["BIND"].rpartition(":")[2]
    port = free_port()
    health = dockerfile_last(instructions, "HEALTHCHECK")
    check = exec_form(health[health.index("CMD") + 3:])
    # The health check must ask /health on the port the image's BIND serves; here that port is `port`.
    assert any(f"127.0.0.1:{image_port}/health" in part for part in check), check
    files_before = files_under(workdir)
    log = open(workdir.parent / "container.log", "w+")
    process = subprocess.Popen(exec_form(dockerfile_last(instructions, "CMD")), cwd=workdir,
                               env={**env, "BIND": f"127.0.0.1:{port}"}, stdout=log, stderr=subprocess.STDOUT)
    running = SimpleNamespace(
        url=f"http://127.0.0.1:{port}", process=process, files_before=files_before,
        check=[part.replace(f"127.0.0.1:{image_port}", f"127.0.0.1:{port}") for part in check],
        start_period=seconds("start-period", health), timeout=seconds("timeout", health),
        output=lambda: log.seek(0) or log.read())
    try:
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()


def seconds(option, health):
    """A HEALTHCHECK option in seconds (`--start-period=20s`)."""
    return float(re.search(rf"--{option}=(\d+)s", health).group(1))


def health_check(container):
    """Run the HEALTHCHECK command once, as Docker would; return its exit status."""
    return subprocess.run(container.check, env={"PATH": VENV_BIN + os.pathsep + os.environ["PATH"]},
                          capture_output=True, timeout=container.timeout).returncode


def passes_within_the_start_period(container):
    """Run the health check until it passes, the server exits or the start period is over."""
    deadline = time.monotonic() + container.start_period
    while time.monotonic() < deadline and container.process.poll() is None:
        if health_check(container) == 0:
            return True
        time.sleep(0.25)
    return False


def test_the_recipes_server_passes_its_health_check_within_the_start_period(image, container):
    assert passes_within_the_start_period(container), container.output()
    # It serves every model the RUN steps built from the data in lib/data, and writes nothing but its
    # prediction log, in the state folder the recipe gives it.
    assert requests.get(container.url + "/health", timeout=5).json()["models"] == sorted(MODEL_ROUTES)
    for route in TEXT_ROUTES.values():
        assert requests.get(container.url + route, params={"query": "a superb film"}, timeout=5).status_code == 200
    film = {"genre": "Drama", "budget": "20000000"}
    assert requests.get(container.url + "/ratings", params=film, timeout=5).status_code == 200
    written = files_under(image[0]) - container.files_before
    assert {path.parts[0] for path in written} == {"state"}, written
    assert Path("state/predictions.sqlite3") in written


def test_the_health_check_fails_once_the_server_has_stopped(container):
    assert passes_within_the_start_period(container), container.output()
    container.process.terminate()  # what `docker stop` sends
    assert container.process.wait(timeout=30) == 0, container.output()
    assert health_check(container) != 0
