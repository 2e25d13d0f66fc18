"""Score films offline: a JSON-lines file, one film per line (`{"genre": "Drama", "budget": 2e7, ...}`, the
instances of `POST /ratings`), with a model of named inputs (`kinds.tabular`).

`batch.blocks.score_block` hands a block here when the job's model takes named inputs; each non-blank
line becomes a CSV row `[file,]line,prediction,unseen`: the number as the API answers it (two
decimals) and the inputs whose value the model never saw, `;`-separated. A line that is not a JSON
object, or a film the API would refuse, stops the run with the API's message and the line's place.
"""
import json

import util
from batch.inputs import decode
from serving.errors import ApiError

HEADER = ["line", "prediction", "unseen"]


def parse_films(scorer, block):
    """The block's (line numbers, checked films); `DataError` naming the file and line of a bad one."""
    lines = decode(block.data, block.path, block.first_line).split("\n")
    if lines[-1] == "":
        lines.pop()
    numbered = [(number, line) for number, line in enumerate(lines, start=block.first_line) if line.strip()]
    try:  # the block's lines in one call to the JSON decoder; line by line only to find a bad one
        documents = json.loads("[" + ",".join(line for _, line in numbered) + "]")
        if len(documents) != len(numbered):
            raise ValueError("a line held more than one value")
    except ValueError:
        documents = [line_json(block.path, number, line) for number, line in numbered]
    keys, films = [], []
    for (number, _), film in zip(numbered, documents):
        if not isinstance(film, dict):
            raise util.DataError(f"{block.path}: line {number}: a JSON {type(film).__name__}, not an object; each "
                                 'line holds one film, e.g. {"genre": "Drama", "budget": 20000000}.')
        try:
            films.append(scorer.check_input(film, where=""))
        except ApiError as exc:
            raise util.DataError(f"{block.path}: line {number}: {exc.description}") from None
        keys.append(number)
    return keys, films


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

    keys, films = parse_films(scorer, block)
    prefix = [block.path] if job.file_column else []
    predictions = scorer.predictions_of(films)
    return len(keys), csv_bytes([*prefix, key, prediction, ";".join(scorer.unseen(film))]
                                for key, film, prediction in zip(keys, films, predictions))
