"""Reading films from JSON lines (`batch/films.py`): the bulk read gives each line's value as the json
module reads it, or hands the block to the line-by-line read."""
import json

from batch.films import bulk_json

AS_JSON_READS_THEM = [
    '{"genre": "Drama", "budget": 2e7, "director": "Ren\\u00e9 Cl\\u00e9ment"}',
    '{"genre": "Drama", "genre": "Comedy", "budget": 2.675}',  # the last of a repeated key, as json keeps
    '  {"genre": "Horror", "budget": 1E5, "running_time": -0}  ',
    '{"budget": 1.7976931348623157e308, "release_year": 5e-324, "source": "\\ud83d\\ude00"}',
]


def test_each_line_is_read_as_the_json_module_reads_it():
    assert bulk_json(AS_JSON_READS_THEM) == [json.loads(line) for line in AS_JSON_READS_THEM]


def test_an_integer_beyond_64_bits_is_read_as_the_float_it_is_scored_as():
    assert bulk_json(['{"budget": 123456789012345678901}']) == [{"budget": float(123456789012345678901)}]


def test_what_the_json_module_would_read_otherwise_is_left_to_it():
    for line in ('{"budget": NaN}', '{"budget": 1e400}', '{"director": "x\\ud800"}'):
        assert bulk_json(AS_JSON_READS_THEM + [line]) is None, line


def test_a_line_with_two_values_or_a_value_over_two_lines_is_not_read_in_bulk():
    assert bulk_json(['{"genre": "Drama"}, {"genre": "Comedy"}']) is None
    assert bulk_json(['{"genre": "Drama", "director": "x', 'y"}', '{"genre": "Comedy"}']) is None
