"""The pages for people, /docs and /demo, in a real headless browser (Debian's chromium, driven by
Playwright) against a live gunicorn: what a person sees, and that nothing is fetched from elsewhere.

What Flask's test client can check of the same pages (policy, assets, sections, limits) is in
test_pages.py.
"""
import contextlib
import re
import shutil
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from support import TEXT_ROUTES, Server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless chromium from Debian's package; never a downloaded browser."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (CI installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@contextlib.contextmanager
def guarded_page(browser, server):
    """A fresh page that may talk to `server` only; every other request is refused and recorded."""
    context = browser.new_context()
    context.elsewhere = []

    def only_local(route):
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            context.elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    opened = context.new_page()
    opened.errors = []
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    # Content-Security-Policy refusals appear only on the console (as do the API's deliberate 4xx answers).
    opened.on("console", lambda message: "Content Security Policy" in message.text
              and opened.errors.append(message.text))
    yield opened
    context.close()
    assert context.elsewhere == [], "the page tried to reach other hosts"
    assert opened.errors == [], "the page's scripts failed"


@pytest.fixture
def page(browser, live_server):
    """A guarded page on the live server of the tiny models."""
    with guarded_page(browser, live_server) as opened:
        yield opened





def bar_values(section):
    """{label: probability} as drawn in one model's section."""
    return {row.get_attribute("data-label"): float(row.get_attribute("data-probability"))
            for row in section.locator(".bar").all()}


def explained(server, route, text):
    """The API's answer for `text` on `route`, with its explanation."""
    response = requests.get(server.url + route, params={"query": text, "explain": "true"}, timeout=10)
    response.raise_for_status()
    return response.json()


def shading(section):
    """[(term, contribution, colour class)] of the words shaded in one section's phrase, in order."""
    return [(word.get_attribute("data-term"), float(word.get_attribute("data-contribution")),
             "toward" if "toward" in word.get_attribute("class").split() else "against")
            for word in section.locator(".phrase [data-term]").all()]


def test_docs_render_the_openapi_document_with_no_outside_requests(page, live_server):
    page.goto(live_server.url + "/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/fine-grained" in [p.strip() for p in paths]


def test_demo_with_a_query_shows_both_verdicts_with_a_bar_per_label(page, live_server):
    page.goto(live_server.url + "/demo?query=brilliant+superb+masterpiece")
    expect(page.locator("#query")).to_have_value("brilliant superb masterpiece")
    binary, fine = page.locator("#binary"), page.locator("#fine-grained")
    expect(binary).to_have_attribute("data-state", "done")
    expect(fine).to_have_attribute("data-state", "done")
    expect(binary.locator(".verdict")).to_have_text(re.compile(r"^Positive \(\d+\.\d%\)$"))
    expect(fine.locator(".verdict")).to_have_text(re.compile(r"^Positive \("))
    assert list(bar_values(binary)) == ["Negative", "Positive"]
    assert len(bar_values(fine)) == 5
    api = requests.get(live_server.url + "/", params={"query": "brilliant superb masterpiece"}, timeout=10).json()
    assert bar_values(binary) == api["probabilities"]
    width = binary.locator(".bar.top .fill").evaluate("e => e.style.width")  # the browser writes 100.0% as 100%
    assert width.endswith("%") and float(width[:-1]) == round(100 * api["confidence"], 1)


def test_typing_a_phrase_and_pressing_enter_scores_it_and_updates_the_address(page, live_server):
    page.goto(live_server.url + "/demo")
    expect(page.locator("#binary .verdict")).to_have_text("")
    page.fill("#query", "awful dreadful worst")
    page.press("#query", "Enter")
    expect(page.locator("#binary")).to_have_attribute("data-state", "done")
    expect(page.locator("#binary .verdict")).to_have_text(re.compile("^Negative"))
    assert "query=awful+dreadful+worst" in page.url


def test_demo_shows_the_apis_message_for_a_whitespace_only_phrase(page, live_server):
    page.goto(live_server.url + "/demo?query=%20%20")
    for section in (page.locator(f"#{name}") for name in TEXT_ROUTES):
        expect(section).to_have_attribute("data-state", "error")
        expect(section.locator(".error")).to_be_visible()
        expect(section.locator(".error")).to_have_text(re.compile(r"^Error 400: query is empty or only whitespace"))
        assert section.locator(".bar").count() == 0


def test_demo_shows_a_verdict_and_how_to_build_the_missing_model_side_by_side(browser, model_dir, tmp_path):
    (tmp_path / "binary").symlink_to((model_dir / "binary").resolve())
    server = Server(tmp_path).wait_healthy()
    try:
        page = browser.new_page()
        page.goto(server.url + "/demo?query=brilliant")
        expect(page.locator("#binary")).to_have_attribute("data-state", "done")
        expect(page.locator("#fine-grained")).to_have_attribute("data-state", "error")
        expect(page.locator("#fine-grained .error")).to_have_text(re.compile(r"^Error 404: .*build_model\.py --data"))
        expect(page.locator("#film .error")).to_have_text(re.compile("not built on this server.*--only ratings"))
        page.close()
    finally:
        server.stop()


def test_demo_shades_each_word_of_the_phrase_by_the_apis_contribution_with_a_legend(page, live_server):
    text = "The BRILLIANT film, a dull-ish masterpiece! zzzqx"
    page.goto(live_server.url + "/demo?" + urlencode({"query": text}))
    for name, route in TEXT_ROUTES.items():
        section = page.locator(f"#{name}")
        expect(section).to_have_attribute("data-state", "done")
        answer = explained(live_server, route, text)
        terms = {term["term"]: term["contribution"] for term in answer["explanation"]["terms"]}
        expect(section.locator(".phrase")).to_have_text(text)  # the phrase as typed, nothing lost
        shaded = shading(section)
        # Every unigram term is found in the phrase (unknown words such as zzzqx are not), with the API's number.
        assert {term for term, _, _ in shaded} == {term for term in terms if " " not in term}, name
        for term, contribution, colour in shaded:
            assert contribution == terms[term], (name, term)
            assert colour == ("toward" if contribution >= 0 else "against"), (name, term)
        legend = section.locator(".legend")
        expect(legend).to_be_visible()
        expect(legend).to_contain_text(f"toward {answer['prediction']}")
        expect(legend).to_contain_text(f"toward {answer['explanation']['against']}")
        strongest = section.locator(".strongest [data-term]").all()
        assert [e.get_attribute("data-term") for e in strongest] == list(terms)[:5], name
    # The tiny fine-grained model holds "dull" against its Positive verdict, and lists a bigram it cannot shade.
    fine = page.locator("#fine-grained")
    assert ("dull", "against") in [(term, colour) for term, _, colour in shading(fine)]
    assert any(" " in e.get_attribute("data-term") for e in fine.locator(".strongest [data-term]").all())


def test_on_the_kaggle_models_boring_pushes_the_binary_verdict_toward_negative(browser, kaggle_server):
    text = "that movie was boring"
    with guarded_page(browser, kaggle_server) as page:
        page.goto(kaggle_server.url + "/demo?" + urlencode({"query": text}))
        binary = page.locator("#binary")
        expect(binary).to_have_attribute("data-state", "done")
        expect(binary.locator(".verdict")).to_have_text(re.compile(r"^Negative \("))
        boring = binary.locator('.phrase [data-term="boring"]')
        expect(boring).to_have_count(1)
        expect(boring).to_have_class(re.compile(r"\btoward\b"))
        contribution = float(boring.get_attribute("data-contribution"))
        assert contribution > 0
        api = explained(kaggle_server, "/", text)
        assert api["prediction"] == "Negative"
        assert contribution == {t["term"]: t["contribution"] for t in api["explanation"]["terms"]}["boring"]


def test_the_film_form_asks_what_the_ratings_model_takes_and_shows_its_answer(page, live_server):
    page.goto(live_server.url + "/demo")
    expect(page.locator("#film")).to_have_attribute("data-state", "ready")
    options = page.locator("#film-genre option").all_inner_texts()
    document = requests.get(live_server.url + "/openapi.json", timeout=5).json()
    genres = next(p for p in document["paths"]["/ratings"]["get"]["parameters"] if p["name"] == "genre")
    assert options == genres["schema"]["enum"]  # required: no "not given"
    assert page.locator("#film-mpaa_rating option").first.inner_text() == "not given"
    page.select_option("#film-genre", "Documentary")
    page.fill("#film-budget", "500000")
    page.fill("#film-director", "Someone New")
    page.click("#predict")
    expect(page.locator("#film")).to_have_attribute("data-state", "done")
    api = requests.get(live_server.url + "/ratings", params={"genre": "Documentary", "budget": "500000",
                                                             "director": "Someone New"}, timeout=5).json()
    expect(page.locator("#film .verdict")).to_have_text(
        f"{api['prediction']:.2f} out of 10 (typically within {api['typical_error']:.2f}); never seen: director")
    page.fill("#film-budget", "-5")
    page.click("#predict")
    expect(page.locator("#film")).to_have_attribute("data-state", "error")
    expect(page.locator("#film .error")).to_have_text(re.compile("^Error 400: budget must be a finite positive"))


def test_each_added_model_gets_a_form_of_its_inputs_and_shows_its_answers(browser, model_dir, tmp_path):
    from support import plant_pipeline, save_estimator
    from training import adopt

    models = shutil.copytree(model_dir, tmp_path / "models", symlinks=True)
    fitted, held_out = plant_pipeline()
    held_out.to_csv(tmp_path / "plants.csv", index=False)
    adopt.add("plants", save_estimator(fitted, tmp_path / "plants.skops"), tmp_path / "plants.csv", model_dir=models)
    server = Server(models).wait_healthy()
    try:
        with guarded_page(browser, server) as page:
            page.goto(server.url + "/demo")
            card = page.locator("#added-plants")
            expect(card).to_have_attribute("data-state", "ready")
            expect(page.locator("#film")).to_have_attribute("data-state", "ready")  # the ratings form still there
            assert page.locator("#added-plants-soil").count() == 1  # an open category: typed, not chosen
            page.fill("#added-plants-soil", "clay")
            page.fill("#added-plants-height", "40")
            page.click("#added-plants-form button")
            expect(card).to_have_attribute("data-state", "done")
            api = requests.get(server.url + "/plants", params={"soil": "clay", "height": "40"}, timeout=5).json()
            expect(card.locator(".verdict")).to_have_text(
                f"{api['prediction']} ({round(api['confidence'] * 100)}%)")
            page.fill("#added-plants-height", "1e9")
            page.click("#added-plants-form button")
            expect(card).to_have_attribute("data-state", "error")
            expect(card.locator(".error")).to_have_text(re.compile("^Error 400: height must be a number from"))
    finally:
        server.stop()
