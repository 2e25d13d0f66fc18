"""The Open Inference Protocol ("V2"), the REST protocol KServe, Seldon MLServer and NVIDIA Triton share:
the documents its endpoints answer, and the parsing of its inference requests. No Flask here: the
resources in web/resources.py call these functions, and `web.errors.error_response` answers errors on its paths as
`{"error": "..."}`, as the protocol says.

    GET  /v2                                        server metadata
    GET  /v2/health/live, /v2/health/ready          200 {"live": true} / {"ready": true}
    GET  /v2/models/{model_name}[/versions/{v}]     model metadata: its tensors and labels
    GET  /v2/models/{model_name}[/versions/{v}]/ready
    POST /v2/models/{model_name}[/versions/{v}]/infer

A model's version is the `model_version` every answer carries. Its tensors are its kind's
(`ModelKind.inputs_from_v2`, `V2_OUTPUTS`, `v2_columns`). A text model: one input, `text` (BYTES,
shape [n], or [n, 1] as MLServer's codecs write it); outputs `label` (BYTES, [n]), `confidence` (FP64,
[n]), `probabilities` (FP64, [n, k], the labels in the metadata's order). A model of named inputs
(`/ratings`): one tensor per input, and the output `prediction` (FP64, [n], unrounded). Every model
answers `id` too (BYTES, [n]: each answer's id, which POST /feedback takes).

Triton's binary tensor data extension, which `tritonclient` uses by default, is spoken both ways: a
request whose `Inference-Header-Content-Length` header says how long its JSON part is carries the
inputs whose `parameters.binary_data_size` is set after that part (BYTES as 4-byte little-endian
lengths, each followed by its bytes); outputs asked for with `parameters.binary_data: true` (or all of
them, with the request's `parameters.binary_data_output: true`) come back so, the answer's own
`Inference-Header-Content-Length` saying where its JSON ends.
"""
import json
import struct

from serving.errors import BadQuery
from serving.payloads import LENGTH, flag_at, json_type, object_at, parse_json

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_TYPE = "application/octet-stream"
SERVER_NAME = "sentiment"
PROTOCOL_VERSION = "2"
EXTENSIONS = ["binary_tensor_data"]
OUTPUTS = ("label", "confidence", "probabilities", "id")


def server_metadata():
    """GET /v2."""
    return {"name": SERVER_NAME, "version": PROTOCOL_VERSION, "extensions": EXTENSIONS}


def model_metadata(name, version, description):
    """GET /v2/models/{name}: the model's one version, its tensors as its kind describes them
    (`ModelKind.describe`) with each answer's id beside them, and its labels in the order of the
    `probabilities` columns."""
    return {
        "name": name,
        "versions": [version],
        "platform": "sklearn",
        "inputs": description["inputs"],
        "outputs": [*description["outputs"], {"name": "id", "datatype": "BYTES", "shape": [-1]}],
        **({"parameters": {"labels": list(description["labels"])}} if description.get("labels") else {}),
    }


class InferRequest:
    """A parsed inference request: its `inputs` (as the model's kind reads them), its `id` (None if it had
    none), and `outputs`: the names of the outputs to answer, in order, each with True when it is to be
    answered as binary data."""

    __slots__ = ("inputs", "id", "outputs")

    def __init__(self, inputs, request_id, outputs):
        self.inputs, self.id, self.outputs = inputs, request_id, outputs


def parse_infer(body, header_length, *, read_inputs, outputs=OUTPUTS):
    """The `InferRequest` of a POST .../infer body, with `header_length` the value of its
    Inference-Header-Content-Length header (None without one); `BadQuery` or `TooLarge` otherwise.

    The protocol's envelope is read here; its input tensors by `read_inputs(inputs, binary)`, the model's
    kind (`ModelKind.inputs_from_v2`), given the request's "inputs" and the bytes after its JSON part.
    `outputs` are the names of the model's outputs (`ModelKind.V2_OUTPUTS`)."""
    json_part, binary = split_body(body, header_length)
    if not json_part.strip():
        raise BadQuery('The inference request is empty; send {"inputs": [{"name": "text", "datatype": "BYTES", '
                       '"shape": [1], "data": ["..."]}]}.')
    document = parse_json_part(json_part)
    if not isinstance(document, dict):
        raise BadQuery(f"The inference request must be a JSON object, not {json_type(document)}.")
    request_id = document.get("id")
    if "id" in document and not isinstance(request_id, str):
        raise BadQuery(f"id must be a string, not {json_type(request_id)}.")
    parameters = object_at(document, "parameters")
    binary_default = flag_at(parameters, "binary_data_output", "parameters.binary_data_output")
    inputs = read_inputs(document.get("inputs"), binary)
    return InferRequest(inputs, request_id, requested_outputs(document, binary_default, outputs))


def split_body(body, header_length):
    """(JSON part, binary part) of a body, split where Inference-Header-Content-Length says."""
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        size = -1
    if not 0 <= size <= len(body):
        raise BadQuery(f"{HEADER_LENGTH}: {header_length[:32]!r} is not the length of the request's JSON part: "
                       f"send a whole number from 0 to the body's {len(body):,} bytes.")
    return body[:size], body[size:]


def parse_json_part(raw):
    """The JSON part of an inference request, parsed as every JSON body is (`serving.payloads.parse_json`)."""
    try:
        return parse_json(raw)
    except BadQuery as exc:
        raise BadQuery(f"{exc.description} If the request carries binary tensor data, say where its JSON "
                       f"ends with the {HEADER_LENGTH} header.") from None


def requested_outputs(document, binary_default, names=OUTPUTS):
    """[(output name, as binary)] of the request's `outputs`, or all of the model's (`names`) when it names none."""
    if "outputs" not in document:
        return [(name, binary_default) for name in names]
    asked = document["outputs"]
    if not isinstance(asked, list) or not asked:
        raise BadQuery(f"outputs must be an array of {{\"name\": ...}} objects, e.g. [{{\"name\": \"{names[0]}\"}}]; "
                       f"leave it out for all of {', '.join(names)}.")
    outputs = []
    for i, output in enumerate(asked):
        if not isinstance(output, dict) or output.get("name") not in names:
            named = json.dumps(output.get("name"))[:64] if isinstance(output, dict) else json_type(output)
            raise BadQuery(f"outputs[{i}] names {named}, not an output of this model; ask for any of "
                           f"{', '.join(names)}.")
        parameters = object_at(output, "parameters", f"outputs[{i}].parameters")
        outputs.append((output["name"], flag_at(parameters, "binary_data", f"outputs[{i}].parameters.binary_data",
                                                binary_default)))
    return outputs


def infer_response(request, *, model_name, model_version, columns, scored):
    """The body and headers of the answer to `request`, scored as `scored` (a `Scored` whose answers have
    their ids), its outputs `columns` ({name: (datatype, shape, function giving the flat values)}, the
    kind's `v2_columns`): JSON, or JSON and binary data when an output is asked for as binary."""
    answers = scored.answers
    columns = {**columns, "id": ("BYTES", [len(answers)], lambda: [a["id"] for a in answers])}
    outputs, chunks = [], []
    for name, binary in request.outputs:
        datatype, shape, make = columns[name]
        values = make()
        output = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            data = bytes_tensor(values) if datatype == "BYTES" else struct.pack(f"<{len(values)}d", *values)
            output["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        else:
            output["data"] = values
        outputs.append(output)
    document = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request.id is not None:
        document["id"] = request.id
    header = json.dumps(document, separators=(",", ":")).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return b"".join([header, *chunks]), {"Content-Type": BINARY_TYPE, HEADER_LENGTH: str(len(header))}


def bytes_tensor(texts):
    """A BYTES tensor as binary data: each element's 4-byte little-endian length, then its UTF-8 bytes."""
    encoded = [text.encode("utf-8") for text in texts]
    return b"".join(LENGTH.pack(len(e)) + e for e in encoded)
