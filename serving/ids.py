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
import struct

FORMAT = 1
# format (1 byte), issued at in ms (6), model (1), label (1), version tag (4), random (7) = 20 bytes;
# then 12 bytes of the HMAC: 96 bits, far beyond guessing at any request rate.
BODY = struct.Struct(">B6sBB4s7s")
MAC_BYTES = 12
ID_LENGTH = 43  # len(base64.urlsafe_b64encode(32 bytes)) without its "=" padding
KEY_BYTES = 32


def new_key():
    """A fresh random key for signing ids."""
    return os.urandom(KEY_BYTES)


def version_tag(model_version):
    """The 4 bytes of a model version that an id carries."""
    return hashlib.sha256(model_version.encode()).digest()[:4]


class Issued:
    """What a verified id says: when it was issued (Unix seconds), the model's and the label's positions,
    and the version tag."""

    __slots__ = ("time", "model_index", "label_index", "version_tag")

    def __init__(self, time, model_index, label_index, version_tag):
        self.time, self.model_index, self.label_index, self.version_tag = time, model_index, label_index, version_tag


class Signer:
    """Issues ids and verifies them, under one key."""

    def __init__(self, key):
        self.key = bytes(key)

    def issue(self, *, model_index, label_index, version, now):
        """A new id for one answer; `version` is the model version's tag, `now` Unix seconds."""
        body = BODY.pack(FORMAT, int(now * 1000).to_bytes(6, "big"), model_index, label_index, version,
                         os.urandom(7))
        mac = hmac.digest(self.key, body, "sha256")[:MAC_BYTES]
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    def verify(self, given):
        """The `Issued` of an id this key signed, or None for anything else (any string, any type)."""
        if not isinstance(given, str) or len(given) != ID_LENGTH:
            return None
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
        if not hmac.compare_digest(mac, hmac.digest(self.key, body, "sha256")[:MAC_BYTES]):
            return None
        _, millis, model_index, label_index, tag, _ = BODY.unpack(body)
        return Issued(int.from_bytes(millis, "big") / 1000, model_index, label_index, tag)


def sampled(answer_id, share):
    """True for the ids whose rows a log sampling `share` (0 to 1) of them keeps: decided by the id's
    MAC bytes, which are uniform, so every process agrees and the share is exact on average."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    mac = base64.urlsafe_b64decode(answer_id + "=")[BODY.size:BODY.size + 4]
    return int.from_bytes(mac, "big") < share * 2**32
