"""The README's client commands, run as written against a live gunicorn on Kaggle-trained models.

Each `$ command` in a ```console block is run by bash (with the server's address in place of
127.0.0.1:5000) and its output compared, as JSON, with the output the README shows under it; each
```pycon block runs as a doctest. The models are built from Kaggle's train.tsv (and vega-datasets'
movies.json) with the shipped defaults, so the figures in the README are the figures a user gets.
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

from support import README_URL, console_examples, pycon_examples

# Every answer's id is new, and a model's version is its build's: the README shows those of a real run, and
# here they need only be of the same kind.
FRESH = {"id": re.compile(r"[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{52}"),  # a label's id, or a number's (/ratings)
         "model_version": re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")}


def same_json(got, shown, key=None):
    """Equal JSON values, floats equal to 12 significant digits, ids and versions of the same form, everything
    else exactly."""
    if key in FRESH and isinstance(shown, str):
        return isinstance(got, str) and bool(FRESH[key].fullmatch(got)) and bool(FRESH[key].fullmatch(shown))
    if isinstance(shown, float) and isinstance(got, (int, float)):
        return got == pytest.approx(shown, rel=1e-12, abs=1e-12)
    if isinstance(shown, dict):
        return isinstance(got, dict) and got.keys() == shown.keys() and all(same_json(got[k], shown[k], k)
                                                                            for k in shown)
    if isinstance(shown, list):
        return isinstance(got, list) and len(got) == len(shown) and all(map(same_json, got, shown))
    return got == shown and type(got) is type(shown)


@pytest.mark.parametrize("command, expected", console_examples(), ids=[c for c, _ in console_examples()])
def test_readme_command_prints_what_the_readme_shows(kaggle_server, command, expected):
    bin_dir = str(Path(sys.executable).parent)  # curl from the system, http from the venv
    master, terminal = pty.openpty()  # HTTPie reads a request body from stdin unless it is a terminal
    result = subprocess.run(
        ["bash", "-c", command.replace(README_URL, kaggle_server.url)], stdin=terminal,
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]})
    os.close(terminal)
    os.close(master)
    assert result.returncode == 0, result.stderr
    # Explanations are not rounded: their last digits may differ between two builds of the same model.
    assert same_json(json.loads(result.stdout), json.loads(expected)), result.stdout


@pytest.mark.parametrize("block", pycon_examples())
def test_readme_python_session_gives_the_outputs_shown(kaggle_server, block):
    test = doctest.DocTestParser().get_doctest(block.replace(README_URL, kaggle_server.url), {}, "README", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
