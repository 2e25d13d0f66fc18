"""What every request parser shares: decoding a form or a JSON body, flags, and JSON type names for messages.

Plain functions over what Flask hands over (bytes and strings), raising the named errors of
`serving.errors`: the model kinds parse their inputs with them (`kinds/text_inputs.py`), and the HTTP
face its own bodies (`web/parsing.py`, `web/open_inference.py`); the Open Inference Protocol's JSON
objects and flags, and its BYTES tensors sent as binary data.
"""
import json
import struct
from urllib.parse import parse_qs

from serving.errors import BadQuery


def is_json(mimetype):
    """True for application/json and the +json types."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def parse_form(raw, where):
    """Decode an application/x-www-form-urlencoded string (bytes), strictly as UTF-8."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadQuery(f"The {where} is not valid UTF-8. Percent-encode the text as UTF-8.") from None


def parse_json(body):
    """Decode a JSON body; malformed, non-UTF-8 or absurdly nested JSON is a `BadQuery`, and so is a string
    holding half of a surrogate pair (`"\\ud800"`): JSON's escapes can write one, but it is no character,
    and no UTF-8 text (the prediction log's, a response's) can hold it."""
    try:
        document = json.loads(body.decode("utf-8"))
        if b"\\u" in body:  # only an escape can make a lone surrogate; encoding checks for one
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except UnicodeEncodeError:
        raise BadQuery("The JSON body holds a lone surrogate escape (such as \\ud800), which is not a "
                       "character. Send text as UTF-8, or escape both halves of a surrogate pair.") from None
    except UnicodeDecodeError:
        raise BadQuery("The JSON body is not valid UTF-8.") from None
    except RecursionError:
        raise BadQuery("The JSON body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise BadQuery(f"The body is not valid JSON ({exc}).") from None
    except ValueError:  # an integer of thousands of digits; Python's own message names a Python setting
        raise BadQuery("The JSON body holds a number too long to read.") from None


def json_type(value):
    """The JSON name of a decoded value's type, for messages."""
    names = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number",
             str: "a string"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


FLAGS = {"true": True, "1": True, "false": False, "0": False}


def flag_from_text(value):
    """`explain` from a URL or a form: true, false, 1 or 0."""
    if value not in FLAGS:
        raise BadQuery(f"explain={value!r} is not a flag: send explain=true or explain=false (or 1 or 0).")
    return FLAGS[value]


def flag_from_json(value):
    """`explain` from a JSON body: a boolean."""
    if not isinstance(value, bool):
        raise BadQuery(f'explain must be true or false in JSON, not {json_type(value)}: send "explain": true.')
    return value


def object_at(document, name, where=None):
    """`document[name]`, an object ({} when absent)."""
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise BadQuery(f"{where or name} must be an object, not {json_type(value)}.")
    return value


def flag_at(parameters, name, where, default=False):
    """A boolean parameter (`default` when absent)."""
    value = parameters.get(name, default)
    if not isinstance(value, bool):
        raise BadQuery(f"{where} must be true or false, not {json_type(value)}.")
    return value


# The Open Inference Protocol's binary tensor data: a BYTES element is its length, then its bytes.
LENGTH = struct.Struct("<I")


def binary_texts(binary, size, count):
    """`count` texts of an Open Inference Protocol BYTES tensor sent as binary data (`size` bytes, all of
    `binary`): each a 4-byte little-endian length and that many UTF-8 bytes."""
    if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
        raise BadQuery(f"inputs[0].parameters.binary_data_size says {str(size)[:32]} bytes, but "
                       f"{len(binary):,} follow the JSON part; send the size of the input's binary data.")
    texts = bytes_elements(binary, "inputs[0]", "text")
    if len(texts) != count:
        raise BadQuery(f"inputs[0].shape says {count:,} text(s) but its binary data holds {len(texts):,}; "
                       "make them agree.")
    return texts


def bytes_elements(data, where, element="value"):
    """The UTF-8 texts of a BYTES tensor's binary data: each a 4-byte little-endian length and that many
    bytes; `BadQuery` naming the tensor (`where`) and the element when the data ends inside one."""
    texts, offset, size = [], 0, len(data)
    while offset < size:
        if offset + LENGTH.size > size:
            raise BadQuery(f"{where}'s binary data ends inside the length of {element} {len(texts)}.")
        (length,) = LENGTH.unpack_from(data, offset)
        offset += LENGTH.size
        if offset + length > size:
            raise BadQuery(f"{where}'s binary data ends inside {element} {len(texts)}, which says it is "
                           f"{length:,} bytes.")
        try:
            texts.append(data[offset:offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadQuery(f"{where}.data[{len(texts)}] is not valid UTF-8.") from None
        offset += length
    return texts
