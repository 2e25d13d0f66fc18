"""The request parsers (parsing.py), without HTTP: whatever arrives, they return the texts to score or
raise one of the named errors, never anything else (property tests), with messages that say what to do."""
import json
import re
import sys
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinds.text_inputs import TEXT_PATTERN, check_text, text_from_get, texts_from_post
from serving.errors import ApiError, BadQuery, TooLarge
from serving.payloads import is_json, json_type, parse_json

MAX_LENGTH = 50
MAX_BATCH = 5
MIMETYPES = ["", "application/json", "application/x-www-form-urlencoded", "text/plain", "application/ld+json",
             "multipart/form-data"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.sampled_from(["query", "queries", "x"]),
                                                                      children, max_size=3),
    max_leaves=20)
# Texts the service must score: not blank, within the limit; any Unicode (emoji, RTL, CJK, NUL, controls).
good_texts = st.text(min_size=1, max_size=MAX_LENGTH).filter(lambda t: t.strip())


def get_with_flag(query_string=b"", mimetype="", body=b""):
    """text_from_get with the test limits: (text, explain)."""
    return text_from_get(query_string=query_string, mimetype=mimetype, body=body, max_length=MAX_LENGTH)


def get(query_string=b"", mimetype="", body=b""):
    """The text text_from_get finds."""
    return get_with_flag(query_string, mimetype, body)[0]


def post_with_flag(body):
    """texts_from_post with the test limits: (texts, explain)."""
    return texts_from_post(body=body, max_length=MAX_LENGTH, max_batch=MAX_BATCH)


def post(body):
    """The texts texts_from_post finds."""
    return post_with_flag(body)[0]


@given(good_texts)
def test_any_text_comes_back_unchanged_whichever_way_it_is_sent(text):
    encoded = urlencode({"query": text}).encode()
    assert get(query_string=encoded) == text
    assert get(mimetype="application/x-www-form-urlencoded", body=encoded) == text
    assert get(mimetype="application/json", body=json.dumps({"query": text}).encode()) == text
    assert get(mimetype="application/json", body=json.dumps({"query": text}, ensure_ascii=False).encode()) == text


@given(st.binary(max_size=200), st.sampled_from(MIMETYPES), st.binary(max_size=200))
def test_arbitrary_bytes_give_a_text_or_a_named_error(query_string, mimetype, body):
    try:
        text = get(query_string=query_string, mimetype=mimetype, body=body)
    except (BadQuery, TooLarge):
        return
    assert isinstance(text, str) and text.strip() and len(text) <= MAX_LENGTH


@given(json_values)
def test_any_json_document_on_get_gives_a_text_or_a_named_error(document):
    try:
        text = get(mimetype="application/json", body=json.dumps(document).encode())
    except (BadQuery, TooLarge):
        return
    assert isinstance(document, dict) and document["query"] == text


@given(json_values)
def test_any_json_document_on_post_gives_the_texts_or_a_named_error(document):
    try:
        texts = post(json.dumps(document).encode())
    except (BadQuery, TooLarge):
        return
    assert texts == document["queries"]
    assert 1 <= len(texts) <= MAX_BATCH


@given(st.lists(good_texts, min_size=1, max_size=MAX_BATCH))
def test_a_valid_batch_comes_back_in_order(texts):
    assert post(json.dumps({"queries": texts}).encode()) == texts


@given(st.lists(good_texts, min_size=1, max_size=MAX_BATCH - 1), st.data(),
       st.sampled_from([None, 3, [], {}, "", "  \t", "x" * (MAX_LENGTH + 1)]))
def test_a_bad_element_is_named_by_its_index(texts, data, bad):
    index = data.draw(st.integers(0, len(texts)))
    texts.insert(index, bad)
    with pytest.raises(ApiError, match=rf"queries\[{index}\]"):
        post(json.dumps({"queries": texts}).encode())


@given(st.integers(MAX_BATCH + 1, 3 * MAX_BATCH))
def test_a_batch_over_the_limit_is_too_large(size):
    with pytest.raises(TooLarge, match=f"limit is {MAX_BATCH}"):
        post(json.dumps({"queries": ["good"] * size}).encode())


@settings(max_examples=20)
@given(st.integers(1_000, 200_000), st.sampled_from(["[", '{"a":', '{"query":', '{"queries":[']))
def test_deeply_nested_json_is_a_bad_query_not_a_crash(depth, opener):
    body = (opener * depth).encode()
    with pytest.raises(BadQuery):
        parse_json(body)
    with pytest.raises(BadQuery):
        post(body)


@given(st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.lists(st.text()),
                 st.dictionaries(st.text(), st.text()), st.text()))
def test_check_text_accepts_exactly_the_non_blank_strings_within_the_limit(value):
    valid = isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_LENGTH
    if valid:
        assert check_text(value, max_length=MAX_LENGTH, where="query") == value
    else:
        expected = TooLarge if isinstance(value, str) and value.strip() else BadQuery
        with pytest.raises(expected):
            check_text(value, max_length=MAX_LENGTH, where="query")


@given(good_texts, good_texts)
def test_a_query_sent_twice_is_refused_whichever_ways_are_combined(first, second):
    in_url = urlencode({"query": first}).encode()
    attempts = [
        (urlencode([("query", first), ("query", second)]).encode(), "", b""),
        (in_url, "application/json", json.dumps({"query": second}).encode()),
        (in_url, "application/x-www-form-urlencoded", urlencode({"query": second}).encode()),
    ]
    for query_string, mimetype, body in attempts:
        with pytest.raises(BadQuery, match="send it once"):
            get(query_string=query_string, mimetype=mimetype, body=body)


@pytest.mark.parametrize("mimetype, expected", [
    ("application/json", True), ("application/ld+json", True), ("application/problem+json", True),
    ("application/x-www-form-urlencoded", False), ("text/plain", False), ("", False), ("application/jsonp", False),
])
def test_json_bodies_are_recognised_by_their_media_type_including_plus_json(mimetype, expected):
    assert is_json(mimetype) is expected


@pytest.mark.parametrize("value, name", [(None, "null"), ({}, "an object"), ([], "an array"), (True, "a boolean"),
                                         (3, "a number"), (2.5, "a number")])
def test_messages_name_json_types_as_json_does(value, name):
    assert json_type(value) == name
    with pytest.raises(BadQuery) as refused:
        check_text(value, max_length=MAX_LENGTH, where="query")
    assert refused.value.description == f"query must be a string, not {name}."


@pytest.mark.parametrize("call, message", [
    (lambda: get(), 'Missing query: send the text as ?query=..., as a form field query=..., or as a JSON body'),
    (lambda: get(query_string=b"query=%20"), "query is empty or only whitespace; send the text as ?query="),
    (lambda: post(b""), 'POST takes a JSON body {"queries": ["...", ...]}; the body is empty.'),
    (lambda: post(b"query=good"), "to score one text, send a GET (with curl -d, add -X GET)."),
    (lambda: post(b'{"queries": ["good", " "]}'), "queries[1] is empty or only whitespace; every text in the batch"),
    (lambda: get(query_string=b"query=" + b"a" * (MAX_LENGTH + 1)), "the limit is 50. Send a shorter text."),
], ids=["missing", "blank", "empty-post", "form-posted", "blank-in-batch", "too-long"])
def test_each_error_tells_the_caller_what_to_send_instead(call, message):
    with pytest.raises(ApiError) as refused:
        call()
    assert message in refused.value.description


def test_the_documents_text_pattern_is_the_parsers_blank_rule_for_every_code_point():
    """openapi.py publishes TEXT_PATTERN; check_text refuses what str.strip() empties. They must agree."""
    pattern = re.compile(TEXT_PATTERN)
    disagree = [hex(code) for code in range(sys.maxunicode + 1)
                if bool(pattern.search(chr(code))) != bool(chr(code).strip())]
    assert disagree == []
    assert pattern.search("\u0085") is None and pattern.search("\ufeff")  # where ECMAScript's \s differs


@pytest.mark.parametrize("query_string, mimetype, body, explain", [
    (b"query=fine", "", b"", False),
    (b"query=fine&explain=true", "", b"", True),
    (b"query=fine&explain=1", "", b"", True),
    (b"query=fine&explain=false", "", b"", False),
    (b"query=fine&explain=0", "", b"", False),
    (b"", "application/x-www-form-urlencoded", b"query=fine&explain=true", True),
    (b"", "application/json", b'{"query": "fine", "explain": true}', True),
    (b"", "application/json", b'{"query": "fine", "explain": false}', False),
    (b"explain=true", "application/json", b'{"query": "fine"}', True),
])
def test_explain_is_read_from_wherever_the_text_may_come(query_string, mimetype, body, explain):
    assert get_with_flag(query_string, mimetype, body) == ("fine", explain)


@pytest.mark.parametrize("query_string, mimetype, body, message", [
    (b"query=fine&explain=yes", "", b"", "explain='yes' is not a flag: send explain=true or explain=false"),
    (b"query=fine&explain=", "", b"", "explain='' is not a flag"),
    (b"query=fine&explain=True", "", b"", "explain='True' is not a flag"),
    (b"query=fine&explain=1&explain=0", "", b"", "explain was sent 2 times; send it once."),
    (b"", "application/json", b'{"query": "fine", "explain": "true"}',
     "explain must be true or false in JSON, not a string"),
    (b"", "application/json", b'{"query": "fine", "explain": 1}',
     "explain must be true or false in JSON, not a number"),
])
def test_a_bad_explain_is_a_400_saying_what_is_accepted(query_string, mimetype, body, message):
    with pytest.raises(BadQuery, match=re.escape(message)):
        get_with_flag(query_string, mimetype, body)


def test_a_post_reads_explain_from_its_json_body_only_as_a_boolean():
    assert post_with_flag(b'{"queries": ["a", "b"]}') == (["a", "b"], False)
    assert post_with_flag(b'{"queries": ["a"], "explain": true}') == (["a"], True)
    with pytest.raises(BadQuery, match="explain must be true or false in JSON, not null"):
        post_with_flag(b'{"queries": ["a"], "explain": null}')
