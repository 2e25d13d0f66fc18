"""The README's "Calling the API" section shows each client (curl, HTTPie, requests) with its output.

Its examples are read here; e2e/test_readme_commands.py runs each of them against a live gunicorn on
Kaggle-trained models and compares the output with what the README shows.
"""
from support import README_URL, console_examples, pycon_examples


def test_the_readme_shows_curl_httpie_and_requests_examples_each_with_its_output():
    commands = [command.split()[0] for command, _ in console_examples()]
    assert {"curl", "http"} <= set(commands)
    assert all(README_URL in command for command, _ in console_examples())  # so the tests can aim them
    assert any("import requests" in block for block in pycon_examples())
    assert all(output for _, output in console_examples()), "every command shows its output"
