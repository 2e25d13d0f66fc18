"""Score films offline: a JSON-lines file, one film per line (`{"genre": "Drama", "budget": 2e7, ...}`, the
instances of `POST /ratings`), with a model of named inputs (`kinds.tabular`).

`batch.blocks.score_block` hands a block here when the job's model takes named inputs; each non-blank
line becomes a CSV row `[file,]line,prediction,unseen`: the number as the API answers it (two
decimals) and the inputs whose value the model never saw, `;`-separated (a classifier's row holds its
label, its probability and every label's, three decimals, before `unseen`). A line that is not a JSON
object, or a film the API would refuse, stops the run with the API's message and the line's place.
"""
import json
from itertools import repeat

import orjson

import util
from batch.inputs import decode
from kinds.tabular import rounded
from serving.errors import ApiError

HEADER = ["line", "prediction", "unseen"]


def parse_films(scorer, block):
    """The block's (line numbers, its films as checked columns: `columns_of`); `DataError` naming the file and
    line of a bad one."""
    text = decode(block.data, block.path, block.first_line)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    numbered = [(number, line) for number, line in enumerate(lines, start=block.first_line) if line.strip()]
    documents = bulk_json([line for _, line in numbered]) if "[" not in text and "]" not in text else None
    if documents is None:  # each line on its own, to find the bad one
        documents = [line_json(block.path, number, line) for number, line in numbered]
    for (number, _), film in zip(numbered, documents):
        if film.__class__ is not dict:
            raise util.DataError(f"{block.path}: line {number}: a JSON {type(film).__name__}, not an object; each "
                                 'line holds one film, e.g. {"genre": "Drama", "budget": 20000000}.')
    keys = [number for number, _ in numbered]
    if b"\\u" in block.data:  # only an escape can make a lone surrogate
        for number, film in zip(keys, documents):
            check_characters(block.path, number, film)
    columns = scorer.columns_of(documents)
    if columns is None:  # some value is not plainly good: check film by film, for the first bad one's line
        films = []
        for number, film in zip(keys, documents):
            try:
                films.append(scorer.check_input(film, where=""))
            except ApiError as exc:
                raise util.DataError(f"{block.path}: line {number}: {exc.description}") from None
        columns = {name: [film[name] for film in films] for name in scorer.by_name}
    return keys, columns


def bulk_json(lines):
    """Each line's one JSON value, in one call to the decoder; None if a line is not exactly one value.

    The lines are joined as `[[line 1],[line 2],...]`: with no bracket in the lines (the caller's
    condition; a film needs none), the only brackets are the joins, so a line holding two values gives a
    list of two, and a string running over a line's end swallows a join and leaves fewer lists than lines.
    The decoder is orjson's, about 40% quicker here than the json module's and strict where json is lax: it
    refuses NaN, a number beyond a float's range and a lone surrogate escape, which sends the block the
    slow way (the json module, line by line), so every film is read as the API reads it.
    """
    try:
        values = orjson.loads("[[" + "],[".join(lines) + "]]")
    except orjson.JSONDecodeError:
        return None
    if len(values) != len(lines) or not all(len(value) == 1 for value in values):
        return None
    return [value[0] for value in values]


def check_characters(path, number, film):
    """`DataError` for a film holding half of a surrogate pair (`"\\ud800"`), which no CSV in UTF-8 can hold."""
    try:
        json.dumps(film, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise util.DataError(f"{path}: line {number}: the film holds a lone surrogate escape (such as \\ud800), "
                             "which is not a character; write its text as UTF-8.") from None


def line_json(path, number, line):
    """One line's JSON value; `DataError` naming the line when it is not JSON."""
    try:
        return json.loads(line)
    except ValueError as exc:
        raise util.DataError(f"{path}: line {number}: not JSON ({exc}). Each line holds one film as a JSON "
                             'object, e.g. {"genre": "Drama", "budget": 20000000}.') from None


def score_films(scorer, job, block):
    """Score one block of films; return (row count, the rows as CSV bytes)."""
    from batch.blocks import csv_bytes

    keys, columns = parse_films(scorer, block)
    unseen = scorer.unseen_columns(columns, len(keys))
    prefix = [block.path] if job.file_column else []
    if scorer.labels is not None:  # a classifier: as the text models' rows, and the inputs never seen
        from batch.blocks import text_rows

        rows = text_rows(prefix, keys, scorer.labels, scorer.probability_columns(columns, len(keys)))
        # csv_bytes([["", seen]]) is "," and the field as csv writes it (quoted only where it must be).
        return len(keys), "".join(row + csv_bytes([["", seen]]).decode("utf-8") for row, seen in zip(
            rows.decode("utf-8").splitlines(), unseen)).encode("utf-8")
    predictions = rounded(scorer.predict_columns(columns, len(keys)), scorer.decimals)  # as the API rounds them
    rows = zip(repeat(block.path), keys, predictions, unseen) if job.file_column else zip(keys, predictions, unseen)
    return len(keys), csv_bytes(rows)


def header(labels):
    """The columns of a model of named inputs' rows: a regressor's number, or a classifier's label and
    probabilities."""
    return HEADER if labels is None else ["line", "prediction", "confidence", *labels, "unseen"]
