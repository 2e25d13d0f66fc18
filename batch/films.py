"""Score films offline: a JSON-lines file, one film per line (`{"genre": "Drama", "budget": 2e7, ...}`, the
instances of `POST /ratings`), with a model of named inputs (`kinds.tabular`).

`batch.blocks.score_block` hands a block here when the job's model takes named inputs; each non-blank
line becomes a CSV row `[file,]line,prediction,unseen`: the number as the API answers it (two
decimals) and the inputs whose value the model never saw, `;`-separated. A line that is not a JSON
object, or a film the API would refuse, stops the run with the API's message and the line's place.
"""
import json
from itertools import repeat

import util
from batch.inputs import decode
from kinds.tabular import DECIMALS
from serving.errors import ApiError

HEADER = ["line", "prediction", "unseen"]


def parse_films(scorer, block):
    """The block's (line numbers, its films as checked columns: `columns_of`); `DataError` naming the file and
    line of a bad one."""
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
    for (number, _), film in zip(numbered, documents):
        if film.__class__ is not dict:
            raise util.DataError(f"{block.path}: line {number}: a JSON {type(film).__name__}, not an object; each "
                                 'line holds one film, e.g. {"genre": "Drama", "budget": 20000000}.')
    keys = [number for number, _ in numbered]
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
    predictions = map(round, scorer.predict_columns(columns, len(keys)).tolist(), repeat(DECIMALS))
    unseen = scorer.unseen_columns(columns, len(keys))
    rows = zip(repeat(block.path), keys, predictions, unseen) if job.file_column else zip(keys, predictions, unseen)
    return len(keys), csv_bytes(rows)
