"""The README and docs/: the clients shown with their outputs, every setting in a row, every link going somewhere.

The README's "Calling the API" shows each client (curl, HTTPie, requests) with its output, and docs/api.md
the feedback, error and Open Inference Protocol examples that moved there from it. Their examples are read
here; e2e/test_readme_commands.py runs each of them against a live gunicorn on Kaggle-trained models and
compares the output with what the page shows.
"""
import re

import pytest

from support import EXAMPLE_SECTIONS, README, README_URL, ROOT, SERVICE_VARIABLES, console_examples, pycon_examples

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_shows_curl_httpie_and_requests_examples_each_with_its_output():
    calling = EXAMPLE_SECTIONS["README.md"]
    commands = [line.split()[1] for line in calling.splitlines() if line.startswith("$ ")]
    assert {"curl", "http"} <= set(commands)
    assert "import requests" in calling
    assert all(README_URL in command for command, _ in console_examples())  # so the tests can aim them
    assert all(output for _, output in console_examples()), "every command shows its output"


@pytest.mark.parametrize("heading, shown", [
    ("## Feedback", '"/feedback", json={"id": answer["id"], "label": "Positive"}'),
    ("## Errors", "curl -s http://127.0.0.1:5000/\n"),
    ("## The Open Inference Protocol", "curl -s http://127.0.0.1:5000/v2/models/binary/infer"),
])
def test_the_api_examples_in_docs_are_among_those_run_against_a_live_server(heading, shown):
    section = EXAMPLE_SECTIONS[f"docs/api.md {heading}"]
    assert shown in section
    run = [command + "\n" for command, _ in console_examples()] + pycon_examples()
    assert any(shown in example for example in run), f"{heading}'s example is not among those the e2e test runs"


def test_the_settings_table_has_one_row_for_every_environment_variable_the_service_reads():
    settings = README[README.index("\n## Settings\n"):README.index("\n## ", README.index("\n## Settings\n") + 1)]
    rows = re.findall(r"^\| `([A-Z_]+)` \|", settings, flags=re.M)
    internal = {"SENTIMENT_METRICS_DIR_SET_UP"}  # set by gunicorn.conf.py's hooks for the workers, not by users
    assert sorted(rows) == sorted(SERVICE_VARIABLES - internal)


def anchors(text):
    """The anchors GitHub gives a Markdown page's headings (code blocks left out)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(path):
    """(target file, anchor or None) of every relative link on a page, outside code blocks."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        yield (path.parent / file).resolve() if file else path, anchor or None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_of_the_readme_and_docs_reaches_a_file_and_its_heading(page):
    for target, anchor in relative_links(page):
        assert target.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(target.read_text()), f"{page.name} links to {target.name}#{anchor}: no heading"
