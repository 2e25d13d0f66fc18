"""The pages for people, /docs and /demo, as Flask's test client sees them: the policy that keeps them
to this app's files, the assets they load, and a demo page written from the app's own routes and limits.

What a person sees in a browser is in e2e/test_browser_pages.py.
"""
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from app import create_app
from support import TEXT_ROUTES


class Page(HTMLParser):
    """The asset links of a page, and the attributes of its tags by id and by class."""

    def __init__(self, html):
        super().__init__()
        self.links, self.by_id, self.sections = [], {}, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.links += [value for name, value in attrs if name in ("src", "href")]
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes
        if tag == "section" and "model" in (attributes.get("class") or "").split():
            self.sections.append(attributes)


@pytest.mark.parametrize("path", ["/docs", "/demo"])
def test_pages_load_only_assets_this_app_serves_under_a_self_only_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = Page(response.get_data(as_text=True))
    assert page.links
    for link in page.links:
        assert not urlsplit(link).netloc, f"{link} is on another host"
        assert client.get("/" + link).status_code == 200, link


@pytest.mark.parametrize("path, status", [
    ("/docs/swagger-ui-bundle.js", 200),
    ("/static/demo.js", 200),
    ("/docs/core.py", 404),  # a file of the swagger_ui package that is not one of Swagger UI's assets
    ("/docs/..%2F__init__.py", 404),
    ("/static/demo.html", 404),  # the template, not an asset
    ("/static/..%2Fapp.py", 404),
])
def test_only_the_pages_own_assets_are_served(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    if status == 404:
        assert response.is_json and "message" in response.get_json()


def test_the_demo_has_one_section_per_scoring_route_calling_it(client):
    page = Page(client.get("/demo").get_data(as_text=True))
    sections = {section["id"]: section["data-path"] for section in page.sections}
    assert list(sections) == list(TEXT_ROUTES)
    for name, path in sections.items():
        # Relative, so the page also works under a proxy's prefix; the browser resolves it against /demo.
        assert not path.startswith("/"), name
        assert urljoin("/demo", path) == TEXT_ROUTES[name]


@pytest.mark.parametrize("limit", [None, 25])
def test_the_demo_text_box_takes_as_many_characters_as_the_server_accepts(model_dir, limit):
    app = create_app({"MODEL_DIR": str(model_dir), **({"MAX_QUERY_LENGTH": limit} if limit else {})})
    page = Page(app.test_client().get("/demo").get_data(as_text=True))
    assert int(page.by_id["query"]["maxlength"]) == app.config["MAX_QUERY_LENGTH"]
    if limit:
        assert app.config["MAX_QUERY_LENGTH"] == limit


def test_the_explained_words_are_the_phrases_tokens_the_demo_looks_for(client):
    """demo.js finds each unigram term in the phrase with scikit-learn's default token pattern, lowercased."""
    text = "The BRILLIANT film, a dull-ish masterpiece! zzzqx"
    words = set(re.findall(r"(?u)\b\w\w+\b", text.lower()))
    for route in TEXT_ROUTES.values():
        why = client.get(route, query_string={"query": text, "explain": "true"}).get_json()["explanation"]
        unigrams = {term["term"] for term in why["terms"] if " " not in term["term"]}
        assert unigrams and unigrams <= words, route
        assert unigrams | set(why["unknown"]) >= words, route
