"""The tabular kind's Open Inference Protocol inputs: one tensor per input, as MLServer's pandas codec
sends a DataFrame (a column a tensor, named after it): BYTES for words, FP64 (or FP32, INT64, INT32)
for numbers, each of shape [n] or [n, 1], all with the same n. An optional input may be left out (missing
in every row), and a row's value may be JSON null, or NaN in a number's binary data: missing there.
"""
import json
import math
import struct

from serving.errors import BadQuery, TooLarge
from serving.payloads import bytes_elements, json_type, object_at

NUMBER_TYPES = {"FP64": "d", "FP32": "f", "INT64": "q", "INT32": "i"}


def rows_from_v2(inputs, binary, specs, *, max_batch):
    """The rows ({input name: value or None}) of a request's "inputs" and the bytes after its JSON part,
    unchecked as values (the kind checks each row as a POST's); `BadQuery` or `TooLarge` naming the tensor."""
    by_name = {spec["name"]: spec for spec in specs}
    example = ", ".join(f'{{"name": "{spec["name"]}", "datatype": "{datatype(spec)}", "shape": [1], "data": [...]}}'
                        for spec in specs if spec["required"])
    if not isinstance(inputs, list) or not inputs:
        raise BadQuery(f"The request needs one input per column of the model, e.g. \"inputs\": [{example}].")
    columns, count, offset = {}, None, 0
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise BadQuery(f"{where} must be an object like {example.split('}, ')[0]}}}, not {json_type(tensor)}.")
        name = tensor.get("name")
        if not isinstance(name, str) or name not in by_name:
            raise BadQuery(f"{where}.name {json.dumps(name)[:64]} is not an input of the model; its inputs are "
                           f"{', '.join(by_name)}.")
        if name in columns:
            raise BadQuery(f"{where}: the input {name} is sent twice; send each column once.")
        spec = by_name[name]
        kind = tensor.get("datatype")
        if not isinstance(kind, str) or \
                spec["type"] == "number" and kind not in NUMBER_TYPES or spec["type"] != "number" and kind != "BYTES":
            allowed = ", ".join(NUMBER_TYPES) if spec["type"] == "number" else "BYTES"
            raise BadQuery(f"{where}.datatype must be {allowed} for {name}, not {json.dumps(kind)[:32]}.")
        n = tensor_length(tensor.get("shape"), where, max_batch)
        if count is not None and n != count:
            raise BadQuery(f"{where}.shape says {n:,} row(s) but the inputs before it {count:,}; send every column "
                           "with the same number of rows.")
        count = n
        size = object_at(tensor, "parameters", f"{where}.parameters").get("binary_data_size")
        if size is not None:
            if "data" in tensor:
                raise BadQuery(f"{where} has both data and parameters.binary_data_size; send its values one way.")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
                raise BadQuery(f"{where}.parameters.binary_data_size says {str(size)[:32]} bytes, but only "
                               f"{len(binary) - offset:,} are left after the JSON part and the inputs before it.")
            part, offset = binary[offset:offset + size], offset + size
            values = binary_column(part, kind, n, where)
        else:
            values = json_column(tensor.get("data"), n, where)
        columns[name] = values
    if offset != len(binary):
        raise BadQuery(f"The request has {len(binary) - offset:,} bytes after its JSON part that no input's "
                       "parameters.binary_data_size claims.")
    return [{name: values[j] for name, values in columns.items()} for j in range(count)]


def datatype(spec):
    """The tensor datatype an input is sent as."""
    return "FP64" if spec["type"] == "number" else "BYTES"


def tensor_length(shape, where, max_batch):
    """The n of a shape [n] or [n, 1]."""
    if (not isinstance(shape, list) or len(shape) not in (1, 2) or shape[1:] not in ([], [1])
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)):
        raise BadQuery(f"{where}.shape must be [n] (or [n, 1]), n the number of rows; not {json.dumps(shape)[:64]}.")
    if shape[0] < 1:
        raise BadQuery(f"{where}.shape is [{shape[0]}]; send at least one row.")
    if shape[0] > max_batch:
        raise TooLarge(f"{where} holds {shape[0]:,} rows; the limit is {max_batch:,} per request. Split the batch.")
    return shape[0]


def json_column(data, n, where):
    """A column's n values from JSON data, flat or nested as [[v], ...]; null is a missing value."""
    if isinstance(data, list) and data and all(isinstance(v, list) for v in data):
        data = [v for row in data for v in row]
    if not isinstance(data, list):
        raise BadQuery(f"{where}.data must be an array of values, not {json_type(data)}.")
    if len(data) != n:
        raise BadQuery(f"{where}.shape says {n:,} row(s) but data holds {len(data):,}; make them agree.")
    return data


def binary_column(part, kind, n, where):
    """A column's n values from its binary data: BYTES elements (length, then UTF-8), or little-endian
    numbers, NaN standing for a missing one."""
    if kind in NUMBER_TYPES:
        item = struct.Struct("<" + NUMBER_TYPES[kind])
        if len(part) != n * item.size:
            raise BadQuery(f"{where}'s binary data is {len(part):,} bytes; {n:,} {kind} values are "
                           f"{n * item.size:,}.")
        return [None if isinstance(v, float) and math.isnan(v) else v for (v,) in item.iter_unpack(part)]
    values = bytes_elements(part, where)
    if len(values) != n:
        raise BadQuery(f"{where}.shape says {n:,} row(s) but its binary data holds {len(values):,}; make them agree.")
    return values
