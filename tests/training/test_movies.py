"""The ratings model's data: vega-datasets' movies.json read, cleaned and, on a fresh machine, fetched."""
import hashlib
import http.server
import io
import json
import tarfile
import threading

import pytest

import util
from support import write_tiny_movies
from training import movies


def test_cleaning_fixes_late_dates_and_drops_what_cannot_be_learned_from(tmp_path):
    loaded = movies.read_movies(write_tiny_movies(tmp_path))
    assert loaded.source["rows"] == 400
    assert loaded.source["cleaning"] == {"dates_a_century_late_fixed": 1, "dropped_without_imdb_rating": 1,
                                         "dropped_without_genre_or_budget": 1, "dropped_sharing_a_title": 2}
    frame = loaded.frame
    assert len(frame) == 400 - 4
    assert frame["release_year"].max() <= 2010 and 1935 in frame["release_year"].tolist()
    assert frame["genre"].notna().all() and (frame["budget"] > 0).all() and frame["rating"].between(1, 10).all()
    # Only what is known before release; the grosses, DVD sales and votes are never read.
    assert set(frame.columns) == {*movies.CATEGORIES, *movies.NAMES, *movies.NUMBERS, "release_year",
                                  "release_date", "rating"}


def test_text_fields_are_stripped_and_blank_ones_are_missing(tmp_path):
    path = write_tiny_movies(tmp_path)
    records = json.loads(path.read_text())
    records[10]["Director"], records[11]["Director"], records[12]["Distributor"] = "  Someone  ", "   ", 42
    path.write_text(json.dumps(records))
    frame = movies.read_movies(path).frame
    directors = frame["director"].tolist()
    assert "Someone" in directors and "   " not in directors and "42" in frame["distributor"].tolist()


@pytest.mark.parametrize("content, message", [
    (b"not json", "not a JSON file"),
    (b'{"a": 1}', "expected a JSON list of films"),
    (b'[{"Title": "x"}]', "no field"),
    (json.dumps([{name: None for name in ("Title", "IMDB Rating", "Release Date", "Major Genre", "MPAA Rating",
                                          "Source", "Creative Type", "Director", "Distributor",
                                          "Production Budget", "Running Time min")}] * 5).encode(),
     "films left after cleaning"),
])
def test_a_file_that_is_not_movies_json_is_refused_saying_what_to_pass(tmp_path, content, message):
    path = tmp_path / "movies.json"
    path.write_bytes(content)
    with pytest.raises(util.DataError, match=message):
        movies.read_movies(path)
    with pytest.raises(util.DataError, match="no such file"):
        movies.read_movies(tmp_path / "absent.json")


def test_the_file_is_found_through_the_environment_or_lib_data(tmp_path, monkeypatch):
    from training import data as training_data

    monkeypatch.setattr(training_data, "DATA_DIR", tmp_path / "lib-data")
    monkeypatch.delenv(movies.MOVIES_ENV, raising=False)
    assert movies.movies_path(None) is None
    assert movies.movies_path(tmp_path / "given.json") == tmp_path / "given.json"
    in_lib = write_tiny_movies(tmp_path / "lib-data")
    assert movies.movies_path(None) == in_lib
    monkeypatch.setenv(movies.MOVIES_ENV, str(tmp_path / "env"))
    in_env = write_tiny_movies(tmp_path / "env")
    assert movies.movies_path(None) == in_env


def serve_once(body):
    """A loopback HTTP server answering every GET with `body`; returns its URL and the server."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/vega-datasets-3.2.1.tgz", server


def tarball(members):
    """A .tgz holding {name: bytes}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_download_that_is_not_the_published_package_is_not_used(tmp_path, monkeypatch):
    body = tarball({movies.NPM_MEMBER: b"[]"})
    url, server = serve_once(body)
    try:
        with pytest.raises(util.DataError, match="not the published"):
            movies.fetch_movies(tmp_path, url=url)
        # With the tarball's hash allowed, the member's own hash is still checked.
        monkeypatch.setattr(movies, "NPM_TARBALL_SHA256", hashlib.sha256(body).hexdigest())
        with pytest.raises(util.DataError, match="has not the expected sha256"):
            movies.fetch_movies(tmp_path, url=url)
    finally:
        server.shutdown()
    assert not (tmp_path / "movies.json").exists()


def test_an_unreachable_registry_says_what_to_do(tmp_path):
    with pytest.raises(util.DataError, match="could not download .* pass movies.json with --movies"):
        movies.fetch_movies(tmp_path, url="http://127.0.0.1:9/vega-datasets-3.2.1.tgz")
