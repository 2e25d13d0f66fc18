"""Pages for people: the API reference at /docs, a demo at /demo, and the few files they load.

Every asset is served by this app (Swagger UI's from its Python package), so the pages work offline
and may load nothing else: the policy below makes the browser enforce it. The demo page's sections
are written in from `config.MODEL_ROUTES` when it is served, so it scores with whatever models the
routes define.
"""
from pathlib import Path

import swagger_ui
from flask import current_app, make_response, render_template_string, send_from_directory
from werkzeug.exceptions import NotFound

from serving.config import MODEL_ROUTES, NUMBER_MODELS

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Swagger UI's files ship inside the swagger-ui-py wheel: /docs works offline, with no CDN.
SWAGGER_UI_DIR = Path(swagger_ui.__file__).resolve().parent / "static"
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
# The pages' own scripts and style sheet; only these files of static/ are reachable by URL.
PAGE_ASSETS = ("demo.css", "demo.js", "docs.js", "ratings.js")
# URL rules of the pages and their assets, by endpoint name; openapi.py describes the same ones.
ADDED_MODELS = "sentiment.added"  # app.extensions' key for {route: added model's name}
PAGE_ROUTES = {"docs": "/docs", "docs_asset": "/docs/<name>", "demo": "/demo", "page_asset": "/static/<name>"}

# The pages may load and call nothing but this app: the browser enforces what the tests check.
# Inline styles stay allowed for Swagger UI's components, and data: images for its icons.
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'"


def add_pages(app):
    """Wire /docs, its Swagger UI assets, /demo and the pages' own assets into `app`."""
    views = {"docs": docs_page, "docs_asset": swagger_ui_asset, "demo": demo_page, "page_asset": page_asset}
    for endpoint, rule in PAGE_ROUTES.items():
        app.add_url_rule(rule, endpoint, views[endpoint])


def with_policy(response):
    """A page's response under the policy that keeps it to this app's own files."""
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def docs_page():
    """The API reference: Swagger UI rendering this server's /openapi.json."""
    return with_policy(send_from_directory(STATIC_DIR, "docs.html", max_age=0))


def demo_page():
    """The demo page, with one section per text model's route and the text limit of this server, and a
    form for each model added with `release.py add`."""
    # Relative paths, so the page also works when a proxy serves the API under a prefix.
    models = [{"name": name, "title": name.capitalize(), "path": route.lstrip("/") or "."}
              for name, route in MODEL_ROUTES.items() if name not in NUMBER_MODELS]  # the text models
    # The models added with `release.py add` ({route: name}, kept current by the factory): a form each.
    added = [{"name": name, "route": route, "path": route.lstrip("/")}
             for route, name in sorted(current_app.extensions.get(ADDED_MODELS, {}).copy().items())]
    response = make_response(render_template_string((STATIC_DIR / "demo.html").read_text(encoding="utf-8"),
                                                     models=models, added=added,
                                                     max_length=current_app.config["MAX_QUERY_LENGTH"]))
    response.headers["Cache-Control"] = "no-cache, max-age=0"  # as send_from_directory's other pages
    return with_policy(response)


def page_asset(name):
    """One of the pages' own scripts or style sheet (listed in PAGE_ASSETS), never any other file."""
    if name not in PAGE_ASSETS:
        raise NotFound()
    return send_from_directory(STATIC_DIR, name, max_age=0)


def swagger_ui_asset(name):
    """One of Swagger UI's files; they change only with the package, so browsers may keep them a day."""
    if name not in SWAGGER_UI_FILES:
        raise NotFound()
    return send_from_directory(SWAGGER_UI_DIR, name, max_age=86400)
