"""The README's client commands, run as written against a live gunicorn on Kaggle-trained models.

Each `$ command` in a ```console block is run by bash (with the server's address in place of
127.0.0.1:5000) and its output compared, as JSON, with the output the README shows under it; each
```pycon block runs as a doctest. The models are built from Kaggle's train.tsv with the shipped
defaults, so the figures in the README are the figures a user gets.
"""
import doctest
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, Server

README = (ROOT / "README.md").read_text()
README_URL = "http://127.0.0.1:5000"
SECTION = README[README.index("## Calling the API"):README.index("\n## ", README.index("## Calling the API") + 1)]


def console_examples():
    """(command, expected output) for every `$ ` line of the section's console blocks."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", SECTION, flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            examples.append((command, output.strip()))
    return examples


def pycon_examples():
    """The text of every pycon block of the section."""
    return re.findall(r"```pycon\n(.*?)```", SECTION, flags=re.S)


@pytest.fixture(scope="module")
def kaggle_server(kaggle_model_dir):
    """gunicorn with the repo's settings on the Kaggle-trained models."""
    server = Server(kaggle_model_dir).wait_healthy()
    yield server
    server.stop()


def test_the_readme_shows_curl_httpie_and_requests_examples():
    commands = [command.split()[0] for command, _ in console_examples()]
    assert {"curl", "http"} <= set(commands)
    assert any("import requests" in block for block in pycon_examples())
    assert all(output for _, output in console_examples()), "every command shows its output"


@pytest.mark.parametrize("command, expected", console_examples(), ids=[c for c, _ in console_examples()])
def test_readme_command_prints_what_the_readme_shows(kaggle_server, command, expected):
    bin_dir = str(Path(sys.executable).parent)  # curl from the system, http from the venv
    _, terminal = pty.openpty()  # HTTPie reads a request body from stdin unless it is a terminal
    result = subprocess.run(
        ["bash", "-c", command.replace(README_URL, kaggle_server.url)], stdin=terminal,
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    os.close(terminal)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(expected)


@pytest.mark.parametrize("block", pycon_examples())
def test_readme_python_session_gives_the_outputs_shown(kaggle_server, block):
    test = doctest.DocTestParser().get_doctest(block.replace(README_URL, kaggle_server.url), {}, "README", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
