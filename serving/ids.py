"""Answer ids: opaque, unique, and signed, so that feedback can be checked without a database look-up.

Every answer carries an `id` that `POST /feedback` later names. The id is 32 bytes in URL-safe
base64 (43 characters): a format byte, the time it was issued (milliseconds), the model and the
label it predicted (their positions in `config.MODEL_ROUTES` and the model's labels), a tag of the
model version, random bytes, and an HMAC-SHA256 of all that under the service's key.

Why signed rather than looked up: the row of an answer given a moment ago may still sit in a
writer's queue, in another worker or on another replica. A signed id says by itself that this
service issued it, when, for which model and with which verdict, so feedback is checked (and
counted in the metrics) at once, wherever it lands. Every process that shares the key (kept in the
prediction log's database, see `prediction_log.PredictionLog.prepare`) accepts every other's ids.
The id reveals its time, model and verdict to whoever holds it: the caller, who was given them.
"""
import base64
import binascii
import hashlib
import hmac
import os
import random
import struct

FORMAT = 1  # an answer with a label
# format (1 byte), issued at in ms (6), model (1), label (1), version tag (4), random (7) = 20 bytes;
# then 12 bytes of the HMAC: 96 bits, far beyond guessing at any request rate.
BODY = struct.Struct(">B6sBB4s7s")
HEAD = struct.Struct(">B6sB")  # the part of a body that is the same for every answer of one request
RANDOM_BYTES = 7
MAC_BYTES = 12
ID_LENGTH = 43  # len(base64.urlsafe_b64encode(32 bytes)) without its "=" padding
KEY_BYTES = 32
VALUE_FORMAT = 2  # an answer with a number (a regressor's)
# format (1), issued at in ms (6), model (1), version tag (4), the number as answered (8, a double),
# random (7) = 27 bytes; then the same 12 bytes of HMAC: 39 bytes, 52 characters and no padding.
VALUE_BODY = struct.Struct(">B6sB4sd7s")
VALUE_ID_LENGTH = 52
ID_LENGTHS = (ID_LENGTH, VALUE_ID_LENGTH)


def new_key():
    """A fresh random key for signing ids."""
    return os.urandom(KEY_BYTES)


def version_tag(model_version):
    """The 4 bytes of a model version that an id carries."""
    return hashlib.sha256(model_version.encode()).digest()[:4]


class Issued:
    """What a verified id says: when it was issued (Unix seconds), the model's and the label's positions,
    and the version tag."""

    __slots__ = ("time", "model_index", "label_index", "version_tag", "value")

    def __init__(self, time, model_index, label_index, version_tag, value=None):
        self.time, self.model_index, self.label_index, self.version_tag = time, model_index, label_index, version_tag
        self.value = value  # the number answered, for an id of VALUE_FORMAT (label_index is then None)


# HMAC's inner and outer pads (RFC 2104), as translation tables over the padded key's bytes.
INNER_PAD = bytes(x ^ 0x36 for x in range(256))
OUTER_PAD = bytes(x ^ 0x5C for x in range(256))
URL_SAFE = bytes.maketrans(b"+/", b"-_")  # base64's alphabet to the URL-safe one, as urlsafe_b64encode does


class Signer:
    """Issues ids and verifies them, under one key."""

    def __init__(self, key):
        self.key = bytes(key)
        # HMAC-SHA256 is sha256(outer pad + sha256(inner pad + message)), and both padded keys are the same for
        # every id: their hashes are taken once here and copied per id. hmac.digest hashed them again for each
        # answer (about 2.3 us of an id's 6 us) and let go of the interpreter lock for it, which a request
        # thread of a busy worker may then wait to take back. `mac` equals hmac.digest's (a test holds them so).
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(self.key).digest() if len(self.key) > block else self.key).ljust(block, b"\0")
        self.inner = hashlib.sha256(padded.translate(INNER_PAD))
        self.outer = hashlib.sha256(padded.translate(OUTER_PAD))

    def mac(self, body):
        """HMAC-SHA256 of `body` under the key, truncated to MAC_BYTES."""
        inner = self.inner.copy()
        inner.update(body)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:MAC_BYTES]

    def issue(self, *, model_index, label_index, version, now):
        """A new id for one answer; `version` is the model version's tag, `now` Unix seconds."""
        return self.issue_many(model_index=model_index, label_indices=[label_index], version=version, now=now)[0]

    def issue_many(self, *, model_index, label_indices, version, now):
        """New ids for the answers of one request, one per label index, all issued at `now` (Unix seconds).

        What the ids share is made once per request rather than once per answer: the head of the body
        (format, time, model), its tail per label (label, version tag), and the random bytes, read in one
        call. Each id is still its own body with its own random bytes and its own MAC, as `issue` made it.
        """
        head = HEAD.pack(FORMAT, int(now * 1000).to_bytes(6, "big"), model_index)
        starts = {label: head + bytes((label,)) + version for label in set(label_indices)}
        randoms = unique_bytes(RANDOM_BYTES * len(label_indices))
        mac, encode = self.mac, binascii.b2a_base64
        issued = []
        for at, label in zip(range(0, len(randoms), RANDOM_BYTES), label_indices):
            body = starts[label] + randoms[at:at + RANDOM_BYTES]
            # urlsafe_b64encode(...).rstrip(b"=") of 32 bytes: 43 characters and one "=", cut here.
            issued.append(encode(body + mac(body), newline=False)[:ID_LENGTH].translate(URL_SAFE).decode("ascii"))
        return issued

    def issue_values(self, *, model_index, values, version, now):
        """New ids for the answers of one request to a regressor, one per number answered (as answered:
        the feedback's error is measured from it), all issued at `now`."""
        millis = int(now * 1000).to_bytes(6, "big")
        randoms = unique_bytes(RANDOM_BYTES * len(values))
        pack, mac = VALUE_BODY.pack, self.mac
        return [base64.urlsafe_b64encode(body + mac(body)).decode("ascii")
                for body in (pack(VALUE_FORMAT, millis, model_index, version, value, randoms[at:at + RANDOM_BYTES])
                             for at, value in zip(range(0, len(randoms), RANDOM_BYTES), values))]

    def verify(self, given):
        """The `Issued` of an id this key signed, or None for anything else (any string, any type)."""
        if not isinstance(given, str) or len(given) not in ID_LENGTHS:
            return None
        if len(given) == VALUE_ID_LENGTH:
            return self.verify_value(given)
        try:
            raw = base64.urlsafe_b64decode(given + "=")
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:BODY.size], raw[BODY.size:]
        if len(raw) != BODY.size + MAC_BYTES or body[0] != FORMAT:
            return None
        # The last character carries 2 unused bits: only the spelling `issue` gives is the id, so that
        # one answer has one id in the log and in its feedback.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != given:
            return None
        if not hmac.compare_digest(mac, self.mac(body)):
            return None
        _, millis, model_index, label_index, tag, _ = BODY.unpack(body)
        return Issued(int.from_bytes(millis, "big") / 1000, model_index, label_index, tag)

    def verify_value(self, given):
        """`verify` for an id of VALUE_FORMAT (52 characters, no padding, so one spelling only)."""
        try:
            raw = base64.urlsafe_b64decode(given)
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:VALUE_BODY.size], raw[VALUE_BODY.size:]
        if len(raw) != VALUE_BODY.size + MAC_BYTES or body[0] != VALUE_FORMAT:
            return None
        if base64.urlsafe_b64encode(raw).decode("ascii") != given or not hmac.compare_digest(mac, self.mac(body)):
            return None
        _, millis, model_index, tag, value, _ = VALUE_BODY.unpack(body)
        return Issued(int.from_bytes(millis, "big") / 1000, model_index, None, tag, value)


def unique_bytes(count):
    """`count` random bytes that keep ids apart: from the process's own generator (`random`, seeded from
    the system's at start and again in every forked worker), not a system call per request. They need
    not be secret (the MAC is what cannot be forged), only different; a system call let go of the
    interpreter lock, and a busy worker's request waited to take it back."""
    return random.getrandbits(8 * count).to_bytes(count, "little")


def sampled(answer_id, share):
    """True for the ids whose rows a log sampling `share` (0 to 1) of them keeps: decided by the id's
    MAC bytes, which are uniform, so every process agrees and the share is exact on average."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    size = VALUE_BODY.size if len(answer_id) == VALUE_ID_LENGTH else BODY.size
    mac = base64.urlsafe_b64decode(answer_id + "=" * (len(answer_id) % 4 and 4 - len(answer_id) % 4))[size:size + 4]
    return int.from_bytes(mac, "big") < share * 2**32
