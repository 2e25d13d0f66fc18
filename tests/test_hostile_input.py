"""Hostile and odd input: every answer is JSON, none is 5xx, none carries internals, and the service
answers normally afterwards. The app's own rules run through Flask's test client; what only a real
server sees (request size limits, raw bytes on the socket, URL normalisation) runs against gunicorn."""
import json
import socket

import pytest
import requests

GOOD = "a brilliant superb film"
MIB = 1 << 20


def assert_json_error(status, body, expected_status, hint=""):
    """The answer is a JSON {"message": ...} with the expected status and no internals."""
    assert status == expected_status, body
    document = json.loads(body)
    assert list(document) == ["message"]
    assert hint in document["message"]
    for leak in ("Traceback", "File \"", ".py", "/work", "site-packages", "werkzeug", "Werkzeug"):
        assert leak not in body, leak


def raw_request(server, data, timeout=10):
    """Send bytes exactly as given over a socket; return (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode("utf-8")


# --- The app's rules, through the test client ----------------------------------------------------

@pytest.mark.parametrize("text", [
    "😀 what a film 🎬🍿", "فيلم رائع جدا", "מסריט נהדר", "素晴らしい映画です", "这部电影太棒了", "영화 최고",
    "a\x00b", "\x01\x02\x7f control", "\u200b\u200d zero width", "e\u0301\u0301\u0301 combining",
    "\U0001F600" * 2000, "%ZZ invalid escape", "<script>alert(1)</script>", "'; DROP TABLE reviews; --",
], ids=["emoji", "arabic-rtl", "hebrew-rtl", "japanese", "chinese", "korean", "nul", "controls", "zero-width",
        "combining", "many-emoji", "literal-percent", "html", "sql"])
def test_odd_but_valid_text_gets_an_answer_every_way_it_is_sent(client, text):
    answers = [client.get("/", query_string={"query": text}), client.get("/", data={"query": text}),
               client.get("/", json={"query": text}), client.post("/", json={"queries": [text]})]
    assert [r.status_code for r in answers] == [200] * 4
    singles = [r.get_json() for r in answers[:3]] + answers[3].get_json()["predictions"]
    assert all(s == singles[0] for s in singles)
    assert singles[0]["prediction"] in ("Negative", "Positive")


@pytest.mark.parametrize("path, kwargs, status, hint", [
    ("/?query=", {}, 400, "empty or only whitespace"),
    ("/?query=%20%09%0A%0D%E3%80%80", {}, 400, "empty or only whitespace"),  # ends with U+3000 ideographic space
    ("/?query=" + "a" * 10_001, {}, 413, "limit is 10,000"),
    ("/?query=%FF%FE", {}, 400, "not valid UTF-8"),
    ("/?query=%E2%82", {}, 400, "not valid UTF-8"),  # a truncated three-byte sequence
    ("/?query=%C0%AF", {}, 400, "not valid UTF-8"),  # an overlong '/'
    ("/?query=%ED%A0%80", {}, 400, "not valid UTF-8"),  # a UTF-16 surrogate
    ("/", {"data": b"query=%FF", "content_type": "application/x-www-form-urlencoded"}, 400, "form body"),
    ("/", {"data": b"query=\xff", "content_type": "application/x-www-form-urlencoded"}, 400, "form body"),
    ("/", {"data": b'{"query": "\xff"}', "content_type": "application/json"}, 400, "not valid UTF-8"),
    ("/?query=a&query=b", {}, 400, "sent 2 times"),
    ("/?query=a", {"json": {"query": "b"}}, 400, "sent 2 times"),
    ("/?query=a", {"data": {"query": "b"}}, 400, "sent 2 times"),
], ids=["empty", "whitespace", "too-long", "invalid-utf8", "truncated-utf8", "overlong-utf8", "surrogate",
        "form-escaped-invalid-utf8", "form-raw-invalid-utf8", "json-raw-invalid-utf8", "repeated",
        "url-and-json", "url-and-form"])
def test_unusable_queries_answer_4xx_json(client, path, kwargs, status, hint):
    response = client.get(path, **kwargs)
    assert_json_error(response.status_code, response.get_data(as_text=True), status, hint)


WRONG_SHAPES = [None, 1, 1.5, True, "text", [], ["query"], {}, {"query": None}, {"query": 1}, {"query": True},
                {"query": ["a"]}, {"query": {"a": "b"}}, {"Query": "a"}]


@pytest.mark.parametrize("document", WRONG_SHAPES, ids=[json.dumps(d) for d in WRONG_SHAPES])
def test_json_of_every_wrong_shape_on_get_answers_400(client, document):
    response = client.get("/", data=json.dumps(document), content_type="application/json")
    assert_json_error(response.status_code, response.get_data(as_text=True), 400)


BATCH_SHAPES = WRONG_SHAPES + [{"queries": None}, {"queries": "a"}, {"queries": {"0": "a"}}, {"queries": []},
                               {"queries": [["a"]]}, {"queries": [{"query": "a"}]}]


@pytest.mark.parametrize("document", BATCH_SHAPES, ids=[json.dumps(d) for d in BATCH_SHAPES])
def test_json_of_every_wrong_shape_on_post_answers_400(client, document):
    response = client.post("/fine-grained", data=json.dumps(document), content_type="application/json")
    assert_json_error(response.status_code, response.get_data(as_text=True), 400)


@pytest.mark.parametrize("body", [
    b"", b"   ", b"{", b"{'queries': ['a']}", b'{"queries": ["a",]}', b'{"queries": ["a"]} trailing',
    b"NaN", b'{"queries": ["a"]', b"\x00\x01", b"\xef\xbb\xbf{}", b'{"queries": [' + b"9" * 5000 + b"]}",
    b"[" * 100_000, b'{"a":' * 100_000, b'{"queries": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
], ids=["empty", "blank", "open-brace", "single-quotes", "trailing-comma", "trailing-text", "nan", "unclosed",
        "binary", "bom", "huge-number", "deep-arrays", "deep-objects", "deep-but-closed"])
def test_malformed_and_deeply_nested_json_answers_400(client, body):
    response = client.post("/", data=body, content_type="application/json")
    assert_json_error(response.status_code, response.get_data(as_text=True), 400)


@pytest.mark.parametrize("queries, status, hint", [
    (["good"] * 1001, 413, "limit is 1,000"),
    (["good", "fine", None], 400, "queries[2] must be a string"),
    (["good", " \n "], 400, "queries[1] is empty"),
    (["good"] * 10 + ["x" * 10_001], 413, "queries[10] is 10,001 characters"),
], ids=["too-many", "null-element", "blank-element", "long-element"])
def test_bad_batches_name_the_limit_or_the_index(client, queries, status, hint):
    response = client.post("/", json={"queries": queries})
    assert_json_error(response.status_code, response.get_data(as_text=True), status, hint)


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/", "GET, POST"), ("DELETE", "/fine-grained", "GET, POST"), ("PATCH", "/", "GET, POST"),
    ("POST", "/health", "GET"), ("DELETE", "/models", "GET"), ("PUT", "/openapi.json", "GET"),
], ids=lambda v: v.replace("/", "_") if isinstance(v, str) else v)
def test_wrong_methods_answer_405_json_with_allow(client, method, path, allow):
    response = client.open(path, method=method)
    assert_json_error(response.status_code, response.get_data(as_text=True), 405, f"{method} is not allowed")
    assert set(response.headers["Allow"].split(", ")) >= set(allow.split(", "))


# --- What only the real server sees --------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fapp.py", "/static/../app.py",
    "/static/app.py", "//etc/passwd", "/lib/models/binary/manifest.json", "/.git/config", "/app.py",
    "/%00", "/console", "/health/../../app.py", "/..\\..\\app.py",
])
def test_unknown_paths_and_traversal_attempts_answer_404_json(live_server, path):
    status, headers, body = raw_request(live_server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert_json_error(status, body, 404, "No such endpoint")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("request_line", [
    b"GET /?query=\xff\xfe HTTP/1.1", b"GET /?query=caf\xc3\xa9 HTTP/1.1", b"GET /\xc0\xaf HTTP/1.1",
    b"GET /?query=a\x00b HTTP/1.1", b"GARBAGE", b"GET / HTTP/9.9",
], ids=["invalid-utf8", "raw-utf8", "overlong-in-path", "raw-nul", "not-http", "bad-version"])
def test_raw_bytes_that_are_not_valid_http_answer_400_json(live_server, request_line):
    status, headers, body = raw_request(live_server, request_line + b"\r\nHost: x\r\n\r\n")
    assert headers["Content-Type"] == "application/json"
    assert_json_error(status, body, 400, "not valid HTTP")


def test_a_header_too_large_answers_431_json(live_server):
    status, headers, body = raw_request(live_server, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert headers["Content-Type"] == "application/json"
    assert_json_error(status, body, 431, "headers")


def body_of_size(size):
    """A valid JSON batch of exactly `size` bytes."""
    head, tail = b'{"queries": ["', b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("size", [MIB + 1, 4 * MIB])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_size_limit_answer_413_json(live_server, size, chunked):
    body = body_of_size(size)
    data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = requests.post(live_server.url + "/", data=data, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert_json_error(response.status_code, response.text, 413, "over 1,048,576 bytes")


def test_a_chunked_body_of_exactly_the_size_limit_is_read_whole(live_server):
    # Werkzeug on its own cut chunked bodies at the limit without a word; this one must arrive whole.
    texts = ["good film " * 104] * 1000
    body = json.dumps({"queries": texts}).encode()
    texts[-1] += "x" * (MIB - len(body))
    body = json.dumps({"queries": texts}).encode()
    assert len(body) == MIB
    response = requests.post(live_server.url + "/", data=iter([body[:MIB // 2], body[MIB // 2:]]),
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == len(texts)


def test_the_service_answers_normally_after_the_hostile_requests(live_server):
    hostile = [b"GARBAGE\r\n\r\n", b"GET /?query=\xff HTTP/1.1\r\n\r\n",
               b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b"[" * 100_000,
               b"GET /../../etc/passwd HTTP/1.1\r\n\r\n"]
    for data in hostile * 5:
        assert raw_request(live_server, data)[0] in (400, 404)
    response = requests.get(live_server.url + "/", params={"query": GOOD}, timeout=5)
    assert response.status_code == 200
    assert response.json()["prediction"] == "Positive"
    assert requests.get(live_server.url + "/health", timeout=5).json()["status"] == "ok"
