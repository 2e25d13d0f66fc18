"""The README's "Calling the API" section shows each client (curl, HTTPie, requests) with its output.

Its examples are read here; e2e/test_readme_commands.py runs each of them against a live gunicorn on
Kaggle-trained models and compares the output with what the README shows.
"""
import re

from support import ROOT

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


def test_the_readme_shows_curl_httpie_and_requests_examples_each_with_its_output():
    commands = [command.split()[0] for command, _ in console_examples()]
    assert {"curl", "http"} <= set(commands)
    assert all(README_URL in command for command, _ in console_examples())  # so the tests can aim them
    assert any("import requests" in block for block in pycon_examples())
    assert all(output for _, output in console_examples()), "every command shows its output"
